//! The qmec half of the kernel benchmark (`quantum/bench/kernel.sh`, which
//! runs it interleaved with PennyLane lightning and takes the medians).
//!
//! Usage: `kernel_bench QUBITS LAYERS PASSES`. Applies the forward pass of
//! `Circuit::layered(QUBITS, LAYERS)` (per layer RX, RY, RZ on every qubit,
//! then a CZ chain) PASSES times in a row to |0…0⟩, fused (`Circuit::run`)
//! and op by op (`Circuit::run_unfused`), on one thread, and prints one line
//! per mode: `MODE QUBITS WALL_NS CPU_NS P0 PLAST`: wall-clock and on-CPU
//! nanoseconds per gate·amplitude, and the probabilities of |0…0⟩ and |1…1⟩
//! at the end (a check that every simulator ran the same circuit). On-CPU
//! time is this thread's, from /proc/thread-self/schedstat (Linux), whose
//! scheduler-tick granularity is why a sample should last a good fraction of
//! a second.

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

/// Nanoseconds this thread has spent on a CPU.
fn thread_cpu_ns() -> Result<u64, String> {
    const PATH: &str = "/proc/thread-self/schedstat";
    let text = std::fs::read_to_string(PATH).map_err(|e| format!("cannot read {PATH}: {e}"))?;
    let first = text.split_whitespace().next().unwrap_or_default();
    first
        .parse()
        .map_err(|e| format!("{PATH} starts with {first:?}, not a count of ns: {e}"))
}

/// Wall-clock and on-CPU time of the passes.
#[derive(Debug)]
struct Sample {
    wall: Duration,
    cpu_ns: u64,
    state: StateVector,
}

fn time_mode(circuit: &Circuit, theta: &[f64], passes: usize, run: RunFn) -> Result<Sample, String> {
    let mut state = StateVector::zero(circuit.n_qubits()).map_err(|e| e.to_string())?;
    let cpu_start = thread_cpu_ns()?;
    let start = Instant::now();
    for _ in 0..passes {
        run(circuit, theta, &mut state).map_err(|e| e.to_string())?;
    }
    let wall = start.elapsed();
    let cpu_ns = thread_cpu_ns()?.saturating_sub(cpu_start);
    Ok(Sample {
        wall,
        cpu_ns,
        state,
    })
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
        let sample = time_mode(&circuit, &theta, passes, run)?;
        let gate_amps = (circuit.ops().len() * sample.state.dim() * passes) as f64;
        let amps = sample.state.amplitudes();
        println!(
            "{name} {qubits} {:.6} {:.6} {:.12e} {:.12e}",
            sample.wall.as_secs_f64() * 1e9 / gate_amps,
            sample.cpu_ns as f64 / gate_amps,
            amps[0].norm_sqr(),
            amps[amps.len() - 1].norm_sqr()
        );
    }
    Ok(())
}
