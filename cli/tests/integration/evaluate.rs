//! `qmec evaluate` through the binary: one JSON entry per (size, policy),
//! the exact LP's row at a share of 1, the shipped QNN's candidate wins,
//! and bad flags refused by name.

use crate::common;

use common::{qmec, run_bounded};
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn json_holds_one_entry_per_size_and_policy() {
    let mut command = qmec();
    command.args(["evaluate", "--sizes", "3x2,10x3", "--policies", "qnn,dpp-greedy", "--states", "20", "--json"]);
    let output = run_bounded(command, LIMIT);
    common::assert_success(&output, "qmec evaluate");
    let entries: Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    let entries = entries.as_array().expect("a list of entries");
    let keys: Vec<(&str, &str)> =
        entries.iter().map(|e| (e["size"].as_str().expect("size"), e["policy"].as_str().expect("policy"))).collect();
    let expected: Vec<(&str, &str)> =
        ["3x2", "10x3"].iter().flat_map(|&size| ["lp", "qnn", "dpp-greedy"].map(|p| (size, p))).collect();
    assert_eq!(keys, expected);
    for entry in entries {
        let states = entry["states"].as_u64().expect("states");
        assert!(states <= 20, "{entry}");
        for field in ["decision_median_s", "decision_mean_s", "lp_decision_median_s"] {
            assert!(entry[field].as_f64().is_some_and(|t| t >= 0.0), "{field} in {entry}");
        }
        if states > 0 {
            let (mean, min, max) = (entry["mean_share"].as_f64(), entry["min_share"].as_f64(), entry["max_share"].as_f64());
            assert!(min.is_some_and(|m| m > 0.0) && max.is_some_and(|m| m <= 1.0 + 1e-9) && mean.is_some(), "{entry}");
            assert!(entry["p5_share"].is_number(), "{entry}");
        }
        match entry["policy"].as_str() {
            Some("lp") => assert_eq!(entry["min_share"].as_f64().filter(|_| states > 0).unwrap_or(1.0), 1.0),
            Some("qnn") => assert_eq!(entry["wins"]["network_by_rank"].as_array().map(|r| r.is_empty()), Some(false), "{entry}"),
            _ => assert!(entry["wins"].is_null(), "{entry}"),
        }
    }
    let scored: u64 = entries.iter().filter(|e| e["size"] == "10x3").filter_map(|e| e["states"].as_u64()).min().unwrap_or(0);
    assert!(scored > 0, "no 10x3 state had anything worth offloading");
}

#[test]
fn bad_flags_are_refused_by_name() {
    for (flag, value) in [("--sizes", "10by3"), ("--states", "0"), ("--scenarios", "no-such-scenario")] {
        let mut command = qmec();
        command.args(["evaluate", flag, value]);
        let output = run_bounded(command, LIMIT);
        assert!(!output.status.success(), "{flag} {value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
}
