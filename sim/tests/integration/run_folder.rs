//! A run folder written as the run goes holds what one written from the
//! whole run's records holds, and a policy's figures land in their rows.

use qmec_model::{Decision, Policy, PolicyError, Scenario, SlotFigure, SystemState};
use qmec_policies::classical;
use qmec_sim::output::{FIGURE_WAIT_SLOTS, OutputError, RunWriter, write_run};
use std::path::Path;

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).expect("written")
}

/// The rows without the column of decision times, which differ run to run.
fn without_decision_seconds(csv: &str) -> Vec<String> {
    let header: Vec<&str> = csv.lines().next().expect("a header").split(',').collect();
    let column = header.iter().position(|h| *h == "decision_seconds").expect("the column");
    csv.lines()
        .map(|line| line.split(',').enumerate().filter(|(i, _)| *i != column).map(|(_, v)| v).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn a_streamed_run_folder_equals_one_written_from_all_records() {
    let scenario = Scenario::paper();
    let dirs = tempfile::tempdir().expect("a temporary folder");
    let (whole, streamed) = (dirs.path().join("whole"), dirs.path().join("streamed"));
    let mut policy = classical("greedy", 1).expect("known");
    let (summary, records) = qmec_sim::simulate(&scenario, 1, policy.as_mut(), 300, |_| {}).expect("runs");
    write_run(&whole, &scenario, &summary, &records.slots, &records.tasks).expect("writes");

    let mut policy = classical("greedy", 1).expect("known");
    let mut writer = RunWriter::create(&streamed, &scenario).expect("creates");
    let streamed_summary = qmec_sim::simulate_with(&scenario, 1, policy.as_mut(), 300, |outcome| {
        writer.outcome(&outcome).map_err(Box::<dyn std::error::Error>::from)
    })
    .expect("runs");
    writer.finish(&streamed_summary).expect("writes");

    assert_eq!(read(&whole, "tasks.csv"), read(&streamed, "tasks.csv"));
    assert_eq!(read(&whole, "scenario.toml"), read(&streamed, "scenario.toml"));
    let (whole_slots, streamed_slots) = (read(&whole, "slots.csv"), read(&streamed, "slots.csv"));
    assert_eq!(whole_slots.lines().count(), 301, "a header and a row per slot");
    assert_eq!(without_decision_seconds(&whole_slots), without_decision_seconds(&streamed_slots));
    let untimed = |mut s: qmec_sim::Summary| {
        (s.decision_mean_s, s.decision_max_s) = (0.0, 0.0);
        s
    };
    assert_eq!(untimed(summary), untimed(streamed_summary));
}

/// Local execution that reports a figure about the slot `lag` slots back.
struct Lagging {
    lag: u64,
    slot: Option<u64>,
}

impl Policy for Lagging {
    fn name(&self) -> &str {
        "lagging"
    }

    fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError> {
        self.slot = Some(state.slot);
        Ok(Decision::local(scenario, state))
    }

    fn slot_figures(&mut self) -> Vec<SlotFigure> {
        let about = self.slot.and_then(|slot| slot.checked_sub(self.lag));
        about.map(|slot| SlotFigure { slot, lp_share: 0.5 }).into_iter().collect()
    }
}

fn stream(lag: u64, slots: u64, dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let scenario = Scenario::builtin("paper-small").expect("built-in");
    let mut writer = RunWriter::create(dir, &scenario)?;
    let mut policy = Lagging { lag, slot: None };
    let summary = qmec_sim::simulate_with(&scenario, 1, &mut policy, slots, |outcome| {
        writer.outcome(&outcome).map_err(Box::<dyn std::error::Error>::from)
    })?;
    writer.finish(&summary)?;
    Ok(())
}

#[test]
fn figures_land_in_their_rows_and_one_too_late_is_an_error() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    stream(3, 40, dir.path()).expect("a figure three slots late is in time");
    let slots = read(dir.path(), "slots.csv");
    let header: Vec<&str> = slots.lines().next().expect("a header").split(',').collect();
    let column = header.iter().position(|h| *h == "lp_share").expect("the column");
    let shares: Vec<&str> = slots.lines().skip(1).map(|row| row.split(',').nth(column).expect("a cell")).collect();
    assert_eq!(shares.iter().filter(|s| **s == "0.5").count(), 37, "every slot but the last three has its figure");
    assert!(shares[37..].iter().all(|s| s.is_empty()));

    let lag = FIGURE_WAIT_SLOTS as u64 + 1;
    let error = stream(lag, lag + 5, dir.path()).expect_err("a figure past the wait is refused");
    let error = error.downcast::<OutputError>().expect("an output error");
    assert!(matches!(*error, OutputError::LateFigure { slot: 0, .. }), "{error}");
}
