//! Figures, each written as PNG and SVG from one drawing routine: line charts
//! with 95 % confidence bands, stacked bars, and heatmaps. Titles, axis labels with units
//! and legends are always drawn; legends and colour bars sit beside the plot,
//! never over the data, and integer axes get integer ticks.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
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
    /// The least value the quantity can take (`Some(0.0)` for throughput,
    /// power, queues, latency): bands and the axis stop there.
    pub floor: Option<f64>,
}

pub(crate) const SIZE: (u32, u32) = (900, 560);
/// Width of the legend or colour bar beside the plot.
const SIDE_WIDTH: u32 = 190;
pub(crate) const FONT: &str = "sans-serif";

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

/// One bar per category, each split into stacked segments (the same
/// segments, in the same order, for every bar).
#[derive(Debug, Clone, PartialEq)]
pub struct StackedBars<'a> {
    pub title: &'a str,
    pub y_label: &'a str,
    /// Each segment's name, bottom up.
    pub segments: &'a [&'a str],
    /// (category, one value per segment), values ≥ 0.
    pub bars: &'a [(String, Vec<f64>)],
}

/// Writes `stem.png` and `stem.svg`; returns both paths.
pub fn stacked_bars(stem: &Path, chart: &StackedBars) -> Result<Vec<PathBuf>, PlotError> {
    let (png, svg) = paths(stem);
    if chart.bars.is_empty() {
        return Err(fail(&png)("no data to plot".into()));
    }
    draw_stacked(BitMapBackend::new(&png, SIZE).into_drawing_area(), chart).map_err(fail(&png))?;
    draw_stacked(SVGBackend::new(&svg, SIZE).into_drawing_area(), chart).map_err(fail(&svg))?;
    Ok(vec![png, svg])
}

/// A heatmap of `values[row][col]`, values in [0, 1] (rows drawn top down).
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// What a cell's colour means, above the colour bar.
    pub value_label: &'a str,
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

pub(crate) fn paths(stem: &Path) -> (PathBuf, PathBuf) {
    (stem.with_extension("png"), stem.with_extension("svg"))
}

pub(crate) fn fail(path: &Path) -> impl FnOnce(String) -> PlotError {
    let path = path.to_path_buf();
    move |reason| PlotError { path, reason }
}

pub(crate) fn text<E: std::fmt::Debug>(e: E) -> String {
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

/// Draws `title` above the figure, its first line as the caption and any
/// further lines (notes: quick mode, too few seeds for a band) smaller
/// beneath it; returns the area left below.
/// Every figure's page: white, titled, the plot on the left and a legend
/// (or colour bar) column on the right.
pub(crate) fn page<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str) -> Result<Page<DB>, String> {
    root.fill(&WHITE).map_err(text)?;
    Ok(titled(root, title)?.split_horizontally(SIZE.0 - SIDE_WIDTH))
}

/// A figure's plot area and its side column.
pub(crate) type Page<DB> = (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>);

/// Every figure's axes on its plot area, with room for the labels.
pub(crate) fn axes<'a, DB: DrawingBackend>(
    plot: &'a DrawingArea<DB, Shift>,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>, String> {
    ChartBuilder::on(plot).margin(12).x_label_area_size(45).y_label_area_size(70).build_cartesian_2d(x, y).map_err(text)
}

fn titled<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str) -> Result<DrawingArea<DB, Shift>, String> {
    let mut lines = title.lines();
    let mut area = root.titled(lines.next().unwrap_or_default(), (FONT, 22)).map_err(text)?;
    for note in lines {
        area = area.titled(note, (FONT, 15).into_font().color(&RGBColor(90, 90, 90))).map_err(text)?;
    }
    Ok(area)
}

/// A series' band clipped at the chart's floor: (x, low, high).
fn clipped_band(series: &Series, floor: Option<f64>) -> Vec<(f64, f64, f64)> {
    let clip = |v: f64| floor.map_or(v, |f| v.max(f));
    series.points.iter().map(|p| (p.0, clip(p.2), clip(p.3))).collect()
}

/// Whether every value is a whole number (slots, device counts, sizes).
fn all_integers(mut values: impl Iterator<Item = f64>) -> bool {
    values.all(|v| v.is_finite() && (v - v.round()).abs() < 1e-9)
}

/// How many tick labels an axis over `range` gets: on an integer axis no
/// more than there are integers in it, so no tick falls between two.
fn tick_count(range: (f64, f64), integer: bool) -> usize {
    let most = 10;
    if integer { ((range.1 - range.0).floor() as usize + 1).clamp(2, most) } else { most }
}

/// A tick label: whole numbers without `.0`, others with up to 3 decimals
/// (scientific below 0.01).
pub(crate) fn tick(v: &f64) -> String {
    let v = *v;
    if (v - v.round()).abs() < 1e-9 {
        return format!("{:.0}", v.round());
    }
    if v.abs() < 1e-2 {
        return format!("{v:.1e}");
    }
    let fixed = format!("{v:.3}");
    fixed.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn draw_lines<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> Result<(), String> {
    let (plot, side) = page(root, chart.title)?;
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    let bands: Vec<Vec<(f64, f64, f64)>> = chart.series.iter().map(|s| clipped_band(s, chart.floor)).collect();
    let x_range = padded_range(points().map(|p| p.0));
    let mut y_range = padded_range(bands.iter().flatten().flat_map(|b| [b.1, b.2]).chain(points().map(|p| p.1)));
    if let Some(floor) = chart.floor {
        y_range.0 = y_range.0.max(floor);
    }
    let x_integer = all_integers(points().map(|p| p.0));
    let mut ctx = axes(&plot, x_range.0..x_range.1, y_range.0..y_range.1)?;
    ctx.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .x_labels(tick_count(x_range, x_integer))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FONT, 14))
        .draw()
        .map_err(text)?;
    let mut legend = Vec::new();
    for (i, (series, band)) in chart.series.iter().zip(&bands).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        if band.iter().any(|b| b.1 < b.2) {
            let outline: Vec<(f64, f64)> =
                band.iter().map(|b| (b.0, b.2)).chain(band.iter().rev().map(|b| (b.0, b.1))).collect();
            ctx.draw_series(std::iter::once(Polygon::new(outline, color.mix(0.15).filled())))
                .map_err(text)?;
        }
        ctx.draw_series(LineSeries::new(series.points.iter().map(|p| (p.0, p.1)), color.stroke_width(2)))
            .map_err(text)?;
        if series.points.len() <= 30 {
            ctx.draw_series(series.points.iter().map(|p| Circle::new((p.0, p.1), 3, color.filled())))
                .map_err(text)?;
        }
        legend.push((series.label.as_str(), color));
    }
    draw_legend(&side, &legend)?;
    plot.present().map_err(text)
}

fn draw_stacked<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &StackedBars) -> Result<(), String> {
    let (plot, side) = page(root, chart.title)?;
    let top = chart.bars.iter().map(|(_, values)| values.iter().map(|v| v.max(0.0)).sum::<f64>()).fold(0.0, f64::max);
    let count = chart.bars.len();
    let mut ctx = axes(&plot, 0.0..count as f64, 0.0..(top * 1.05).max(1e-12))?;
    let name = |x: &f64| {
        let index = x.floor() as usize;
        // Labels at bar centres only.
        if (x - index as f64 - 0.5).abs() < 1e-6 { chart.bars.get(index).map(|b| b.0.clone()).unwrap_or_default() } else { String::new() }
    };
    ctx.configure_mesh()
        .disable_x_mesh()
        .x_labels(count * 2 + 1)
        .x_label_formatter(&name)
        .y_desc(chart.y_label)
        .y_label_formatter(&tick)
        .label_style((FONT, 14))
        .draw()
        .map_err(text)?;
    let colours: Vec<RGBAColor> = (0..chart.segments.len()).map(|i| Palette99::pick(i).to_rgba()).collect();
    for (index, (_, values)) in chart.bars.iter().enumerate() {
        let (left, right) = (index as f64 + 0.2, index as f64 + 0.8);
        let mut base = 0.0;
        for (value, colour) in values.iter().zip(&colours) {
            let height = value.max(0.0);
            ctx.draw_series(std::iter::once(Rectangle::new([(left, base), (right, base + height)], colour.filled())))
                .map_err(text)?;
            base += height;
        }
    }
    let legend: Vec<(&str, RGBAColor)> = chart.segments.iter().copied().zip(colours).rev().collect();
    draw_legend(&side, &legend)?;
    plot.present().map_err(text)
}

/// One line per series in the area beside the plot: a stroke of its
/// colour and its label.
pub(crate) fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[(&str, RGBAColor)]) -> Result<(), String> {
    for (i, (label, color)) in entries.iter().enumerate() {
        let y = 30 + 24 * i as i32;
        area.draw(&PathElement::new(vec![(4, y), (28, y)], color.stroke_width(3))).map_err(text)?;
        area.draw(&Text::new(label.to_string(), (34, y - 8), (FONT, 15))).map_err(text)?;
    }
    Ok(())
}

fn draw_heatmap<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, map: &Heatmap) -> Result<(), String> {
    let (plot, side) = page(root, map.title)?;
    let rows = map.values.len().max(1);
    let cols = map.values.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut ctx = axes(&plot, 0.0..cols as f64, 0.0..rows as f64)?;
    ctx.configure_mesh()
        .disable_mesh()
        .x_desc(map.x_label)
        .y_desc(map.y_label)
        .x_labels(tick_count((0.0, cols as f64), true))
        .y_labels(tick_count((0.0, rows as f64), true))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FONT, 14))
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
    draw_colour_bar(&side, map.value_label)?;
    plot.present().map_err(text)
}

/// A vertical Viridis bar from 0 (bottom) to 1 (top), ticked at 0, 0.5
/// and 1 and named by `label`.
fn draw_colour_bar<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, label: &str) -> Result<(), String> {
    let (top, height, left, width): (i32, i32, i32, i32) = (40, 380, 20, 26);
    for step in 0..height {
        let value = 1.0 - f64::from(step) / f64::from(height - 1);
        let y = top + step;
        let colour = ViridisRGB::get_color(value);
        area.draw(&Rectangle::new([(left, y), (left + width, y + 1)], colour.filled())).map_err(text)?;
    }
    area.draw(&Rectangle::new([(left, top), (left + width, top + height)], BLACK.stroke_width(1))).map_err(text)?;
    for (value, at) in [(1.0, 0), (0.5, height / 2), (0.0, height)] {
        area.draw(&Text::new(tick(&value), (left + width + 6, top + at - 7), (FONT, 14))).map_err(text)?;
    }
    area.draw(&Text::new(label.to_string(), (left - 4, top - 26), (FONT, 15))).map_err(text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_drop_the_decimal_point_on_whole_numbers() {
        assert_eq!(tick(&200.0), "200");
        assert_eq!(tick(&0.25), "0.25");
        assert_eq!(tick(&1.5), "1.5");
        assert_eq!(tick(&0.004), "4.0e-3");
        assert_eq!(tick_count((0.0, 3.0), true), 4);
        assert_eq!(tick_count((0.0, 2000.0), true), 10);
    }

    #[test]
    fn bands_stop_at_the_floor() {
        let series = Series { label: "a".into(), points: vec![(0.0, 1.0, -75.0, 9.0)] };
        assert_eq!(clipped_band(&series, Some(0.0)), vec![(0.0, 0.0, 9.0)]);
        assert_eq!(clipped_band(&series, None), vec![(0.0, -75.0, 9.0)]);
    }
}
