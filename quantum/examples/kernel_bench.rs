//! The qmec half of the kernel benchmark (`quantum/bench/kernel.sh`, which
//! runs it interleaved with PennyLane lightning and takes the medians).
//!
//! Usage: `kernel_bench QUBITS LAYERS PASSES`. Runs the forward pass of
//! `Circuit::layered(QUBITS, LAYERS)` (per layer RX, RY, RZ on every qubit,
//! then a CZ chain) from |0…0⟩ PASSES times, fused (`Circuit::run`) and op by
//! op (`Circuit::run_unfused`), single-threaded, and prints one line per mode:
//! `qmec-fused QUBITS NS_PER_GATE_AMPLITUDE P0 PLAST`, where P0 and PLAST are
//! the probabilities of |0…0⟩ and |1…1⟩ after one pass (a check that every
//! simulator ran the same circuit). Only the passes are timed, not resets.

use qmec_quantum::{Circuit, StateVector};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The parameter values both halves of the benchmark use.
fn params(n: usize) -> Vec<f64> {
    (0..n).map(|i| (i as f64 * 0.37).cos()).collect()
}

fn parse(args: &[String], at: usize, name: &str) -> Result<usize, String> {
    let text = args
        .get(at)
        .ok_or_else(|| format!("missing {name} (usage: kernel_bench QUBITS LAYERS PASSES)"))?;
    text.parse()
        .map_err(|e| format!("{name} {text:?} is not a count: {e}"))
}

type RunFn = fn(&Circuit, &[f64], &mut StateVector) -> qmec_quantum::error::Result<()>;

fn time_mode(
    circuit: &Circuit,
    theta: &[f64],
    passes: usize,
    run: RunFn,
) -> Result<(Duration, StateVector), String> {
    let mut state = StateVector::zero(circuit.n_qubits()).map_err(|e| e.to_string())?;
    let mut total = Duration::ZERO;
    for _ in 0..passes {
        state.reset();
        let start = Instant::now();
        run(circuit, theta, &mut state).map_err(|e| e.to_string())?;
        total += start.elapsed();
    }
    Ok((total, state))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kernel_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &[String]) -> Result<(), String> {
    let qubits = parse(args, 0, "QUBITS")?;
    let layers = parse(args, 1, "LAYERS")?;
    let passes = parse(args, 2, "PASSES")?.max(1);
    let circuit = Circuit::layered(qubits, layers).map_err(|e| e.to_string())?;
    let theta = params(circuit.n_params());
    let modes: [(&str, RunFn); 2] = [
        ("qmec-fused", Circuit::run),
        ("qmec-unfused", Circuit::run_unfused),
    ];
    for (name, run) in modes {
        let (elapsed, state) = time_mode(&circuit, &theta, passes, run)?;
        let gate_amps = (circuit.ops().len() * state.dim() * passes) as f64;
        let amps = state.amplitudes();
        println!(
            "{name} {qubits} {:.6} {:.12e} {:.12e}",
            elapsed.as_secs_f64() * 1e9 / gate_amps,
            amps[0].norm_sqr(),
            amps[amps.len() - 1].norm_sqr()
        );
    }
    Ok(())
}
