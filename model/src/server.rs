//! One edge server: a backlog Z_s kept per device (Z_ms), computed at the CPU
//! frequency f_ms allocated to each device, results returned after a fixed
//! delay. The simulator and the server agent both drive this type.

use crate::task::{Fragment, FragmentDone, FragmentTimes};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What one server computed in one slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerWork {
    pub bits: u64,
    pub done: Vec<FragmentDone>,
}

/// Counters a server keeps for the conservation check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerCounters {
    pub received_bits: u64,
    pub computed_bits: u64,
    pub fragments_done: u64,
}

/// One device's fragments queued at a server, FIFO, and their bits (Z_ms),
/// kept as a running total so that reading Z_ms does not walk the queue.
#[derive(Debug, Clone, Default)]
struct DeviceBacklog {
    bits: u64,
    fragments: VecDeque<Fragment>,
    /// When the head fragment's first bit was computed, once it was: only
    /// the head of a FIFO is ever partly computed.
    head_started_s: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct ServerModel {
    id: usize,
    cpu_hz: f64,
    cycles_per_bit: f64,
    slot_seconds: f64,
    result_delay_s: f64,
    queue_cap_bits: u64,
    /// Indexed by device id. Ids come from the scenario (the server agent
    /// admits no other), so the list is as long as the device count.
    backlog: Vec<DeviceBacklog>,
    backlog_bits: u64,
    counters: ServerCounters,
}

impl ServerModel {
    pub fn new(scenario: &crate::Scenario, id: usize) -> ServerModel {
        ServerModel {
            id,
            cpu_hz: scenario.server.cpu_hz,
            cycles_per_bit: scenario.device.cycles_per_bit,
            slot_seconds: scenario.slot_seconds,
            result_delay_s: scenario.server.result_delay_s,
            queue_cap_bits: scenario.server.queue_cap_bits,
            backlog: vec![DeviceBacklog::default(); scenario.devices],
            backlog_bits: 0,
            counters: ServerCounters::default(),
        }
    }

    pub fn id(&self) -> usize {
        self.id
    }

    pub fn cpu_hz(&self) -> f64 {
        self.cpu_hz
    }

    /// Z_s in bits.
    pub fn backlog_bits(&self) -> u64 {
        self.backlog_bits
    }

    /// Z_ms in bits for every device with a backlog here.
    pub fn device_backlogs(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.backlog
            .iter()
            .enumerate()
            .filter(|(_, queued)| !queued.fragments.is_empty())
            .map(|(device, queued)| (device, queued.bits))
    }

    /// Bits that can still be offloaded here before the cap.
    pub fn free_bits(&self) -> u64 {
        self.queue_cap_bits.saturating_sub(self.backlog_bits)
    }

    pub fn counters(&self) -> &ServerCounters {
        &self.counters
    }

    /// Queues a fragment that arrived from a device.
    pub fn accept(&mut self, fragment: Fragment) {
        self.backlog_bits += fragment.bits;
        self.counters.received_bits += fragment.bits;
        if fragment.device >= self.backlog.len() {
            self.backlog.resize_with(fragment.device + 1, DeviceBacklog::default);
        }
        let queued = &mut self.backlog[fragment.device];
        queued.bits += fragment.bits;
        queued.fragments.push_back(fragment);
    }

    /// Every queued fragment, removed: what a lost server's devices re-send.
    pub fn drain(&mut self) -> Vec<Fragment> {
        self.backlog_bits = 0;
        self.backlog
            .iter_mut()
            .flat_map(|queued| {
                queued.bits = 0;
                queued.head_started_s = None;
                queued.fragments.drain(..)
            })
            .collect()
    }

    /// Computes one slot starting at `slot_start_s`, device m's fragments at
    /// `allocation(m)` Hz, FIFO per device.
    pub fn compute(&mut self, slot_start_s: f64, allocation: impl Fn(usize) -> f64) -> ServerWork {
        let mut done = Vec::new();
        let bits = self.compute_each(slot_start_s, allocation, |fragment| done.push(fragment));
        ServerWork { bits, done }
    }

    /// [`ServerModel::compute`], handing each finished fragment to `each`
    /// rather than collecting them; returns the bits computed.
    pub fn compute_each(
        &mut self,
        slot_start_s: f64,
        allocation: impl Fn(usize) -> f64,
        mut each: impl FnMut(FragmentDone),
    ) -> u64 {
        let (mut computed, mut fragments_done) = (0, 0);
        for (device, queued) in self.backlog.iter_mut().enumerate().filter(|(_, q)| !q.fragments.is_empty()) {
            let cpu_hz = allocation(device);
            let bits_per_second = cpu_hz.max(0.0) / self.cycles_per_bit;
            let mut budget = slot_budget_bits(cpu_hz, self.cycles_per_bit, self.slot_seconds);
            let mut elapsed_bits = 0u64;
            while budget > 0 {
                let Some(head) = queued.fragments.front_mut() else { break };
                let started_s = *queued
                    .head_started_s
                    .get_or_insert(slot_start_s + elapsed_bits as f64 / bits_per_second);
                let piece = budget.min(head.bits);
                head.bits -= piece;
                queued.bits -= piece;
                budget -= piece;
                elapsed_bits += piece;
                computed += piece;
                if head.bits == 0 {
                    let computed_s = slot_start_s + elapsed_bits as f64 / bits_per_second;
                    let times = FragmentTimes {
                        offloaded: true,
                        sent_s: head.sent_s,
                        uploaded_s: head.uploaded_s,
                        started_s,
                        computed_s,
                        done_s: computed_s + self.result_delay_s,
                    };
                    each(FragmentDone { device, task: head.task, times });
                    fragments_done += 1;
                    queued.fragments.pop_front();
                    queued.head_started_s = None;
                }
            }
        }
        self.backlog_bits -= computed;
        self.counters.computed_bits += computed;
        self.counters.fragments_done += fragments_done;
        computed
    }
}

/// Bits a server computes of one device's backlog in one slot of
/// `slot_seconds` at `cpu_hz` (⌊f τ / L⌋): the server computes
/// min(Z_ms, this), and the controller replays the same rule to tell the
/// devices the servers' free space. The epsilon keeps a budget computed as
/// exactly a backlog from rounding a bit short.
pub fn slot_budget_bits(cpu_hz: f64, cycles_per_bit: f64, slot_seconds: f64) -> u64 {
    (cpu_hz.max(0.0) / cycles_per_bit * slot_seconds + 1e-6).floor() as u64
}

/// The default CPU split: F_s in proportion to each device's backlog at the
/// server. DESIGN.md splits in proportion to the bits each device sent; with
/// bits sent in one slot and computed in the next, the backlog at the start
/// of a slot is exactly what was sent and not yet computed, and splitting by
/// it is work-conserving (no device is starved of bits it already sent).
pub fn proportional_allocation(cpu_hz: f64, device_backlogs: &[f64]) -> Vec<f64> {
    let total: f64 = device_backlogs.iter().sum();
    if total <= 0.0 {
        return vec![0.0; device_backlogs.len()];
    }
    device_backlogs.iter().map(|b| cpu_hz * b / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_computes_exactly_its_slot_budget() {
        let scenario = crate::Scenario::paper();
        let (f, l, tau) = (scenario.server.cpu_hz / 7.0, scenario.device.cycles_per_bit, scenario.slot_seconds);
        let budget = slot_budget_bits(f, l, tau);
        assert!(budget > 0 && budget as f64 <= f / l * tau + 1e-6);
        let mut server = ServerModel::new(&scenario, 0);
        server.accept(Fragment { device: 0, task: 0, bits: 3 * budget, sent_s: 0.0, uploaded_s: 0.0 });
        assert_eq!(server.compute(0.0, |_| f).bits, budget, "the server and the controller's replay agree");
        assert_eq!(slot_budget_bits(-1.0, l, tau), 0, "a negative allocation computes nothing");
    }
}
