//! Writes a JSON file of OpenQASM 3 exports of both quantum architectures,
//! with qmec's readouts and final states, for
//! `quantum/crosscheck/qasm_check.py` to run in Qiskit and compare. The
//! networks are freshly initialised (random parameters exercise every gate
//! as well as trained ones) and the inputs come from paper-scenario rollouts;
//! one more amplitude-encoded input has the negative entries and zeros that
//! rollout features may lack.
//!
//! Usage: `cargo run -p qmec-qnn --example dump_qasm -- OUT.json`

use qmec_model::Scenario;
use qmec_qnn::arch::{ArchKind, CircuitInstance, Encoding, Network};
use qmec_qnn::features::{FeatureScales, StateInput};
use qmec_qnn::qasm;
use qmec_quantum::{Circuit, encoding};
use serde::Serialize;
use std::error::Error;

/// Rollout states encoded per architecture.
const STATES: usize = 4;
/// Device–server pairs encoded per state by the per-link net (the paper
/// net ignores the pair, so it gets the first only).
const PAIRS: [(usize, usize); 2] = [(0, 0), (3, 2)];
/// Real amplitudes with every sign pattern a state preparation must get right.
const SIGNED: [f64; 8] = [0.5, -1.0, 0.0, 2.0, -0.25, 0.0, 0.0, -3.0];

#[derive(Serialize)]
struct Export {
    name: String,
    /// What the per-architecture summary groups this export under.
    arch: String,
    qasm: String,
    /// qmec's ⟨Z⟩ of each readout qubit.
    readout: Vec<usize>,
    expectations: Vec<f64>,
    /// qmec's final state, little-endian like the export.
    state_re: Vec<f64>,
    state_im: Vec<f64>,
}

fn export(arch: String, name: String, instance: &CircuitInstance) -> Result<Export, Box<dyn Error>> {
    let mut state = instance.input.clone();
    instance.circuit.run(&instance.params, &mut state)?;
    Ok(Export {
        qasm: qasm::export(instance, &name)?,
        arch,
        readout: instance.readout.clone(),
        expectations: qasm::expectations(instance)?,
        state_re: state.amplitudes().iter().map(|a| a.re).collect(),
        state_im: state.amplitudes().iter().map(|a| a.im).collect(),
        name,
    })
}

fn exports() -> Result<Vec<Export>, Box<dyn Error>> {
    let scenario = Scenario::paper();
    let states = qmec_qnn::dataset::collect_states(&scenario, STATES, 7)?;
    let scales = FeatureScales::measure(&states);
    let mut out = Vec::new();
    for kind in [ArchKind::Paper, ArchKind::PerLink] {
        let network = Network::init(kind, scenario.devices, scenario.servers, 11)?;
        for (k, state) in states.iter().enumerate() {
            let input = StateInput::new(&scenario, state, &scales);
            let pairs = if kind == ArchKind::Paper { &PAIRS[..1] } else { &PAIRS[..] };
            for &(m, s) in pairs {
                let instance = network.arch().circuit_for(&input, (m, s)).ok_or("no circuit")??;
                out.push(export(kind.to_string(), format!("{kind} state {k} pair ({m}, {s})"), &instance)?);
            }
        }
    }
    out.push(export("amplitude, signed".into(), "layered ansatz on signed amplitudes".into(), &signed()?)?);
    Ok(out)
}

/// The layered ansatz on an amplitude encoding of [`SIGNED`].
fn signed() -> Result<CircuitInstance, Box<dyn Error>> {
    let input = encoding::amplitude(&SIGNED)?;
    let n = input.n_qubits();
    let circuit = Circuit::layered(n, 2)?;
    Ok(CircuitInstance {
        params: (0..circuit.n_params()).map(|p| 0.3 + 0.7 * p as f64).collect(),
        encoding: Encoding::Amplitude(input.amplitudes().iter().map(|a| a.re).collect()),
        readout: (0..n).collect(),
        circuit,
        input,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args().nth(1).ok_or("usage: dump_qasm OUT.json")?;
    let exports = exports()?;
    std::fs::write(&path, serde_json::to_string_pretty(&exports)?)?;
    println!("wrote {} OpenQASM exports to {path}", exports.len());
    Ok(())
}
