//! Prometheus metrics in the text exposition format, served by a tiny
//! hand-rolled HTTP responder on its own port: one GET, one answer, close.
//! The figures are few and written once per slot, so a mutex is plenty.

use std::fmt::Write as _;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default, Clone)]
struct Figures {
    slots: u64,
    late_device_reports: u64,
    late_server_reports: u64,
    undelivered: u64,
    invalid_messages: u64,
    policy_failures: u64,
    decision_seconds_sum: f64,
    decision_seconds_last: f64,
    slot_loop_seconds_sum: f64,
    slot_loop_seconds_last: f64,
    slot_loop_seconds_max: f64,
    devices_connected: i64,
    servers_connected: i64,
}

/// The controller's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    figures: Mutex<Figures>,
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Figures)) {
        if let Ok(mut figures) = self.figures.lock() {
            f(&mut figures);
        }
    }

    pub fn invalid(&self) {
        self.with(|m| m.invalid_messages += 1);
    }

    pub fn invalid_messages(&self) -> u64 {
        self.figures.lock().map(|m| m.invalid_messages).unwrap_or(0)
    }

    pub fn connected(&self, devices: i64, servers: i64) {
        self.with(|m| {
            m.devices_connected = devices;
            m.servers_connected = servers;
        });
    }

    pub fn slot(&self, record: &crate::records::ControllerSlot) {
        self.with(|m| {
            m.slots += 1;
            m.late_device_reports += u64::from(record.late_devices);
            m.late_server_reports += u64::from(record.late_servers);
            m.undelivered += u64::from(record.undelivered);
            m.policy_failures += u64::from(record.policy_failed);
            m.decision_seconds_sum += record.decision_s;
            m.decision_seconds_last = record.decision_s;
            m.slot_loop_seconds_sum += record.slot_loop_s;
            m.slot_loop_seconds_last = record.slot_loop_s;
            m.slot_loop_seconds_max = m.slot_loop_seconds_max.max(record.slot_loop_s);
        });
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let m = self.figures.lock().map(|m| m.clone()).unwrap_or_default();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
        };
        metric("qmec_slots_total", "counter", "Slots run.", m.slots.to_string());
        metric("qmec_late_device_reports_total", "counter", "Device reports that missed the deadline.", m.late_device_reports.to_string());
        metric("qmec_late_server_reports_total", "counter", "Server reports that missed the deadline.", m.late_server_reports.to_string());
        metric("qmec_undelivered_decisions_total", "counter", "Decisions no stream could take.", m.undelivered.to_string());
        metric("qmec_invalid_messages_total", "counter", "Incoming messages refused by validation.", m.invalid_messages.to_string());
        metric("qmec_policy_failures_total", "counter", "Slots where the policy failed.", m.policy_failures.to_string());
        metric("qmec_decision_seconds_sum", "counter", "Time spent deciding.", m.decision_seconds_sum.to_string());
        metric("qmec_decision_seconds", "gauge", "Decision time of the last slot.", m.decision_seconds_last.to_string());
        metric("qmec_slot_loop_seconds_sum", "counter", "Slot-loop time, summed.", m.slot_loop_seconds_sum.to_string());
        metric("qmec_slot_loop_seconds", "gauge", "Slot-loop time of the last slot.", m.slot_loop_seconds_last.to_string());
        metric("qmec_slot_loop_seconds_max", "gauge", "Longest slot-loop time.", m.slot_loop_seconds_max.to_string());
        metric("qmec_devices_connected", "gauge", "Device sessions open.", m.devices_connected.to_string());
        metric("qmec_servers_connected", "gauge", "Server sessions open.", m.servers_connected.to_string());
        out
    }
}

/// Answers every connection with the metrics until `shutdown`.
pub async fn serve(listener: TcpListener, metrics: std::sync::Arc<Metrics>, shutdown: CancellationToken) {
    loop {
        let (mut socket, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "metrics accept failed");
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // The request line is enough; requests larger than this are not ours.
            let mut request = [0u8; 2048];
            let read = tokio::time::timeout(std::time::Duration::from_secs(2), socket.read(&mut request)).await;
            let Ok(Ok(_)) = read else { return };
            let body = metrics.render();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}
