//! The quick experiment set runs end to end: every experiment writes its
//! files, every plot has data (empty plots are refused by the plotter), and
//! the report lists a verdict for every claim.

use qmec_experiments::suites::NAMES;
use qmec_experiments::{Settings, run_set, write_report};

#[test]
fn quick_set_writes_every_file_with_data() {
    let out = tempfile::tempdir().expect("temp dir");
    let settings = Settings { out: out.path().to_path_buf(), seeds: 2, quick: true, learned: Vec::new() };
    let sections = run_set(&NAMES, &settings).expect("quick set runs");
    // The models trained first take part in the experiments after them.
    let baselines = sections.iter().find(|s| s.name == "baselines").expect("baselines ran");
    for model in ["qnn", "qnn-per-link", "dl"] {
        assert!(baselines.body.contains(&format!("| {model} |")), "{model} missing from the baselines table");
    }
    for section in &sections {
        assert!(!section.files.is_empty(), "{} wrote nothing", section.name);
        assert!(section.files.iter().any(|f| f.extension().is_some_and(|e| e == "png")), "{}: no figure", section.name);
        for file in &section.files {
            let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
            let is_figure = file.extension().is_some_and(|e| e == "png" || e == "svg");
            assert!(bytes > if is_figure { 2000 } else { 0 }, "{} is empty or missing", file.display());
            if file.extension().is_some_and(|e| e == "csv") {
                let text = std::fs::read_to_string(file).expect("csv readable");
                assert!(text.lines().count() >= 2, "{} has no rows", file.display());
                assert!(!text.contains("NaN"), "{} holds NaN", file.display());
            }
        }
    }
    let report = write_report(out.path(), &sections, "test").expect("report");
    let text = std::fs::read_to_string(report).expect("report readable");
    assert!(text.contains("## Claims"));
    for section in &sections {
        for claim in &section.claims {
            assert!(text.contains(&claim.claim), "claim missing from report: {}", claim.claim);
        }
    }
    assert!(sections.iter().map(|s| s.claims.len()).sum::<usize>() >= 6);
}
