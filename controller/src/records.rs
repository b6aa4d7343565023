//! What the controller records: per slot, the decision time, the slot-loop
//! time (slot start → every decision handed to its stream) and the report
//! wait within it, the late reports
//! and the value of the decision. Written as JSON at shutdown; each slot is
//! also appended to a journal beside it as it is decided ([`SlotJournal`]),
//! so that a controller killed mid-run loses none and the one restarted in
//! its place finishes the records of the whole run.

use crate::fallback::FallbackCause;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControllerSlot {
    pub slot: u64,
    pub decision_s: f64,
    pub slot_loop_s: f64,
    /// Of the slot loop, the wait until every report was in (or the
    /// deadline passed); the rest is building the state, deciding and
    /// handing out the decisions.
    #[serde(default)]
    pub reports_wait_s: f64,
    pub late_devices: u32,
    /// Devices silent for more than `STALE_SLOTS` slots, decided local.
    #[serde(default)]
    pub stale_devices: u32,
    pub late_servers: u32,
    /// Decisions that could not be handed to a device or server stream.
    pub undelivered: u32,
    /// Σ Ψ μ of the decision.
    pub dpp_value: f64,
    /// The policy failed and everything was computed locally.
    pub policy_failed: bool,
    /// The policy did not decide (late, failed, infeasible) and the
    /// fallback policy did.
    #[serde(default)]
    pub fallback: Option<FallbackCause>,
    /// The decision's share of the exact LP optimum, where the policy
    /// measured it ([`qmec_model::SlotFigure`]; it may arrive a few slots
    /// later, and the slot's journal line is then written again).
    #[serde(default)]
    pub lp_share: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControllerRecords {
    pub policy: String,
    pub seed: u64,
    /// The slot this controller started at: 0, or where a restarted
    /// controller picked the run up.
    #[serde(default)]
    pub first_slot: u64,
    /// The policy that decides a slot the run's policy cannot, if any.
    #[serde(default)]
    pub fallback_policy: Option<String>,
    pub slots: Vec<ControllerSlot>,
    pub invalid_messages: u64,
    pub usage: qmec_proto::process::ProcessUsage,
}

/// One JSON line per decided slot, flushed as it is written.
#[derive(Debug)]
pub struct SlotJournal {
    file: std::fs::File,
}

impl SlotJournal {
    /// The journal beside the records file `records`.
    pub fn path(records: &Path) -> PathBuf {
        records.with_extension("slots.jsonl")
    }

    /// Opens the journal at `path`: emptied for a fresh run, appended to by
    /// a controller that picked a run up.
    pub fn open(path: &Path, fresh: bool) -> std::io::Result<SlotJournal> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true);
        if fresh {
            options.write(true).truncate(true);
        } else {
            options.append(true);
        }
        let torn = !fresh && std::fs::read(path).is_ok_and(|bytes| bytes.last().is_some_and(|&b| b != b'\n'));
        let mut file = options.open(path)?;
        if torn {
            // The killed controller's last line was cut short: end it, so
            // the first new record starts a line of its own.
            file.write_all(b"\n")?;
        }
        Ok(SlotJournal { file })
    }

    pub fn append(&mut self, slot: &ControllerSlot) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(slot).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }

    /// Every slot in the journal beside the records file `records` (see
    /// [`SlotJournal::read`]): what a controller that picked a run up, and
    /// a launcher whose controller died, record of the run's slots.
    pub fn read_beside(records: &Path) -> std::io::Result<Vec<ControllerSlot>> {
        SlotJournal::read(&SlotJournal::path(records))
    }

    /// Every slot in the journal at `path`, in slot order; a slot written
    /// twice keeps its last record, and a line cut short by a kill is
    /// skipped.
    pub fn read(path: &Path) -> std::io::Result<Vec<ControllerSlot>> {
        let text = std::fs::read_to_string(path)?;
        let mut slots = std::collections::BTreeMap::new();
        for slot in text.lines().filter_map(|line| serde_json::from_str::<ControllerSlot>(line).ok()) {
            slots.insert(slot.slot, slot);
        }
        Ok(slots.into_values().collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_survives_a_restart_and_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = SlotJournal::path(&dir.path().join("controller.json"));
        let slot = |slot| ControllerSlot { slot, ..Default::default() };
        let mut first = SlotJournal::open(&path, true).unwrap();
        (0..3).for_each(|t| first.append(&slot(t)).unwrap());
        first.file.write_all(b"{\"slot\": 3, \"deci").unwrap();
        let mut second = SlotJournal::open(&path, false).unwrap();
        second.append(&slot(3)).unwrap();
        second.append(&slot(2)).unwrap();
        let read: Vec<u64> = SlotJournal::read(&path).unwrap().iter().map(|s| s.slot).collect();
        assert_eq!(read, [0, 1, 2, 3]);
        SlotJournal::open(&path, true).unwrap();
        assert!(SlotJournal::read(&path).unwrap().is_empty(), "a fresh run starts an empty journal");
    }
}
