//! Figures, each written as PNG and SVG from one drawing routine: line charts
//! with 95 % confidence bands, and heatmaps. Titles, axis labels with units
//! and legends are always drawn.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("drawing {path}: {reason}")]
pub struct PlotError {
    pub path: PathBuf,
    pub reason: String,
}

/// One line: points (x, mean, low, high); a band is drawn where low < high.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64, f64, f64)>,
}

impl Series {
    /// A line without a band.
    pub fn plain(label: impl Into<String>, xy: impl IntoIterator<Item = (f64, f64)>) -> Series {
        Series { label: label.into(), points: xy.into_iter().map(|(x, y)| (x, y, y, y)).collect() }
    }
}

/// What a line chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: &'a [Series],
}

const SIZE: (u32, u32) = (900, 560);

/// Writes `stem.png` and `stem.svg`; returns both paths.
pub fn line_chart(stem: &Path, chart: &Chart) -> Result<Vec<PathBuf>, PlotError> {
    let (png, svg) = paths(stem);
    if chart.series.iter().all(|s| s.points.is_empty()) {
        return Err(fail(&png)("no data to plot".into()));
    }
    draw_lines(BitMapBackend::new(&png, SIZE).into_drawing_area(), chart).map_err(fail(&png))?;
    draw_lines(SVGBackend::new(&svg, SIZE).into_drawing_area(), chart).map_err(fail(&svg))?;
    Ok(vec![png, svg])
}

/// A heatmap of `values[row][col]`, values in [0, 1] (rows drawn top down).
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub values: &'a [Vec<f64>],
}

pub fn heatmap(stem: &Path, map: &Heatmap) -> Result<Vec<PathBuf>, PlotError> {
    let (png, svg) = paths(stem);
    if map.values.iter().all(Vec::is_empty) {
        return Err(fail(&png)("no data to plot".into()));
    }
    draw_heatmap(BitMapBackend::new(&png, SIZE).into_drawing_area(), map).map_err(fail(&png))?;
    draw_heatmap(SVGBackend::new(&svg, SIZE).into_drawing_area(), map).map_err(fail(&svg))?;
    Ok(vec![png, svg])
}

fn paths(stem: &Path) -> (PathBuf, PathBuf) {
    (stem.with_extension("png"), stem.with_extension("svg"))
}

fn fail(path: &Path) -> impl FnOnce(String) -> PlotError {
    let path = path.to_path_buf();
    move |reason| PlotError { path, reason }
}

fn text<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// The range of `values` with a margin, never empty.
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = (hi - lo).max(hi.abs() * 1e-3).max(1e-12);
    (lo - 0.05 * span, hi + 0.05 * span)
}

fn draw_lines<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> Result<(), String> {
    root.fill(&WHITE).map_err(text)?;
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    let x_range = padded_range(points().map(|p| p.0));
    let y_range = padded_range(points().flat_map(|p| [p.2, p.3]));
    let mut ctx = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
        .map_err(text)?;
    ctx.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(text)?;
    for (i, series) in chart.series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        if series.points.iter().any(|p| p.2 < p.3) {
            let band: Vec<(f64, f64)> = series
                .points
                .iter()
                .map(|p| (p.0, p.3))
                .chain(series.points.iter().rev().map(|p| (p.0, p.2)))
                .collect();
            ctx.draw_series(std::iter::once(Polygon::new(band, color.mix(0.2).filled())))
                .map_err(text)?;
        }
        ctx.draw_series(LineSeries::new(series.points.iter().map(|p| (p.0, p.1)), color.stroke_width(2)))
            .map_err(text)?
            .label(series.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
        if series.points.len() <= 30 {
            ctx.draw_series(series.points.iter().map(|p| Circle::new((p.0, p.1), 3, color.filled())))
                .map_err(text)?;
        }
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(text)?;
    root.present().map_err(text)
}

fn draw_heatmap<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, map: &Heatmap) -> Result<(), String> {
    root.fill(&WHITE).map_err(text)?;
    let rows = map.values.len().max(1);
    let cols = map.values.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut ctx = ChartBuilder::on(&root)
        .caption(map.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..cols as f64, 0.0..rows as f64)
        .map_err(text)?;
    ctx.configure_mesh()
        .disable_mesh()
        .x_desc(map.x_label)
        .y_desc(map.y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(text)?;
    let cells = map.values.iter().enumerate().flat_map(|(r, row)| {
        row.iter().enumerate().map(move |(c, &v)| {
            let y = (rows - 1 - r) as f64;
            let color = ViridisRGB::get_color(v.clamp(0.0, 1.0));
            Rectangle::new([(c as f64, y), (c as f64 + 1.0, y + 1.0)], color.filled())
        })
    });
    ctx.draw_series(cells).map_err(text)?;
    root.present().map_err(text)
}
