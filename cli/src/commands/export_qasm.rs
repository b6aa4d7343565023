//! `qmec export-qasm`: writes a trained QNN's circuit as OpenQASM 3, with
//! one input's encoding — a state from a short lyapunov rollout of the
//! model's scenario — so the file runs as is elsewhere.

use crate::output::say;
use anyhow::{Context, Result, bail};
use qmec_qnn::ModelFile;
use qmec_qnn::features::StateInput;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model file written by `qmec train` (a QNN: paper or per-link).
    #[arg(long)]
    model: PathBuf,
    /// OpenQASM 3 file to write.
    #[arg(long, default_value = "circuit.qasm")]
    out: PathBuf,
    /// Scenario for the input state (default: the one the model records).
    #[arg(long)]
    scenario: Option<String>,
    /// Seed of the rollout the input state is taken from.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Device of the pair encoded (per-link models).
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// Server of the pair encoded (per-link models).
    #[arg(long, default_value_t = 0)]
    server: usize,
}

pub fn run(args: Args) -> Result<()> {
    let (file, network) = ModelFile::load(&args.model)?;
    let scenario_name = args.scenario.clone().unwrap_or_else(|| file.scenario.name.clone());
    let scenario = super::load_scenario(&scenario_name)?;
    file.check_fits(&network, &scenario)?;
    let states = qmec_qnn::dataset::collect_states(&scenario, 1, args.seed)?;
    let Some(state) = states.first() else { bail!("the rollout produced no state") };
    let input = StateInput::new(&scenario, state, &file.scales);
    let Some(instance) = network.arch().circuit_for(&input, (args.device, args.server)) else {
        bail!("{} holds a `{}` model, which has no circuit to export", args.model.display(), file.arch());
    };
    let instance = instance?;
    let title = format!(
        "qmec {} QNN from {} (trained on `{}`, M = {}, S = {}); input: slot {} of a rollout with seed {}{}",
        file.arch(),
        args.model.display(),
        file.scenario.name,
        file.scenario.devices,
        file.scenario.servers,
        state.slot,
        args.seed,
        if file.arch() == qmec_qnn::ArchKind::PerLink {
            format!(", pair (device {}, server {})", args.device, args.server)
        } else {
            String::new()
        }
    );
    let text = qmec_qnn::qasm::export(&instance, &title)?;
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    let expectations = qmec_qnn::qasm::expectations(&instance)?;
    say!(
        "wrote {} ({} qubits, {} gates); readout ⟨Z⟩ = {:?}",
        args.out.display(),
        instance.circuit.n_qubits(),
        instance.circuit.ops().len(),
        expectations
    )?;
    Ok(())
}
