//! `lydroo` and the online `qnn` run from the command line: `compare` and
//! `simulate` write the share of the LP optimum into slots.csv on the slots
//! where it was measured (an empty cell elsewhere) and the online model
//! file into the run folder; `--online false` freezes the model.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

fn qmec(args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_qmec")).args(args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// The lp_share cells of a slots.csv: (filled, empty).
fn share_cells(path: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let column = lines.next().unwrap().split(',').position(|h| h == "lp_share").unwrap();
    lines.map(|line| line.split(',').nth(column).unwrap().is_empty()).fold((0, 0), |(f, e), empty| if empty { (f, e + 1) } else { (f + 1, e) })
}

#[test]
fn compare_runs_lydroo_beside_the_online_qnn() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    qmec(&["compare", "--policies", "dpp-greedy,qnn,lydroo", "--slots", "120", "--out", out]);
    for policy in ["qnn", "lydroo"] {
        let (filled, empty) = share_cells(&dir.path().join(policy).join("slots.csv"));
        assert!(filled > 5 && empty > 5, "{policy}: {filled} measured, {empty} not");
        assert!(dir.path().join(policy).join("online-model.json").exists(), "{policy}");
    }
    assert_eq!(share_cells(&dir.path().join("dpp-greedy").join("slots.csv")).0, 0);
}

#[test]
fn simulate_with_online_off_measures_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    qmec(&["simulate", "--policy", "qnn", "--online", "false", "--slots", "40", "--out", out]);
    assert_eq!(share_cells(&dir.path().join("slots.csv")).0, 0);
    assert!(!dir.path().join("online-model.json").exists());
}
