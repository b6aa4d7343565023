//! `latency-cdf`: end-to-end task latency distributions measured on the
//! distributed testbed — real processes, gRPC streams and paced transfers
//! on loopback — for the baselines and the shipped QNN — and where that
//! latency goes: each policy's mean stage times stacked (the stages of
//! `tasks.csv`, along each task's critical path). The testbed is run
//! through the `qmec` binary, exactly as a user runs it.

use crate::plot::{Chart, Series, StackedBars, line_chart, stacked_bars};
use crate::report::write_csv;
use crate::runner::label;
use crate::stats::estimate;
use crate::{ExperimentError, SHIPPED_QNN, Section, Settings};
use qmec_catalog::PolicySpec;
use qmec_model::task::STAGES;
use qmec_sim::Summary;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Points on each plotted CDF.
const CDF_POINTS: usize = 200;

pub fn run(settings: &Settings) -> Result<Section, ExperimentError> {
    let dir = settings.dir("latency-cdf")?;
    let exe = settings.qmec_binary.clone().ok_or_else(|| ExperimentError::Io {
        path: dir.clone(),
        reason: "latency-cdf runs the testbed and needs the qmec binary (run it through `qmec experiment`)".into(),
    })?;
    let slots = settings.slots(400, 60);
    let seeds: Vec<u64> = settings.seed_list().into_iter().take(if settings.quick { 1 } else { 3 }).collect();
    let policies: Vec<PolicySpec> = settings
        .policies()
        .into_iter()
        .filter(|p| matches!(label(p).as_str(), "greedy" | "lyapunov" | SHIPPED_QNN | "random"))
        .collect();

    let mut section = Section::new("latency-cdf", "End-to-end latency on the testbed");
    section.body = format!(
        "`qmec testbed`, paper scenario (10 device processes, 3 server processes, 1 controller on loopback), \
         {slots} slots of 10 ms wall time, seeds {seeds:?}. Latency is wall-clock time from a task's arrival to its \
         last result, measured by each device on its own clock.\n"
    );
    let mut series = Vec::new();
    let mut rows = Vec::new();
    let mut stacks = Vec::new();
    for policy in &policies {
        let name = label(policy);
        let mut latencies = Vec::new();
        let mut p50s = Vec::new();
        let mut p99s = Vec::new();
        let mut stage_means = vec![Vec::new(); STAGES.len()];
        for &seed in &seeds {
            let out = dir.join("runs").join(format!("{name}-seed{seed}"));
            run_testbed(&exe, policy, slots, seed, &out)?;
            let mut run = wall_latencies_s(&out.join("records"))?;
            run.sort_by(f64::total_cmp);
            if let (Some(p50), Some(p99)) = (quantile(&run, 0.5), quantile(&run, 0.99)) {
                p50s.push(p50 * 1e3);
                p99s.push(p99 * 1e3);
            }
            latencies.extend(run);
            for (means, stage) in stage_means.iter_mut().zip(run_stages(&out)?) {
                means.push(stage.latency.mean_s * 1e3);
            }
        }
        stacks.push((name.clone(), stage_means.iter().map(|means| estimate(means).mean).collect::<Vec<f64>>()));
        latencies.sort_by(f64::total_cmp);
        series.push(Series::plain(
            name.clone(),
            (0..=CDF_POINTS).filter_map(|i| {
                let q = i as f64 / CDF_POINTS as f64;
                quantile(&latencies, q).map(|v| (v * 1e3, q))
            }),
        ));
        rows.push(vec![name, latencies.len().to_string(), estimate(&p50s).display(1), estimate(&p99s).display(1)]);
    }
    section.files.extend(line_chart(
        &dir.join("cdf"),
        &Chart {
            title: &settings.title("End-to-end latency CDF on the testbed"),
            x_label: "wall latency (ms, measured on the testbed)",
            y_label: "share of tasks",
            series: &series,
            floor: Some(0.0),
        },
    )?);
    let headers = ["policy", "tasks", "p50 (ms)", "p99 (ms)"];
    section.files.push(write_csv(&dir.join("latency.csv"), &headers, &rows)?);
    section.table(&headers, &rows);
    write_stages(settings, &dir, &stacks, &mut section)?;
    Ok(section)
}

/// The stacked figure and table of each policy's mean stage times.
fn write_stages(settings: &Settings, dir: &Path, stacks: &[(String, Vec<f64>)], section: &mut Section) -> Result<(), ExperimentError> {
    section.body.push_str(
        "\nWhere the time goes: each policy's mean time per stage along each task's critical path (the fragment \
         that finished last), in model time as `tasks.csv` records it on the testbed, averaged over the seeds; the \
         stages add up to the mean model latency.\n",
    );
    section.files.extend(stacked_bars(
        &dir.join("stages"),
        &StackedBars {
            title: &settings.title("Mean latency by stage on the testbed"),
            y_label: "mean model latency (ms)",
            segments: &STAGES,
            bars: stacks,
        },
    )?);
    let headers: Vec<String> =
        std::iter::once("policy".to_string()).chain(STAGES.iter().map(|s| format!("{s} (ms)"))).collect();
    let rows: Vec<Vec<String>> = stacks
        .iter()
        .map(|(name, means)| std::iter::once(name.clone()).chain(means.iter().map(|m| format!("{m:.2}"))).collect())
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    section.files.push(write_csv(&dir.join("stages.csv"), &headers, &rows)?);
    section.table(&headers, &rows);
    Ok(())
}

/// A testbed run's stage summaries, from its `summary.json`.
fn run_stages(out: &Path) -> Result<Vec<qmec_sim::summary::StageLatency>, ExperimentError> {
    let path = out.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|e| ExperimentError::io(&path, e))?;
    let summary: Summary = serde_json::from_str(&text).map_err(|e| ExperimentError::io(&path, e))?;
    if summary.stages.len() != STAGES.len() {
        return Err(ExperimentError::io(&path, format!("{} stages, expected {}", summary.stages.len(), STAGES.len())));
    }
    Ok(summary.stages)
}

fn run_testbed(exe: &Path, policy: &PolicySpec, slots: u64, seed: u64, out: &Path) -> Result<(), ExperimentError> {
    let mut command = Command::new(exe);
    command.args(["testbed", "--scenario", "paper", "--policy", &policy.name, "--slot-ms", "10"]);
    command.args(["--slots", &slots.to_string(), "--seed", &seed.to_string()]).arg("--out").arg(out);
    if let Some(model) = &policy.model {
        command.arg("--model").arg(model);
    }
    let output = command.output().map_err(|e| ExperimentError::io(exe, e))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(ExperimentError::Io { path: out.to_path_buf(), reason: format!("testbed failed ({}): {}", output.status, stderr.trim()) })
}

/// Every device's wall-clock task latencies from a testbed's record files.
fn wall_latencies_s(records: &Path) -> Result<Vec<f64>, ExperimentError> {
    let entries = std::fs::read_dir(records).map_err(|e| ExperimentError::io(records, e))?;
    let mut latencies = Vec::new();
    let files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("device")))
        .collect();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| ExperimentError::io(&file, e))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| ExperimentError::io(&file, e))?;
        let devices = value["devices"].as_array().cloned().unwrap_or_default();
        for device in devices {
            let values = device["wall_latency_us"].as_array().cloned().unwrap_or_default();
            latencies.extend(values.iter().filter_map(|v| v.as_u64()).map(|us| us as f64 / 1e6));
        }
    }
    Ok(latencies)
}

/// The q-quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    sorted.get(((last as f64) * q).round() as usize).copied()
}
