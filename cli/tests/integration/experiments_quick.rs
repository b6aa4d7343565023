//! `qmec experiment all --quick` runs end to end through the binary: every
//! experiment writes CSV and figures (the plotter refuses a plot without
//! data, so a written figure has data), the shipped QNN, dpp-greedy and the
//! models trained in `convergence` take part, and
//! the report lists a verdict for every claim.

use std::path::Path;
use std::process::Command;

fn files_with(dir: &Path, extension: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("experiment folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "runs") {
                found.extend(files_with(&path, extension));
            }
        } else if path.extension().is_some_and(|e| e == extension) {
            found.push(path);
        }
    }
    found
}

#[test]
fn quick_experiment_set_writes_every_file_with_data() {
    let out = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_qmec"))
        .args(["experiment", "all", "--quick", "--seeds", "2", "--out"])
        .arg(out.path())
        .output()
        .expect("qmec runs");
    assert!(output.status.success(), "qmec experiment failed:\n{}", String::from_utf8_lossy(&output.stderr));

    let names = ["convergence", "baselines", "vsweep", "scaling", "dynamic", "heatmap", "latency-cdf", "qubo"];
    for name in names {
        let dir = out.path().join(name);
        let pngs = files_with(&dir, "png");
        let svgs = files_with(&dir, "svg");
        let csvs = files_with(&dir, "csv");
        assert!(!pngs.is_empty() && pngs.len() == svgs.len(), "{name}: {} png, {} svg", pngs.len(), svgs.len());
        assert!(!csvs.is_empty(), "{name}: no CSV");
        for figure in pngs.iter().chain(&svgs) {
            let bytes = std::fs::metadata(figure).map(|m| m.len()).unwrap_or(0);
            assert!(bytes > 2000, "{} is nearly empty ({bytes} bytes)", figure.display());
        }
        for csv in &csvs {
            let text = std::fs::read_to_string(csv).expect("csv readable");
            assert!(text.lines().count() >= 2, "{} has no rows", csv.display());
            assert!(!text.contains("NaN"), "{} holds NaN", csv.display());
        }
    }

    let report = std::fs::read_to_string(out.path().join("report.md")).expect("report.md");
    for model in ["qnn", "qnn-paper-trained", "qnn-per-link-trained", "dl", "dpp-greedy"] {
        assert!(report.contains(&format!("| {model} |")), "{model} missing from the report's tables");
    }
    let claims: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("claims.json")).expect("claims.json")).expect("json");
    let claims = claims.as_array().expect("a list of claims");
    assert!(claims.len() >= 9, "only {} claims", claims.len());
    for claim in claims {
        let verdict = claim["verdict"].as_str().expect("verdict");
        assert!(["reproduced", "not-reproduced", "not-testable"].contains(&verdict), "{verdict}");
        assert!(report.contains(claim["claim"].as_str().expect("claim text")));
    }
}
