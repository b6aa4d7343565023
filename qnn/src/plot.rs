//! The loss curve on disk: a CSV with every epoch and a PNG next to it.
//!
//! The PNG is drawn without text (no font stack to build or install): the
//! training loss in blue and the held-out share of the LP optimum, negated
//! so both fall as training improves, in red, on a shared y axis framed by
//! a box; the numbers are in the CSV.

use crate::error::{QnnError, Result};
use crate::train::EpochRecord;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

/// `epoch,loss,val_share` rows (val_share empty where not evaluated).
pub fn curve_csv(curve: &[EpochRecord]) -> String {
    let mut out = String::from("epoch,loss,val_share\n");
    for r in curve {
        let val = r.val_share.map(|v| format!("{v}")).unwrap_or_default();
        let _ = writeln!(out, "{},{},{}", r.epoch, r.loss, val);
    }
    out
}

/// Writes the CSV to `path`.
pub fn write_curve_csv(path: &Path, curve: &[EpochRecord]) -> Result<()> {
    std::fs::write(path, curve_csv(curve)).map_err(|source| QnnError::Io { path: path.display().to_string(), source })
}

/// Draws the curve as a PNG at `path`.
pub fn write_curve_png(path: &Path, curve: &[EpochRecord]) -> Result<()> {
    let plot_err = |e: String| QnnError::Plot { path: path.display().to_string(), reason: e };
    let loss: Vec<(f64, f64)> = curve.iter().map(|r| (r.epoch as f64, r.loss)).collect();
    let val: Vec<(f64, f64)> = curve.iter().filter_map(|r| r.val_share.map(|v| (r.epoch as f64, -v))).collect();
    let ys = loss.iter().chain(&val).map(|p| p.1).filter(|y| y.is_finite());
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (-1.0, 0.0) };
    let x_max = curve.len().max(2) as f64;
    let root = BitMapBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(e.to_string()))?;
    let area = root.margin(20, 20, 20, 20);
    let mut chart = ChartBuilder::on(&area)
        .build_cartesian_2d(1.0..x_max, lo..hi)
        .map_err(|e| plot_err(e.to_string()))?;
    chart
        .plotting_area()
        .draw(&Rectangle::new([(1.0, lo), (x_max, hi)], BLACK.stroke_width(1)))
        .map_err(|e| plot_err(e.to_string()))?;
    chart.draw_series(LineSeries::new(loss, &BLUE)).map_err(|e| plot_err(e.to_string()))?;
    chart.draw_series(LineSeries::new(val, &RED)).map_err(|e| plot_err(e.to_string()))?;
    root.present().map_err(|e| plot_err(e.to_string()))?;
    Ok(())
}
