//! `heatmap`: the offloading decisions μ_ms per device–server pair over
//! slots (Figure 11 of the Sci. Rep. paper), for each policy that offloads.

use crate::plot::{Heatmap, heatmap};
use crate::report::write_csv;
use crate::runner::{Job, run_all};
use crate::{ExperimentError, Section, Settings};
use qmec_model::Scenario;

pub fn run(settings: &Settings) -> Result<Section, ExperimentError> {
    let dir = settings.dir("heatmap")?;
    let slots = settings.slots(200, 60);
    let scenario = Scenario::paper();
    let policies: Vec<_> = settings.policies().into_iter().filter(|p| p.name != "local").collect();
    let jobs = policies
        .iter()
        .map(|p| Job { scenario: scenario.clone(), policy: p.clone(), seed: 1, slots, keep_decisions: true })
        .collect();
    let runs = run_all("heatmap", jobs)?;
    let mut section = Section::new("heatmap", "Offloading decisions over time");
    section.body = format!(
        "Seed 1, {slots} slots. Each row is a device–server pair (device m, server s: row m·S + s), each column a slot; \
         colour is μ_ms from 0 (dark) to 1 (yellow).\n"
    );
    let pairs = scenario.devices * scenario.servers;
    for run in &runs {
        // Rows: pairs; columns: slots.
        let values: Vec<Vec<f64>> = (0..pairs).map(|pair| run.decisions.iter().map(|mu| mu[pair]).collect()).collect();
        let title = format!("μ per device–server pair, {}", run.policy);
        let stem = dir.join(format!("mu_{}", run.policy));
        section.files.extend(heatmap(&stem, &Heatmap { title: &settings.title(&title), x_label: "slot", y_label: "pair m·S + s", value_label: "μ (share of slot)", values: &values })?);
        let rows: Vec<Vec<String>> = run
            .decisions
            .iter()
            .enumerate()
            .map(|(t, mu)| std::iter::once(t.to_string()).chain(mu.iter().map(|v| format!("{v:.4}"))).collect())
            .collect();
        let names: Vec<String> = (0..pairs).map(|p| format!("mu_{}_{}", p / scenario.servers, p % scenario.servers)).collect();
        let mut headers = vec!["slot"];
        headers.extend(names.iter().map(String::as_str));
        section.files.push(write_csv(&dir.join(format!("mu_{}.csv", run.policy)), &headers, &rows)?);
    }
    Ok(section)
}
