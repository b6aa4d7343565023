//! From per-slot records of several seeds to plotted series: each seed's
//! slots are averaged over windows, then the window means are summarised
//! across seeds with a 95 % interval.

use crate::plot::Series;
use crate::runner::Run;
use crate::stats::estimate;
use qmec_model::accounting::SlotRecord;

/// Window length that leaves about 50 points on a plot of `slots` slots.
pub fn window_for(slots: usize) -> usize {
    (slots / 50).max(1)
}

/// A metric of each slot, averaged per window and across the runs given
/// (one per seed). x is the window's middle slot.
pub fn over_slots(label: &str, runs: &[&Run], metric: impl Fn(&SlotRecord) -> f64) -> Series {
    let slots = runs.iter().map(|r| r.slots.len()).min().unwrap_or(0);
    let window = window_for(slots);
    let per_seed: Vec<Vec<f64>> = runs
        .iter()
        .map(|run| run.slots[..slots].chunks(window).map(|w| w.iter().map(&metric).sum::<f64>() / w.len() as f64).collect())
        .collect();
    series_from_windows(label, &per_seed, window)
}

/// Mean latency of the tasks completing in each window, across runs.
pub fn latency_over_slots(label: &str, runs: &[&Run]) -> Series {
    let slots = runs.iter().map(|r| r.slots.len()).min().unwrap_or(0);
    let window = window_for(slots);
    let windows = slots.div_ceil(window);
    let per_seed: Vec<Vec<f64>> = runs
        .iter()
        .map(|run| {
            let mut sums = vec![(0.0, 0usize); windows];
            for &(slot, latency) in &run.latencies {
                if let Some(cell) = sums.get_mut(slot as usize / window) {
                    cell.0 += latency;
                    cell.1 += 1;
                }
            }
            sums.iter().map(|&(sum, n)| if n > 0 { sum / n as f64 } else { f64::NAN }).collect()
        })
        .collect();
    series_from_windows(label, &per_seed, window)
}

fn series_from_windows(label: &str, per_seed: &[Vec<f64>], window: usize) -> Series {
    let windows = per_seed.iter().map(Vec::len).min().unwrap_or(0);
    let points = (0..windows)
        .filter_map(|w| {
            let values: Vec<f64> = per_seed.iter().map(|s| s[w]).filter(|v| v.is_finite()).collect();
            if values.is_empty() {
                return None;
            }
            let e = estimate(&values);
            let x = (w * window) as f64 + window as f64 / 2.0;
            Some(e.plotted(x))
        })
        .collect();
    Series { label: label.into(), points }
}

/// The runs of one policy.
pub fn of_policy<'a>(runs: &'a [crate::runner::Run], policy: &str) -> Vec<&'a Run> {
    runs.iter().filter(|r| r.policy == policy).collect()
}

/// Writes plotted series as CSV: one row per point, the series side by side
/// as `label`, `label_low`, `label_high` (series are aligned by position).
pub fn write_series_csv(path: &std::path::Path, x_label: &str, series: &[Series]) -> Result<std::path::PathBuf, crate::ExperimentError> {
    let mut headers = vec![x_label.to_string()];
    for s in series {
        headers.extend([s.label.clone(), format!("{}_low", s.label), format!("{}_high", s.label)]);
    }
    let rows_count = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    let rows: Vec<Vec<String>> = (0..rows_count)
        .map(|i| {
            let x = series.iter().find_map(|s| s.points.get(i)).map_or(String::new(), |p| format!("{}", p.0));
            std::iter::once(x)
                .chain(series.iter().flat_map(|s| match s.points.get(i) {
                    Some(p) => [format!("{:.6}", p.1), format!("{:.6}", p.2), format!("{:.6}", p.3)],
                    None => [String::new(), String::new(), String::new()],
                }))
                .collect()
        })
        .collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    crate::report::write_csv(path, &header_refs, &rows)
}
