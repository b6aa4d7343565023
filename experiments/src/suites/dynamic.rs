//! `dynamic`: arrival rate and channel quality vary slowly over 1000 slots
//! (Figure 20 of the Sci. Rep. paper); how each policy's throughput,
//! backlog and power follow.

use crate::plot::{Chart, Series, line_chart};
use crate::runner::{Job, label, run_all};
use crate::series::{of_policy, over_slots, write_series_csv};
use crate::{ExperimentError, Section, Settings};
use qmec_model::Scenario;
use qmec_model::accounting::SlotRecord;
use qmec_model::scenario::Dynamics;

pub fn run(settings: &Settings) -> Result<Section, ExperimentError> {
    let dir = settings.dir("dynamic")?;
    let slots = settings.slots(1000, 300);
    let mut scenario = Scenario::paper();
    scenario.name = "paper-dynamic".into();
    let dynamics = Dynamics { period_slots: slots / 2, arrival_amplitude: 0.4, channel_amplitude: 0.5, arrival_step: None };
    scenario.dynamics = Some(dynamics.clone());
    let policies = settings.policies();
    let jobs = policies
        .iter()
        .flat_map(|p| {
            let scenario = scenario.clone();
            settings.seed_list().into_iter().map(move |seed| Job { scenario: scenario.clone(), policy: p.clone(), seed, slots, keep_decisions: false })
        })
        .collect();
    let runs = run_all("dynamic", jobs)?;

    let mut section = Section::new("dynamic", "Time-varying load and channels");
    section.body = format!(
        "Paper scenario with λ(t) = λ (1 + {} sin 2πt/{}) and path gain g(t) = g (1 + {} cos 2πt/{}); {slots} slots, seeds 1–{}.\n",
        dynamics.arrival_amplitude, dynamics.period_slots, dynamics.channel_amplitude, dynamics.period_slots, settings.seeds
    );
    let tau = scenario.slot_seconds;
    let devices = scenario.devices as f64;
    let offered: Series = Series::plain(
        "offered load",
        (0..slots).step_by(10).map(|t| (t as f64, scenario.arrival_rate(t) * scenario.arrivals.task_bits.mean_bits() * devices / tau / 1e6)),
    );
    type Metric = (&'static str, &'static str, Box<dyn Fn(&SlotRecord) -> f64>);
    let metrics: Vec<Metric> = vec![
        ("throughput", "throughput (Mbit/s)", Box::new(move |r| r.throughput_bits as f64 / tau / 1e6)),
        ("backlog", "mean device backlog Q (kbit)", Box::new(move |r| r.queue_total_bits / devices / 1e3)),
        ("power", "device power (W)", Box::new(|r| r.power_w())),
    ];
    for (stem, y_label, metric) in &metrics {
        let mut series: Vec<Series> = policies.iter().map(|p| over_slots(&label(p), &of_policy(&runs, &label(p)), metric)).collect();
        if *stem == "throughput" {
            series.push(offered.clone());
        }
        section.files.push(write_series_csv(&dir.join(format!("{stem}.csv")), "slot", &series)?);
        let title = format!("{y_label} under time-varying load and channels");
        section.files.extend(line_chart(&dir.join(stem), &Chart { title: &settings.title_over_runs(&title, settings.seed_list().len()), x_label: "slot", y_label, series: &series, floor: Some(0.0) })?);
    }
    Ok(section)
}
