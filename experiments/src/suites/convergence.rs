//! `convergence`: training loss over epochs of the QNN (paper and per-link
//! architectures) and the classical MLP baseline on the DPP loss (Figures 6
//! and 7 of the Sci. Rep. paper). The trained models are saved and used by
//! the experiments that follow in the same run.

use crate::plot::{Chart, Series, line_chart};
use crate::report::write_csv;
use crate::series::{window_for, write_series_csv};
use crate::stats::estimate;
use crate::{Claim, ExperimentError, Section, Settings, Verdict};
use indicatif::{ProgressBar, ProgressStyle};
use qmec_catalog::PolicySpec;
use qmec_model::Scenario;
use qmec_qnn::{ArchKind, Objective, TrainConfig, TrainReport, train};
use std::path::PathBuf;

/// Each architecture with the policy name and label it is used under. The
/// QNNs' labels say they were trained here, apart from the shipped `qnn`
/// that every experiment compares too.
const MODELS: [(ArchKind, &str, &str); 3] = [
    (ArchKind::Paper, "qnn", "qnn-paper-trained"),
    (ArchKind::PerLink, "qnn", "qnn-per-link-trained"),
    (ArchKind::Mlp, "dl", "dl"),
];

/// The model files a run of this experiment leaves in `out`, as policies.
pub fn trained_policies(settings: &Settings) -> Vec<PolicySpec> {
    MODELS
        .iter()
        .map(|(_, name, label)| PolicySpec { model: Some(model_path(settings, label)), ..PolicySpec::named(*name) })
        .filter(|spec| spec.model.as_ref().is_some_and(|p| p.exists()))
        .collect()
}

fn model_path(settings: &Settings, label: &str) -> PathBuf {
    settings.out.join("convergence").join("models").join(format!("{label}.json"))
}

pub fn run(settings: &Settings) -> Result<Section, ExperimentError> {
    let dir = settings.dir("convergence")?;
    let models_dir = dir.join("models");
    std::fs::create_dir_all(&models_dir).map_err(|e| ExperimentError::io(&models_dir, e))?;
    let scenario = Scenario::paper();
    let seeds: Vec<u64> = settings.seed_list().into_iter().take(if settings.quick { 2 } else { 3 }).collect();
    let epochs = if settings.quick { 12 } else { 1000 };

    let mut section = Section::new("convergence", "Training convergence on the DPP loss");
    section.body = format!(
        "Paper scenario; Adam, learning rate 0.001, {epochs} epochs (an epoch is 4 mini-batches of 32 states from \
         simulator rollouts), seeds {seeds:?}. `qnn-paper-trained` is the paper's architecture, `qnn-per-link-trained` ours \
         (the shipped `qnn` is a per-link model trained longer, on 10x3 and 100x10), `dl` the MLP. \
         The loss is the drift-plus-penalty bound −Σ Ψ μ(θ) of each state divided by max |Ψ| of that state; \
         curves are averaged over windows of epochs and over seeds (bands: 95 %).\n"
    );
    let mut series = Vec::new();
    let mut rows = Vec::new();
    let mut timings = Vec::new();
    for (arch, _, label) in MODELS {
        let reports: Vec<TrainReport> = seeds
            .iter()
            .map(|&seed| train_one(&scenario, arch, seed, epochs, settings.quick, label))
            .collect::<Result<_, _>>()?;
        if let Some(first) = reports.first() {
            let path = model_path(settings, label);
            first.model.save(&path).map_err(|e| ExperimentError::io(&path, e))?;
            section.files.push(path);
        }
        let window = window_for(epochs);
        let points = (0..epochs)
            .step_by(window)
            .map(|start| {
                let end = (start + window).min(epochs);
                // Each seed's mean loss over the window, then the interval across seeds.
                let per_seed: Vec<f64> = reports
                    .iter()
                    .map(|r| r.curve[start.min(r.curve.len())..end.min(r.curve.len())].iter().map(|c| c.loss).sum::<f64>() / (end - start) as f64)
                    .collect();
                let est = estimate(&per_seed);
                est.plotted((start + end) as f64 / 2.0)
            })
            .collect();
        series.push(Series { label: label.into(), points });
        let share = estimate(&reports.iter().map(|r| r.validation.mean_share).collect::<Vec<_>>());
        let p5 = estimate(&reports.iter().map(|r| r.validation.p5_share).collect::<Vec<_>>());
        let initial = estimate(&reports.iter().map(|r| r.initial.mean_share).collect::<Vec<_>>());
        let steps_per_epoch = TrainConfig::new(arch).batches_per_epoch;
        let step_ms = estimate(
            &reports.iter().map(|r| 1e3 * r.train_seconds / (r.curve.len().max(1) * steps_per_epoch) as f64).collect::<Vec<_>>(),
        );
        timings.push((label, step_ms.mean));
        rows.push(vec![label.to_string(), initial.display(3), share.display(3), p5.display(3), step_ms.display(3)]);
    }
    let headers = ["model", "LP share before", "LP share after (mean)", "LP share after (5th pct)", "ms per Adam step"];
    section.files.push(write_csv(&dir.join("validation.csv"), &headers, &rows)?);
    section.table(&headers, &rows);
    section.files.push(write_series_csv(&dir.join("loss.csv"), "epoch", &series)?);
    section.files.extend(line_chart(
        &dir.join("loss"),
        &Chart {
            title: &settings.title_over_runs("Training loss on the DPP bound", seeds.len()),
            x_label: "epoch",
            y_label: "−Σ Ψ μ / max |Ψ| (lower is better)",
            series: &series,
            floor: None,
        },
    )?);
    let describe = timings.iter().map(|(l, ms)| format!("{l} {ms:.2} ms")).collect::<Vec<_>>().join(", ");
    section.claims.push(Claim {
        source: "Sci. Rep. 2025",
        claim: "quadratic training speed-up of the QNN over classical training".into(),
        measured: format!("per Adam step on a classical CPU: {describe}"),
        verdict: Verdict::NotTestable,
        why: "the speed-up is a property of quantum hardware; an exact classical simulation of the circuit costs \
              time exponential in the qubit count, so only the simulated step times can be reported"
            .into(),
    });
    Ok(section)
}

fn train_one(scenario: &Scenario, arch: ArchKind, seed: u64, epochs: usize, quick: bool, label: &str) -> Result<TrainReport, ExperimentError> {
    let mut config = TrainConfig::new(arch);
    // The paper's figures train on the DPP bound; one loss for every
    // architecture keeps the curves comparable.
    config.objective = Objective::Dpp;
    config.epochs = epochs;
    config.seed = seed;
    if quick {
        config.train_states = 256;
        config.val_states = 64;
        config.eval_every = 0;
    }
    let bar = ProgressBar::new(epochs as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] epoch {pos}/{len} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{label} s{seed}"));
    let report = train(scenario, &config, |_| bar.inc(1))
        .map_err(|e| ExperimentError::Train { model: label.into(), reason: e.to_string() })?;
    bar.finish_and_clear();
    Ok(report)
}
