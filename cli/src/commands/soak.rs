//! `qmec soak`: a randomised fault soak. Fault schedules drawn from a seed
//! (`qmec_deploy::soak`), each carried out over a short testbed run on the
//! chosen runtime and judged for conservation over the whole run and for
//! recovery once the faults are over; one line per schedule, a verdict at
//! the end, and a non-zero exit if any schedule failed. A failing run's
//! folder is kept, with the seed that replays it.

use crate::output::say;
use anyhow::{Context, Result};
use qmec_deploy::soak::{self, Shape};
use qmec_deploy::{LaunchOptions, RuntimeKind, TestbedConfig};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the runs happen (virtual: seconds per hundred schedules, and a
    /// seed replays exactly).
    #[arg(long, value_enum, default_value_t = RuntimeKind::Virtual)]
    runtime: RuntimeKind,
    /// The first schedule's seed; schedule i uses seed + i.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many schedules to run.
    #[arg(long, default_value_t = 20)]
    schedules: u64,
    /// Run schedules for this long instead (e.g. `10m`), however many fit.
    #[arg(long, value_parser = super::testbed::parse_duration)]
    duration: Option<Duration>,
    #[arg(long, default_value = "paper-small")]
    scenario: String,
    #[arg(long, default_value_t = 3)]
    devices: usize,
    #[arg(long, default_value_t = 2)]
    servers: usize,
    #[arg(long, default_value = "dpp-greedy")]
    policy: String,
    /// Slots per run; faults fall before the last 15.
    #[arg(long, default_value_t = 60)]
    slots: u64,
    /// Wall-clock slot length: 100 ms leaves the quiet tail long enough
    /// for TCP to retransmit after a partition heals (its timer backs off
    /// while the link is down).
    #[arg(long, default_value_t = 100.0)]
    slot_ms: f64,
    /// Failing runs' folders go here, one per seed.
    #[arg(long, default_value = "runs/soak")]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    if args.slots <= soak::QUIET_TAIL + 12 {
        anyhow::bail!("--slots {}: a soak run needs more than {} slots (faults, then a quiet tail)", args.slots, soak::QUIET_TAIL + 12);
    }
    let shape = Shape { slots: args.slots, devices: args.devices, servers: args.servers };
    let exe = std::env::current_exe().context("locating the qmec binary")?;
    let runtime = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let more = |done: u64| match args.duration {
        Some(duration) => started.elapsed() < duration,
        None => done < args.schedules,
    };
    let runtime_name = format!("{:?}", args.runtime).to_lowercase();
    say!("soak on the {runtime_name} runtime: {} devices, {} servers, {} slots of {} ms per run", args.devices, args.servers, args.slots, args.slot_ms)?;
    let (mut done, mut failed) = (0u64, Vec::new());
    while more(done) {
        let seed = args.seed + done;
        let faults = soak::draw(seed, shape, args.runtime);
        let out = args.out.join(format!("seed-{seed}"));
        let config = config(&args, exe.clone(), seed, &faults, out.clone())?;
        let options = LaunchOptions {
            runtime: args.runtime,
            link_profile: None,
            emulation: qmec_deploy::EmulationChoice::Auto,
            deadline: Duration::from_secs_f64(120.0 + args.slots as f64 * args.slot_ms / 1e3 * 3.0),
        };
        let verdict = match runtime.block_on(qmec_deploy::run(&config, &options)) {
            Ok(launched) => soak::judge(&launched.outcome, &faults, args.slots),
            Err(error) => Err(format!("the run failed: {error}")),
        };
        match &verdict {
            Ok(()) => {
                say!("seed {seed}: passed  `{faults}`")?;
                let _ = std::fs::remove_dir_all(&out);
            }
            Err(why) => {
                say!("seed {seed}: FAILED  `{faults}`: {why} (run folder {})", out.display())?;
                failed.push(seed);
            }
        }
        done += 1;
    }
    say!("soak: {done} schedules in {:.0} s, {} passed, {} failed", started.elapsed().as_secs_f64(), done - failed.len() as u64, failed.len())?;
    if !failed.is_empty() {
        anyhow::bail!("{} of {done} fault schedules failed (seeds {failed:?}); replay one with --seed N --schedules 1", failed.len());
    }
    Ok(())
}

fn config(args: &Args, exe: PathBuf, seed: u64, faults: &str, out: PathBuf) -> Result<TestbedConfig> {
    Ok(TestbedConfig {
        exe,
        scenario: args.scenario.clone(),
        devices: Some(args.devices),
        servers: Some(args.servers),
        policy: args.policy.clone(),
        external: Default::default(),
        model: None,
        online: false,
        seed,
        slots: args.slots,
        slot_ms: args.slot_ms,
        report_deadline: 0.5,
        agents_per_process: 1,
        payload_scale: 1000.0,
        early_reports: seed.is_multiple_of(2),
        out,
        metrics: None,
        security: Default::default(),
        faults: qmec_deploy::faults::parse(faults)?,
    })
}
