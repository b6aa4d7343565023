//! Writes a JSON file of fixed circuits with qmec's expectations, Jacobians,
//! VJP gradients and final states, for `crosscheck/crosscheck.py` to rebuild
//! in PennyLane and compare.
//!
//! Usage: `cargo run -p qmec-quantum --example dump_circuits -- OUT.json`

use qmec_quantum::{Angle, Circuit, Observable, Op, StateVector, adjoint, encoding};
use serde::Serialize;
use std::error::Error;

/// How the initial state is prepared.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Input {
    Zero,
    /// Amplitude encoding of `features` (normalised, zero-padded).
    Amplitude {
        features: Vec<f64>,
    },
    /// RY(features[q]) on qubit q.
    Angle {
        features: Vec<f64>,
    },
}

#[derive(Serialize)]
struct Case {
    name: String,
    circuit: Circuit,
    params: Vec<f64>,
    input: Input,
    observables: Vec<Observable>,
    weights: Vec<f64>,
    expectations: Vec<f64>,
    jacobian: Vec<Vec<f64>>,
    vjp_gradient: Vec<f64>,
    state_re: Vec<f64>,
    state_im: Vec<f64>,
}

fn case(
    name: &str,
    circuit: Circuit,
    params: Vec<f64>,
    input: Input,
    observables: Vec<Observable>,
) -> Result<Case, Box<dyn Error>> {
    let n = circuit.n_qubits();
    let initial = match &input {
        Input::Zero => StateVector::zero(n)?,
        Input::Amplitude { features } => encoding::amplitude_on(features, n)?,
        Input::Angle { features } => {
            let mut s = StateVector::zero(n)?;
            encoding::angle_into(features, &mut s)?;
            s
        }
    };
    let jac = adjoint::jacobian(&circuit, &params, &initial, &observables)?;
    let weights: Vec<f64> = (0..observables.len())
        .map(|k| 1.0 - 0.3 * k as f64)
        .collect();
    let vjp = adjoint::vjp(&circuit, &params, &initial, &observables, &weights)?;
    let mut fin = initial.clone();
    circuit.run(&params, &mut fin)?;
    Ok(Case {
        name: name.to_string(),
        params,
        observables,
        weights,
        expectations: jac.expectations().to_vec(),
        jacobian: (0..jac.n_observables())
            .filter_map(|k| jac.row(k).map(<[f64]>::to_vec))
            .collect(),
        vjp_gradient: vjp.gradient,
        state_re: fin.amplitudes().iter().map(|a| a.re).collect(),
        state_im: fin.amplitudes().iter().map(|a| a.im).collect(),
        circuit,
        input,
    })
}

/// Deterministic pseudo-random values in [-π, π).
fn values(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 + 1.0) * 12.9898 + seed).sin() * std::f64::consts::PI)
        .collect()
}

fn cases() -> Result<Vec<Case>, Box<dyn Error>> {
    let mut out = Vec::new();

    // 1. Entangling start + layered ansatz.
    let mut c = Circuit::new(3)?;
    c.push(Op::H { qubit: 0 })?
        .push(Op::Cnot {
            control: 0,
            target: 1,
        })?
        .push(Op::X { qubit: 2 })?;
    for op in Circuit::layered(3, 2)?.ops() {
        c.push(op.clone())?;
    }
    let p = values(c.n_params(), 0.1);
    out.push(case(
        "bell_then_layered_3q",
        c,
        p,
        Input::Zero,
        vec![
            Observable::Z(0),
            Observable::Z(1),
            Observable::Z(2),
            Observable::Zz(0, 2),
        ],
    )?);

    // 2. The QNN shape: amplitude-encoded features, 2 layers, Z on every qubit.
    let c = Circuit::layered(6, 2)?;
    let p = values(c.n_params(), 0.2);
    let features = values(41, 0.3);
    out.push(case(
        "amplitude_layered_6q",
        c,
        p,
        Input::Amplitude { features },
        (0..6).map(Observable::Z).collect(),
    )?);

    // 3. Shared and scaled parameters, fixed rotations, every gate kind.
    let mut c = Circuit::new(4)?;
    let diag: Vec<f64> = values(16, 0.4).iter().map(|x| x / 2.0).collect();
    c.push(Op::H { qubit: 3 })?
        .push(Op::Rx {
            qubit: 0,
            angle: Angle::param(0),
        })?
        .push(Op::Ry {
            qubit: 1,
            angle: Angle::scaled(0, -1.7),
        })?
        .push(Op::Rz {
            qubit: 3,
            angle: Angle::Fixed(0.9),
        })?
        .push(Op::Cnot {
            control: 3,
            target: 0,
        })?
        .push(Op::Rz {
            qubit: 0,
            angle: Angle::scaled(1, 0.5),
        })?
        .push(Op::PhaseDiag {
            param: 2,
            diag: diag.clone(),
        })?
        .push(Op::Cz { q1: 1, q2: 2 })?
        .push(Op::Ry {
            qubit: 2,
            angle: Angle::param(1),
        })?
        .push(Op::X { qubit: 1 })?
        .push(Op::Rx {
            qubit: 3,
            angle: Angle::scaled(2, 2.5),
        })?
        .push(Op::Cnot {
            control: 1,
            target: 2,
        })?
        .push(Op::Ry {
            qubit: 3,
            angle: Angle::Fixed(-0.4),
        })?
        .push(Op::Rx {
            qubit: 2,
            angle: Angle::param(3),
        })?
        .push(Op::Rz {
            qubit: 1,
            angle: Angle::param(0),
        })?;
    let p = vec![0.31, -1.2, 0.77, 2.05];
    let obs = vec![
        Observable::Z(0),
        Observable::Zz(1, 3),
        Observable::Diagonal(values(16, 0.5)),
        Observable::Z(3),
    ];
    out.push(case("shared_scaled_all_gates_4q", c, p, Input::Zero, obs)?);

    // 4. QAOA for MaxCut on a 4-cycle with a chord, depth 2.
    let n = 4;
    let edges = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)];
    let cost: Vec<f64> = (0..1usize << n)
        .map(|i| {
            -(edges
                .iter()
                .filter(|(a, b)| ((i >> a) ^ (i >> b)) & 1 == 1)
                .count() as f64)
        })
        .collect();
    let mut c = Circuit::new(n)?;
    for q in 0..n {
        c.push(Op::H { qubit: q })?;
    }
    for layer in 0..2 {
        c.push(Op::PhaseDiag {
            param: 2 * layer,
            diag: cost.clone(),
        })?;
        for q in 0..n {
            c.push(Op::Rx {
                qubit: q,
                angle: Angle::scaled(2 * layer + 1, 2.0),
            })?;
        }
    }
    out.push(case(
        "qaoa_maxcut_p2_4q",
        c,
        vec![0.4, 0.9, 0.7, 0.35],
        Input::Zero,
        vec![Observable::Diagonal(cost)],
    )?);

    // 5. Angle encoding, one layer, a CNOT ring.
    let mut c = Circuit::layered(5, 1)?;
    for q in 0..5 {
        c.push(Op::Cnot {
            control: q,
            target: (q + 1) % 5,
        })?;
    }
    let p = values(c.n_params(), 0.6);
    let obs = vec![Observable::Z(4), Observable::Zz(0, 4), Observable::Z(2)];
    out.push(case(
        "angle_layered_ring_5q",
        c,
        p,
        Input::Angle {
            features: vec![0.1, -0.5, 1.3, 2.2, -2.9],
        },
        obs,
    )?);
    Ok(out)
}

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: dump_circuits OUT.json")?;
    let cases = cases()?;
    std::fs::write(&path, serde_json::to_string_pretty(&cases)?)?;
    println!("wrote {} circuits to {path}", cases.len());
    Ok(())
}
