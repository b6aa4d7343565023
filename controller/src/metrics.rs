//! The controller's Prometheus figures: written once per slot by the slot
//! loop, rendered when scraped ([`qmec_proto::metrics`] serves them).

use qmec_proto::metrics::{Exposition, Page};
use qmec_proto::metrics::Kind::{Counter, Gauge};
use std::sync::Mutex;

#[derive(Debug, Default, Clone)]
struct Figures {
    slots: u64,
    late_device_reports: u64,
    late_server_reports: u64,
    undelivered: u64,
    dropped: u64,
    invalid_messages: u64,
    policy_failures: u64,
    policy_fallbacks: u64,
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

    /// A message dropped because the agent's stream was full.
    pub fn dropped(&self) {
        self.with(|m| m.dropped += 1);
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
            m.policy_fallbacks += u64::from(record.fallback.is_some());
            m.decision_seconds_sum += record.decision_s;
            m.decision_seconds_last = record.decision_s;
            m.slot_loop_seconds_sum += record.slot_loop_s;
            m.slot_loop_seconds_last = record.slot_loop_s;
            m.slot_loop_seconds_max = m.slot_loop_seconds_max.max(record.slot_loop_s);
        });
    }
}

impl Page for Metrics {
    fn render(&self) -> String {
        let m = self.figures.lock().map(|m| m.clone()).unwrap_or_default();
        let mut page = Exposition::new();
        page.metric("qmec_slots_total", Counter, "Slots run.", m.slots);
        page.metric("qmec_late_device_reports_total", Counter, "Device reports that missed the deadline.", m.late_device_reports);
        page.metric("qmec_late_server_reports_total", Counter, "Server reports that missed the deadline.", m.late_server_reports);
        page.metric("qmec_undelivered_decisions_total", Counter, "Decisions no stream could take.", m.undelivered);
        page.metric("qmec_dropped_messages_total", Counter, "Messages dropped because an agent's stream was full.", m.dropped);
        page.metric("qmec_invalid_messages_total", Counter, "Incoming messages refused by validation.", m.invalid_messages);
        page.metric("qmec_policy_failures_total", Counter, "Slots where the policy failed.", m.policy_failures);
        page.metric(
            "qmec_policy_fallbacks_total",
            Counter,
            "Slots the fallback policy decided (the external policy was late, failed or infeasible).",
            m.policy_fallbacks,
        );
        page.metric("qmec_decision_seconds_total", Counter, "Time spent deciding, summed.", m.decision_seconds_sum);
        page.metric("qmec_decision_seconds", Gauge, "Decision time of the last slot.", m.decision_seconds_last);
        page.metric("qmec_slot_loop_seconds_total", Counter, "Slot-loop time, summed.", m.slot_loop_seconds_sum);
        page.metric("qmec_slot_loop_seconds", Gauge, "Slot-loop time of the last slot.", m.slot_loop_seconds_last);
        page.metric("qmec_slot_loop_seconds_max", Gauge, "Longest slot-loop time.", m.slot_loop_seconds_max);
        page.metric("qmec_devices_connected", Gauge, "Device sessions open.", m.devices_connected);
        page.metric("qmec_servers_connected", Gauge, "Server sessions open.", m.servers_connected);
        page.finish()
    }
}
