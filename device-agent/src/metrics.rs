//! The device process's Prometheus figures: each device's task counters
//! and queue, copied by its task once per slot and rendered when scraped
//! ([`qmec_proto::metrics`] serves them). A process may run hundreds of
//! devices, so per-device families carry a `device` label and drops are
//! summed over the process by reason.

use qmec_model::device::DeviceCounters;
use qmec_model::task::DropReason;
use qmec_proto::metrics::{Exposition, Page, bytes};
use qmec_proto::metrics::Kind::{Counter, Gauge};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One device's figures at the end of its latest slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceFigures {
    pub counters: DeviceCounters,
    pub queue_bits: u64,
    pub slots: u64,
    pub undecided_slots: u64,
    pub requeued_fragments: u64,
}

/// Every device of the process, by id.
#[derive(Debug, Default)]
pub struct DeviceMetrics {
    devices: Mutex<BTreeMap<usize, DeviceFigures>>,
}

impl DeviceMetrics {
    pub fn update(&self, device: usize, figures: DeviceFigures) {
        if let Ok(mut devices) = self.devices.lock() {
            devices.insert(device, figures);
        }
    }
}

impl Page for DeviceMetrics {
    fn render(&self) -> String {
        let devices = self.devices.lock().map(|d| d.clone()).unwrap_or_default();
        let mut page = Exposition::new();
        let mut family = |name: &str, kind, help: &str, value: fn(&DeviceFigures) -> f64| {
            page.labelled(name, kind, help, "device", devices.iter().map(|(id, f)| (id, value(f))));
        };
        // Counts print as integers (f64 shows 10.0 as `10`); modelled data
        // in bytes, Prometheus' base unit.
        family("qmec_device_slots_total", Counter, "Slots this device has begun.", |f| f.slots as f64);
        family("qmec_device_undecided_slots_total", Counter, "Slots computed locally for want of a decision.", |f| f.undecided_slots as f64);
        family("qmec_device_arrived_tasks_total", Counter, "Tasks that arrived.", |f| f.counters.arrived_tasks as f64);
        family("qmec_device_completed_tasks_total", Counter, "Tasks completed, locally and offloaded.", |f| f.counters.completed_tasks as f64);
        family("qmec_device_local_bytes_total", Counter, "Modelled data computed locally (bits / 8).", |f| bytes(f.counters.local_bits));
        family("qmec_device_offloaded_bytes_total", Counter, "Modelled data offloaded to servers (bits / 8).", |f| bytes(f.counters.offloaded_bits));
        family("qmec_device_requeued_fragments_total", Counter, "Fragments requeued after their server was lost.", |f| f.requeued_fragments as f64);
        family("qmec_device_queue_bytes", Gauge, "Modelled data waiting in the device's queue (bits / 8).", |f| bytes(f.queue_bits));
        // Every reason, zero included, so that a rate over it exists from the start.
        let mut dropped: BTreeMap<&'static str, u64> = DropReason::ALL.iter().map(|r| (r.as_str(), 0)).collect();
        for figures in devices.values() {
            for (reason, count) in &figures.counters.dropped {
                *dropped.entry(reason.as_str()).or_default() += count;
            }
        }
        page.labelled("qmec_device_dropped_tasks_total", Counter, "Tasks dropped by this process's devices, by reason.", "reason", dropped);
        page.finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_device_gets_its_samples_and_drops_add_up_by_reason() {
        let metrics = DeviceMetrics::default();
        for (device, dropped) in [(4, 2), (7, 3)] {
            let mut figures = DeviceFigures { queue_bits: 1000 * device as u64, slots: 10, ..Default::default() };
            figures.counters.dropped.insert(DropReason::DeviceQueueFull, dropped);
            metrics.update(device, figures);
        }
        let page = metrics.render();
        assert!(page.contains("qmec_device_queue_bytes{device=\"4\"} 500\n"), "{page}");
        assert!(page.contains("qmec_device_queue_bytes{device=\"7\"} 875\n"), "{page}");
        assert!(page.contains("qmec_device_slots_total{device=\"7\"} 10\n"), "{page}");
        assert!(page.contains("qmec_device_dropped_tasks_total{reason=\"device-queue-full\"} 5\n"), "{page}");
    }
}
