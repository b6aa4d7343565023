//! The shipped model is reproducible: the training command documented in
//! `qnn/models/README.md`, run with the real `qmec` binary, writes the very
//! parameters of `qnn/models/per-link.json`, and that command agrees with
//! the training record inside the file.

#![forbid(unsafe_code)]

use crate::common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../qnn/models");

/// The `qmec train …` arguments of the README's command, `--out` dropped.
fn documented_arguments() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(MODELS).join("README.md")).expect("models README");
    let joined = readme.replace("\\\n", " ");
    let line = joined.lines().find(|l| l.trim_start().starts_with("qmec train")).expect("a `qmec train` line");
    let words: Vec<String> = line.split_whitespace().skip(2).map(String::from).collect();
    let out = words.iter().position(|w| w == "--out").expect("--out");
    words[..out].iter().chain(&words[out + 2..]).cloned().collect()
}

fn flag<'a>(arguments: &'a [String], name: &str) -> &'a str {
    let at = arguments.iter().position(|w| w == name).unwrap_or_else(|| panic!("{name} missing from the documented command"));
    &arguments[at + 1]
}

fn params(model: &Value) -> Vec<f64> {
    model["network"]["params"].as_array().expect("params").iter().map(|v| v.as_f64().expect("number")).collect()
}

#[test]
fn the_documented_command_reproduces_the_shipped_model() {
    let shipped = json(&Path::new(MODELS).join("per-link.json"));
    let arguments = documented_arguments();
    let record = &shipped["training"];
    assert_eq!(flag(&arguments, "--epochs"), record["epochs"].to_string());
    assert_eq!(flag(&arguments, "--seed"), record["seed"].to_string());
    assert_eq!(flag(&arguments, "--lr").parse::<f64>().expect("lr"), record["lr"].as_f64().expect("lr"));
    assert_eq!(flag(&arguments, "--objective"), record["objective"].as_str().expect("objective"));
    assert_eq!(flag(&arguments, "--scenario"), shipped["scenario"]["name"].as_str().expect("name"));

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("per-link.json");
    let mut command = qmec();
    command.arg("train").args(&arguments).arg("--out").arg(&out);
    let output = run_bounded(command, Duration::from_secs(900));
    assert_success(&output, "qmec train (the documented command)");
    let retrained = json(&out);
    assert_eq!(retrained["training"]["sizes"], record["sizes"]);
    let (a, b) = (params(&retrained), params(&shipped));
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "parameter {i}: retrained {x}, shipped {y}");
    }
}
