//! The run folder and the terminal table. The simulator and the testbed
//! write the same files, so every downstream tool reads one format:
//! `scenario.toml`, `summary.json`, `slots.csv` (one row per slot) and
//! `tasks.csv` (one row per completed task). A long run writes its rows as
//! it goes ([`RunWriter`]) rather than holding them.

use crate::summary::Summary;
use qmec_model::Scenario;
use qmec_model::accounting::SlotRecord;
use qmec_model::task::{STAGES, TaskRecord};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("writing {path}: a figure about slot {slot} came after its row was written ({FIGURE_WAIT_SLOTS} slots later)")]
    LateFigure { path: PathBuf, slot: u64 },
    #[error("writing {path}: the thread writing the rows stopped")]
    WriterStopped { path: PathBuf },
    #[error("writing {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

pub use crate::run_writer::{FIGURE_WAIT_SLOTS, RunWriter};

/// Writes the four files of a run into `dir` (created if missing).
pub fn write_run(
    dir: &Path,
    scenario: &Scenario,
    summary: &Summary,
    slots: &[SlotRecord],
    tasks: &[TaskRecord],
) -> Result<(), OutputError> {
    let mut writer = RunWriter::create(dir, scenario)?;
    writer.tasks(tasks)?;
    for record in slots {
        writer.slot(record.clone(), &[])?;
    }
    writer.finish(summary)
}

/// `device 3: 12.50`, the device whose backlog grew fastest.
fn worst_device(summary: &Summary) -> String {
    summary
        .worst_device
        .map_or_else(
            || "–".into(),
            |w| {
                let verdict = if w.stable { "" } else { ", unstable" };
                format!("device {}: {:.2}{verdict}", w.device, w.growth_bits_per_slot / 1e3)
            },
        )
}

/// `p50/p95/p99` of stage `index` in ms, `–` where the run has no stages.
fn stage_cell(summary: &Summary, index: usize) -> String {
    summary.stages.get(index).map_or_else(
        || "–".into(),
        |stage| {
            let l = &stage.latency;
            format!("{:.2}/{:.2}/{:.2}", l.p50_s * 1e3, l.p95_s * 1e3, l.p99_s * 1e3)
        },
    )
}

/// A table with one column per run, for the terminal.
pub fn table(summaries: &[Summary]) -> String {
    type Row = (&'static str, fn(&Summary) -> String);
    let rows: [Row; 24] = [
        ("policy", |s| s.policy.clone()),
        ("throughput (Mbit/s)", |s| format!("{:.3}", s.throughput_bps / 1e6)),
        ("transmit power (W)", |s| format!("{:.4}", s.tx_power_w)),
        ("compute power (W)", |s| format!("{:.4}", s.compute_power_w)),
        ("total power (W)", |s| format!("{:.4}", s.power_w)),
        ("energy efficiency (Mbit/J)", |s| format!("{:.3}", s.energy_efficiency_bit_per_j / 1e6)),
        ("mean Q per device (kbit)", |s| format!("{:.1}", s.queue_mean_bits / 1e3)),
        ("max Q (kbit)", |s| format!("{:.1}", s.queue_max_bits / 1e3)),
        ("mean H per device (kbit)", |s| format!("{:.1}", s.virtual_mean_bits / 1e3)),
        ("mean Z per server (kbit)", |s| format!("{:.1}", s.server_mean_bits / 1e3)),
        ("max Σ Z (kbit)", |s| format!("{:.1}", s.server_max_bits / 1e3)),
        ("backlog growth (kbit/slot)", |s| format!("{:.2}", s.backlog_growth_bits_per_slot / 1e3)),
        ("fastest-growing device (kbit/slot)", worst_device),
        ("stable (total and every device)", |s| if s.stable { "yes".into() } else { "NO".into() }),
        ("overloaded", |s| if s.overloaded { "YES".into() } else { "no".into() }),
        ("model latency p50 (ms)", |s| format!("{:.2}", s.latency.p50_s * 1e3)),
        ("model latency p95 (ms)", |s| format!("{:.2}", s.latency.p95_s * 1e3)),
        ("model latency p99 (ms)", |s| format!("{:.2}", s.latency.p99_s * 1e3)),
        ("tasks arrived", |s| s.tasks.arrived.to_string()),
        ("tasks completed", |s| s.tasks.completed.to_string()),
        ("tasks queued", |s| s.tasks.queued.to_string()),
        ("tasks dropped", |s| s.tasks.dropped_total().to_string()),
        ("decision mean (µs)", |s| format!("{:.1}", s.decision_mean_s * 1e6)),
        ("decision max (µs)", |s| format!("{:.1}", s.decision_max_s * 1e6)),
    ];
    // The stage rows follow the model latency's.
    let (head, tail) = rows.split_at(18);
    let labelled = |rows: &[Row]| -> Vec<(String, Vec<String>)> {
        rows.iter().map(|(label, f)| ((*label).to_string(), summaries.iter().map(f).collect())).collect()
    };
    let stages = STAGES.iter().enumerate().map(|(index, stage)| {
        (format!("  {stage} p50/p95/p99 (ms)"), summaries.iter().map(|s| stage_cell(s, index)).collect())
    });
    let lines: Vec<(String, Vec<String>)> = labelled(head).into_iter().chain(stages).chain(labelled(tail)).collect();
    let label_width = lines.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0);
    let col_width = lines.iter().flat_map(|(_, cells)| cells).map(|c| c.chars().count()).max().unwrap_or(0).max(8);
    let mut out = String::new();
    for (label, row) in &lines {
        let _ = write!(out, "{label:<label_width$}");
        for cell in row {
            let _ = write!(out, "  {cell:>col_width$}");
        }
        out.push('\n');
    }
    out
}
