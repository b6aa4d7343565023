//! What a mobile scenario's devices do over a run, drawn: every device's
//! path among the servers (`trajectories.png`/`.svg`), each device's best
//! server (the nearest: the largest path gain) slot by slot
//! (`best_server.png`/`.svg`), and the numbers behind both
//! (`trajectories.csv`). The paths come from the model's own
//! [`Trajectory`], seeded as the simulator and the agents seed it.

use crate::plot::{self, FONT, PlotError, SIZE};
use plotters::coord::Shift;
use plotters::prelude::*;
use qmec_model::Scenario;
use qmec_model::mobility::{Position, Trajectory, nearest_server};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum MobilityFigureError {
    #[error(
        "scenario `{0}` has no [mobility] section: its devices do not move (try `paper-mobile` or `paper-trace`)"
    )]
    NoMobility(String),
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// Every device's position and best server in every slot of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracks {
    pub scenario: String,
    pub seed: u64,
    pub slot_seconds: f64,
    pub width_m: f64,
    pub height_m: f64,
    pub servers: Vec<Position>,
    /// `positions[device][slot]`.
    pub positions: Vec<Vec<Position>>,
    /// `best[device][slot]`: the nearest server's index.
    pub best: Vec<Vec<usize>>,
}

/// The first `slots` slots of every device's trajectory.
pub fn tracks(scenario: &Scenario, seed: u64, slots: u64) -> Result<Tracks, MobilityFigureError> {
    let mobility = scenario
        .mobility
        .as_ref()
        .ok_or_else(|| MobilityFigureError::NoMobility(scenario.name.clone()))?;
    let servers = mobility.server_positions(scenario.servers);
    let positions: Vec<Vec<Position>> = (0..scenario.devices)
        .map(|device| {
            let mut trajectory = Trajectory::new(mobility, seed, device);
            (0..slots)
                .map(|_| {
                    let here = trajectory.position();
                    trajectory.advance(scenario.slot_seconds);
                    here
                })
                .collect()
        })
        .collect();
    let best = positions
        .iter()
        .map(|path| path.iter().map(|p| nearest_server(p, &servers)).collect())
        .collect();
    Ok(Tracks {
        scenario: scenario.name.clone(),
        seed,
        slot_seconds: scenario.slot_seconds,
        width_m: mobility.width_m,
        height_m: mobility.height_m,
        servers,
        positions,
        best,
    })
}

/// Writes the CSV and both figures into `out`; returns the paths written.
pub fn write(tracks: &Tracks, out: &Path) -> Result<Vec<PathBuf>, MobilityFigureError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MobilityFigureError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let csv = out.join("trajectories.csv");
    write_csv(tracks, &csv).map_err(io(&csv))?;
    let mut written = vec![csv];
    written.extend(draw_both(
        &out.join("trajectories"),
        Figure::Trajectories,
        tracks,
    )?);
    written.extend(draw_both(
        &out.join("best_server"),
        Figure::BestServer,
        tracks,
    )?);
    Ok(written)
}

fn write_csv(tracks: &Tracks, path: &Path) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(file, "slot,time_s,device,x_m,y_m,best_server")?;
    for (device, (path, best)) in tracks.positions.iter().zip(&tracks.best).enumerate() {
        for (slot, (p, b)) in path.iter().zip(best).enumerate() {
            let time = slot as f64 * tracks.slot_seconds;
            writeln!(
                file,
                "{slot},{time:.3},{device},{:.3},{:.3},{b}",
                p.x_m, p.y_m
            )?;
        }
    }
    file.flush()
}

#[derive(Debug, Clone, Copy)]
enum Figure {
    Trajectories,
    BestServer,
}

/// Draws `figure` as `stem.png` and `stem.svg`.
fn draw_both(stem: &Path, figure: Figure, tracks: &Tracks) -> Result<Vec<PathBuf>, PlotError> {
    let (png, svg) = plot::paths(stem);
    draw(
        BitMapBackend::new(&png, SIZE).into_drawing_area(),
        figure,
        tracks,
    )
    .map_err(plot::fail(&png))?;
    draw(
        SVGBackend::new(&svg, SIZE).into_drawing_area(),
        figure,
        tracks,
    )
    .map_err(plot::fail(&svg))?;
    Ok(vec![png, svg])
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    figure: Figure,
    tracks: &Tracks,
) -> Result<(), String> {
    match figure {
        Figure::Trajectories => draw_trajectories(root, tracks),
        Figure::BestServer => draw_best_server(root, tracks),
    }
}

/// Legend entries that fit beside the plot; the rest are counted.
const LEGEND_ROWS: usize = 20;

fn device_colour(device: usize) -> RGBAColor {
    Palette99::pick(device).to_rgba()
}

fn draw_trajectories<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    tracks: &Tracks,
) -> Result<(), String> {
    let slots = tracks.positions.first().map_or(0, Vec::len);
    let title = format!(
        "Device trajectories: {} (seed {}, {} s)\ncircle: start; black triangles: servers",
        tracks.scenario,
        tracks.seed,
        plot::tick(&(slots as f64 * tracks.slot_seconds))
    );
    let (area, side) = plot::page(root, &title)?;
    let mut ctx = plot::axes(&area, 0.0..tracks.width_m, 0.0..tracks.height_m)?;
    ctx.configure_mesh()
        .x_desc("x (m)")
        .y_desc("y (m)")
        .x_label_formatter(&plot::tick)
        .y_label_formatter(&plot::tick)
        .label_style((FONT, 14))
        .draw()
        .map_err(plot::text)?;
    for (device, path) in tracks.positions.iter().enumerate() {
        let colour = device_colour(device);
        ctx.draw_series(LineSeries::new(
            path.iter().map(|p| (p.x_m, p.y_m)),
            colour.stroke_width(2),
        ))
        .map_err(plot::text)?;
        if let Some(start) = path.first() {
            ctx.draw_series(std::iter::once(Circle::new(
                (start.x_m, start.y_m),
                4,
                colour.filled(),
            )))
            .map_err(plot::text)?;
        }
    }
    for (s, server) in tracks.servers.iter().enumerate() {
        let at = (server.x_m, server.y_m);
        // The label beside the marker, not over it.
        let marker = EmptyElement::at(at)
            + TriangleMarker::new((0, 0), 9, BLACK.filled())
            + Text::new(format!("S{s}"), (10, -18), (FONT, 16));
        ctx.draw_series(std::iter::once(marker)).map_err(plot::text)?;
    }
    let labels: Vec<String> = (0..tracks.positions.len())
        .map(|d| format!("device {d}"))
        .collect();
    legend(&side, &labels, device_colour)?;
    area.present().map_err(plot::text)
}

fn server_colour(server: usize) -> RGBAColor {
    // Offset from the devices' colours so the two figures are not confused.
    Palette99::pick(server + 3).to_rgba()
}

fn draw_best_server<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    tracks: &Tracks,
) -> Result<(), String> {
    let devices = tracks.best.len().max(1);
    let slots = tracks.best.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let seconds = slots as f64 * tracks.slot_seconds;
    let title = format!(
        "Each device's best (nearest) server over time: {} (seed {})",
        tracks.scenario, tracks.seed
    );
    let (area, side) = plot::page(root, &title)?;
    let mut ctx = plot::axes(&area, 0.0..seconds, -0.5..devices as f64 - 0.5)?;
    ctx.configure_mesh()
        .disable_mesh()
        .x_desc("time (s)")
        .y_desc("device")
        .y_labels(devices.min(20))
        .x_label_formatter(&plot::tick)
        // Rows are devices: only whole numbers name one.
        .y_label_formatter(&|v: &f64| if (v - v.round()).abs() < 1e-9 { plot::tick(v) } else { String::new() })
        .label_style((FONT, 14))
        .draw()
        .map_err(plot::text)?;
    // One rectangle per run of slots with the same best server keeps the
    // SVG small however long the run.
    let tau = tracks.slot_seconds;
    let bands = tracks.best.iter().enumerate().flat_map(|(device, best)| {
        runs(best).into_iter().map(move |run| {
            let y = device as f64;
            let corners = [
                (run.first as f64 * tau, y - 0.4),
                ((run.first + run.len) as f64 * tau, y + 0.4),
            ];
            Rectangle::new(corners, server_colour(run.server).filled())
        })
    });
    ctx.draw_series(bands).map_err(plot::text)?;
    let labels: Vec<String> = (0..tracks.servers.len())
        .map(|s| format!("server S{s}"))
        .collect();
    legend(&side, &labels, server_colour)?;
    area.present().map_err(plot::text)
}

/// Consecutive slots with the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    first: usize,
    len: usize,
    server: usize,
}

fn runs(values: &[usize]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (slot, &server) in values.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if run.server == server => run.len += 1,
            _ => runs.push(Run {
                first: slot,
                len: 1,
                server,
            }),
        }
    }
    runs
}

fn legend<DB: DrawingBackend>(
    side: &DrawingArea<DB, Shift>,
    labels: &[String],
    colour: fn(usize) -> RGBAColor,
) -> Result<(), String> {
    let shown = if labels.len() > LEGEND_ROWS {
        LEGEND_ROWS - 1
    } else {
        labels.len()
    };
    let mut entries: Vec<(&str, RGBAColor)> = labels
        .iter()
        .take(shown)
        .enumerate()
        .map(|(i, l)| (l.as_str(), colour(i)))
        .collect();
    let more = format!("… {} more", labels.len() - shown);
    if shown < labels.len() {
        entries.push((more.as_str(), WHITE.to_rgba()));
    }
    plot::draw_legend(side, &entries)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_where_the_value_changes() {
        let got = runs(&[2, 2, 0, 0, 0, 2]);
        assert_eq!(
            got,
            vec![
                Run {
                    first: 0,
                    len: 2,
                    server: 2
                },
                Run {
                    first: 2,
                    len: 3,
                    server: 0
                },
                Run {
                    first: 5,
                    len: 1,
                    server: 2
                }
            ]
        );
        assert!(runs(&[]).is_empty());
    }

    #[test]
    fn a_static_scenario_has_no_tracks_and_says_why() {
        let error = tracks(&Scenario::paper(), 1, 10).unwrap_err().to_string();
        assert!(
            error.contains("no [mobility]") && error.contains("paper-mobile"),
            "{error}"
        );
    }

    #[test]
    fn figures_and_csv_are_written_for_a_mobile_scenario() {
        let scenario = Scenario::builtin("paper-mobile").unwrap();
        let tracks = tracks(&scenario, 3, 200).unwrap();
        assert_eq!(tracks.positions.len(), scenario.devices);
        assert!(tracks.positions.iter().all(|p| p.len() == 200));
        let dir = tempfile::tempdir().unwrap();
        let written = write(&tracks, dir.path()).unwrap();
        assert_eq!(written.len(), 5, "{written:?}");
        assert!(
            written
                .iter()
                .all(|p| std::fs::metadata(p).unwrap().len() > 0),
            "{written:?}"
        );
        let csv = std::fs::read_to_string(dir.path().join("trajectories.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + scenario.devices * 200);
    }
}
