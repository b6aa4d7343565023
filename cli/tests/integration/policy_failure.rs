//! A policy that fails on most slots fails the run. `qubo-exact` on 20
//! devices refuses nearly every slot (the exact solver stops at 2·10⁸
//! one-hot states; 20 devices with a backlog and 2 servers make 3²⁰), so
//! the controller computes those slots locally. The count and share are in
//! `testbed.json` and the printed table, and the command exits 1 naming
//! them. (The reproduction, a per-link model whose every parameter
//! is 1e308, no longer fails: the critic keeps a feasible candidate.)

#![forbid(unsafe_code)]

use crate::common;

use common::*;
use std::time::Duration;

const SLOTS: u64 = 30;

#[test]
fn a_testbed_whose_policy_fails_on_most_slots_says_so_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    let mut command = qmec();
    command.args(["testbed", "--runtime", "virtual", "--scenario", "paper-small", "--devices", "20", "--servers", "2"]);
    command.args(["--policy", "qubo-exact", "--slots", &SLOTS.to_string(), "--slot-ms", "100", "--out"]).arg(&out);
    let output = run_bounded(command, Duration::from_secs(120));
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));

    assert_eq!(output.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let figures = json(&out.join("testbed.json"));
    let (failed, share) = (u(&figures, "/policy_failed_slots"), f(&figures, "/policy_failed_share"));
    assert!(failed > SLOTS / 2 && failed <= SLOTS, "{failed} of {SLOTS}");
    assert!((share - failed as f64 / SLOTS as f64).abs() < 1e-12, "{share}");
    let expected = format!("{failed} ({:.0} %)", share * 100.0);
    let line = stdout.lines().find(|l| l.starts_with("policy failed (slots, share)")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.ends_with(&expected), "{line}");
    assert!(stderr.contains(&format!("error: policy `qubo-exact` failed on {expected} of the slots")), "{stderr}");
}
