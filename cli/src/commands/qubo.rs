//! `qmec qubo`: the AIGC server-selection QUBO. One instance: its size and
//! every solver's total latency, gap to the exact optimum and solve time.
//! `--bench`: the same over a ladder of sizes, side by side, optionally
//! exporting each instance (dimod JSON + qbsolv) and the results for the
//! dwave-neal peer script (qubo/bench/neal_peer.sh). `--baselines N`: the
//! QUBO selection against greedy, nearest, random and an RL-style baseline
//! over N instances per size.

use crate::output::say;
use anyhow::{Context, Result};
use crate::progress;
use qmec_qubo::bench::{LadderEvent, baseline_study, format_row, header, instance, ladder, legend, parse_size, solver_rows};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 4)]
    devices: usize,
    #[arg(long, default_value_t = 3)]
    servers: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Comma-separated solvers (exact, exact-onehot, greedy, sa, sb, dsb, qaoa, qaoa-xy, qaoa-xy-complete).
    #[arg(long, value_delimiter = ',', default_value = "exact,exact-onehot,greedy,sa,sb,dsb,qaoa,qaoa-xy")]
    solvers: Vec<String>,
    /// Write the instance's QUBO as dimod-style JSON here.
    #[arg(long)]
    export_json: Option<PathBuf>,
    /// Write the instance's QUBO as a qbsolv .qubo matrix file here.
    #[arg(long)]
    export_qubo: Option<PathBuf>,
    /// Run the size ladder instead of one instance.
    #[arg(long)]
    bench: bool,
    /// Sizes for --bench and --baselines as MxS, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "3x3,4x4,5x4,8x5,20x5,40x5,100x5,100x10")]
    sizes: Vec<String>,
    /// With --bench: write each instance and qmec_results.json here.
    #[arg(long)]
    export_dir: Option<PathBuf>,
    /// Compare the QUBO selection with the baselines over this many instances
    /// (per size of --sizes with --bench, else for --devices × --servers).
    #[arg(long)]
    baselines: Option<u64>,
}

pub fn run(args: Args) -> Result<()> {
    let sizes = args.sizes.iter().map(|s| parse_size(s)).collect::<Result<Vec<_>, _>>()?;
    if let Some(instances) = args.baselines {
        let sizes = if args.bench { sizes } else { vec![(args.devices, args.servers)] };
        return baselines(&sizes, instances, args.seed);
    }
    if args.bench {
        // The ladder prints as it goes; the first line stdout refused ends the command.
        let spinner = progress::spinner("qubo ladder");
        let mut refused = None;
        ladder(&sizes, args.seed, &args.solvers, args.export_dir.as_deref(), |event| match event {
            LadderEvent::Solving { devices, servers, step } => spinner.set_message(format!("{devices}×{servers}: {step}")),
            LadderEvent::Line(line) => spinner.suspend(|| {
                if refused.is_none() {
                    refused = say!("{line}").err();
                }
            }),
        })?;
        spinner.finish_and_clear();
        if let Some(error) = refused {
            return Err(error);
        }
        say!("{}", legend())?;
        return Ok(());
    }
    let (inst, aq) = instance(args.devices, args.servers, args.seed)?;
    say!(
        "instance: {} devices × {} servers, seed {}: {} variables, {} couplings, penalty A = {:.4} s, one-hot states {}",
        args.devices,
        args.servers,
        args.seed,
        aq.qubo().variables(),
        aq.qubo().couplings(),
        aq.penalty(),
        qmec_qubo::solver::exact::one_hot_states(args.devices, args.servers)
            .map_or("> 2^64".to_string(), |n| n.to_string()),
    )?;
    let band: Vec<String> = inst.band_hz.iter().map(|b| format!("{:.2}", b / 1e6)).collect();
    say!("pre-allocated band (MHz, square-root rule): {}", band.join(" "))?;
    if let Some(path) = &args.export_json {
        std::fs::write(path, aq.qubo().to_dimod_json()).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.export_qubo {
        std::fs::write(path, aq.qubo().to_qbsolv()).with_context(|| format!("writing {}", path.display()))?;
    }
    say!("{}", header())?;
    for (name, row) in solver_rows(&aq, &args.solvers, args.seed) {
        say!("{}", format_row(&name, &row))?;
    }
    say!("{}", legend())
}

fn baselines(sizes: &[(usize, usize)], instances: u64, seed: u64) -> Result<()> {
    say!(
        "{:<10} {:>7} {:>16} {:>10} {:>10} {:>10}",
        "method", "M×S", "latency/req (s)", "std (s)", "mean gap", "worst gap"
    )?;
    for &(m, s) in sizes {
        for r in baseline_study(m, s, instances, seed)? {
            say!(
                "{:<10} {:>7} {:>16.4} {:>10.4} {:>9.3}% {:>9.3}%",
                r.method,
                format!("{m}×{s}"),
                r.mean_latency,
                r.std_latency,
                100.0 * r.mean_gap_to_best,
                100.0 * r.worst_gap_to_best
            )?;
        }
    }
    Ok(())
}
