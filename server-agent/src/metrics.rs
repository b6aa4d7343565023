//! The server agent's Prometheus figures: the engine's counters and backlog,
//! copied after every slot it computes, and the offload service's live
//! counters; rendered when scraped ([`qmec_proto::metrics`] serves them).

use qmec_model::server::ServerCounters;
use qmec_proto::metrics::{Exposition, Page, bytes};
use qmec_proto::metrics::Kind::{Counter, Gauge};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The engine's figures after its latest slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerFigures {
    pub counters: ServerCounters,
    pub backlog_bits: u64,
    pub slots: u64,
    /// Slots computed before every device's fragments were in.
    pub forced_slots: u64,
}

#[derive(Debug)]
pub struct ServerMetrics {
    figures: Mutex<ServerFigures>,
    invalid_messages: Arc<AtomicU64>,
    payload_bytes: Arc<AtomicU64>,
}

impl ServerMetrics {
    /// Metrics that also show the offload service's counters.
    pub fn new(invalid_messages: Arc<AtomicU64>, payload_bytes: Arc<AtomicU64>) -> ServerMetrics {
        ServerMetrics { figures: Mutex::default(), invalid_messages, payload_bytes }
    }

    pub fn update(&self, figures: ServerFigures) {
        if let Ok(mut current) = self.figures.lock() {
            *current = figures;
        }
    }
}

impl Page for ServerMetrics {
    fn render(&self) -> String {
        let f = self.figures.lock().map(|f| f.clone()).unwrap_or_default();
        let mut page = Exposition::new();
        page.metric("qmec_server_slots_total", Counter, "Slots computed.", f.slots);
        page.metric("qmec_server_forced_slots_total", Counter, "Slots computed before every device's fragments were in.", f.forced_slots);
        page.metric("qmec_server_received_bytes_total", Counter, "Modelled data received from devices (bits / 8).", bytes(f.counters.received_bits));
        page.metric("qmec_server_computed_bytes_total", Counter, "Modelled data computed (bits / 8).", bytes(f.counters.computed_bits));
        page.metric("qmec_server_fragments_done_total", Counter, "Fragments computed and returned.", f.counters.fragments_done);
        page.metric("qmec_server_backlog_bytes", Gauge, "Modelled data waiting to be computed (bits / 8).", bytes(f.backlog_bits));
        page.metric("qmec_server_payload_bytes_total", Counter, "Payload bytes received on the wire.", self.payload_bytes.load(Ordering::Relaxed));
        page.metric("qmec_invalid_messages_total", Counter, "Incoming messages refused by validation.", self.invalid_messages.load(Ordering::Relaxed));
        page.finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_page_shows_the_latest_slot_and_the_live_counters() {
        let invalid = Arc::new(AtomicU64::new(0));
        let metrics = ServerMetrics::new(invalid.clone(), Arc::new(AtomicU64::new(0)));
        let mut figures = ServerFigures { backlog_bits: 500, slots: 3, ..Default::default() };
        figures.counters.computed_bits = 1200;
        metrics.update(figures);
        invalid.fetch_add(2, Ordering::Relaxed);
        let page = metrics.render();
        for line in ["qmec_server_slots_total 3\n", "qmec_server_computed_bytes_total 150\n", "qmec_server_backlog_bytes 62.5\n", "qmec_invalid_messages_total 2\n"] {
            assert!(page.contains(line), "no `{line}` in\n{page}");
        }
    }
}
