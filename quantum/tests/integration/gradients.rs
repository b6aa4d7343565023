//! Adjoint gradients against the parameter-shift rule, finite differences,
//! each other (VJP vs Jacobian) and the batch evaluators.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::max_abs_diff;
use proptest::prelude::*;
use qmec_quantum::{
    Angle, Circuit, Observable, Op, QuantumError, StateVector, adjoint, batch, encoding,
    param_shift,
};

/// Expectations after running `c` with `params` on `s0`.
fn expectations(c: &Circuit, params: &[f64], s0: &StateVector, obs: &[Observable]) -> Vec<f64> {
    let mut s = s0.clone();
    c.run(params, &mut s).unwrap();
    obs.iter().map(|o| o.expectation(&s).unwrap()).collect()
}

/// Central finite differences, h = 1e-5.
fn finite_difference_jacobian(
    c: &Circuit,
    params: &[f64],
    s0: &StateVector,
    obs: &[Observable],
) -> Vec<Vec<f64>> {
    let h = 1e-5;
    let mut rows = vec![vec![0.0; params.len()]; obs.len()];
    for p in 0..params.len() {
        let (mut plus, mut minus) = (params.to_vec(), params.to_vec());
        plus[p] += h;
        minus[p] -= h;
        let (fp, fm) = (
            expectations(c, &plus, s0, obs),
            expectations(c, &minus, s0, obs),
        );
        for k in 0..obs.len() {
            rows[k][p] = (fp[k] - fm[k]) / (2.0 * h);
        }
    }
    rows
}

fn check_circuit(seed: u64, n: usize, n_ops: usize) {
    let mut rng = common::rng(seed);
    let n_params = 4;
    let c = common::random_circuit(&mut rng, n, n_params, n_ops, true);
    // One extra trailing parameter the circuit never reads: its gradient must be 0.
    let params = common::random_params(&mut rng, n_params + 1);
    let s0 = common::random_state(&mut rng, n);
    let obs = common::observables(&mut rng, n);

    let adj = adjoint::jacobian(&c, &params, &s0, &obs).unwrap();
    let ps = param_shift::jacobian(&c, &params, &s0, &obs).unwrap();
    let fd = finite_difference_jacobian(&c, &params, &s0, &obs);
    assert_eq!(adj.n_params(), params.len());
    assert_eq!(adj.n_observables(), obs.len());
    assert!(max_abs_diff(adj.expectations(), &expectations(&c, &params, &s0, &obs)) < 1e-13);
    for (k, fd_row) in fd.iter().enumerate() {
        let a = adj.row(k).unwrap();
        let d_ps = max_abs_diff(a, ps.row(k).unwrap());
        let d_fd = max_abs_diff(a, fd_row);
        assert!(
            d_ps < 1e-12,
            "seed {seed} obs {k}: adjoint vs parameter-shift {d_ps:e}\n{a:?}\n{:?}",
            ps.row(k)
        );
        assert!(
            d_fd < 1e-7,
            "seed {seed} obs {k}: adjoint vs finite differences {d_fd:e}"
        );
        assert_eq!(a[n_params], 0.0);
    }
    // A gradient that is identically zero would pass everything above, so
    // long circuits (which always hold parameterised rotations) must show one.
    if n_ops >= 40 {
        assert!(
            (0..obs.len()).any(|k| adj.row(k).unwrap().iter().any(|g| g.abs() > 1e-6)),
            "seed {seed}: every gradient vanished"
        );
    }

    let weights: Vec<f64> = (0..obs.len())
        .map(|k| (k as f64 * 0.37).sin() + 0.2)
        .collect();
    let v = adjoint::vjp(&c, &params, &s0, &obs, &weights).unwrap();
    let jt_w = adj.transpose_mul(&weights).unwrap();
    assert!(max_abs_diff(&v.gradient, &jt_w) < 1e-12, "vjp vs Jᵀw");
    assert!(max_abs_diff(&v.expectations, adj.expectations()) < 1e-15);
    let ps_grad = param_shift::gradient(&c, &params, &s0, &obs, &weights).unwrap();
    assert!(
        max_abs_diff(&v.gradient, &ps_grad) < 1e-12,
        "vjp vs parameter-shift"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn adjoint_matches_parameter_shift_and_finite_differences(
        seed in any::<u64>(), n in 4usize..=6, n_ops in 1usize..50,
    ) {
        check_circuit(seed, n, n_ops);
    }
}

#[test]
fn fixed_seeds_long_circuits() {
    for seed in 0..4 {
        check_circuit(seed, 4 + seed as usize % 3, 80);
    }
}

#[test]
fn shared_and_scaled_parameter_known_derivative() {
    // RX(θ) then RX(2θ) on |0⟩ = RX(3θ): ⟨Z⟩ = cos 3θ, d/dθ = -3 sin 3θ.
    let mut c = Circuit::new(1).unwrap();
    c.push(Op::Rx {
        qubit: 0,
        angle: Angle::param(0),
    })
    .unwrap();
    c.push(Op::Rx {
        qubit: 0,
        angle: Angle::scaled(0, 2.0),
    })
    .unwrap();
    let t = 0.41;
    let v = adjoint::vjp(
        &c,
        &[t],
        &StateVector::zero(1).unwrap(),
        &[Observable::Z(0)],
        &[1.0],
    )
    .unwrap();
    assert!((v.expectations[0] - (3.0 * t).cos()).abs() < 1e-15);
    assert!((v.gradient[0] + 3.0 * (3.0 * t).sin()).abs() < 1e-14);
}

#[test]
fn phase_diag_qaoa_layer_known_derivative() {
    // |+⟩, exp(-iθ diag(0, 1)), then H: ⟨Z⟩ = cos θ.
    let mut c = Circuit::new(1).unwrap();
    c.push(Op::H { qubit: 0 }).unwrap();
    c.push(Op::PhaseDiag {
        param: 0,
        diag: vec![0.0, 1.0],
    })
    .unwrap();
    c.push(Op::H { qubit: 0 }).unwrap();
    let t = 0.8;
    let j = adjoint::jacobian(
        &c,
        &[t],
        &StateVector::zero(1).unwrap(),
        &[Observable::Z(0)],
    )
    .unwrap();
    assert!((j.expectations()[0] - t.cos()).abs() < 1e-15);
    assert!((j.get(0, 0).unwrap() + t.sin()).abs() < 1e-15);
    assert_eq!(j.get(0, 1), None);
}

#[test]
fn vjp_rejects_bad_arguments() {
    let c = Circuit::layered(2, 1).unwrap();
    let s = StateVector::zero(2).unwrap();
    let obs = [Observable::Z(0)];
    assert!(matches!(
        adjoint::vjp(&c, &[0.0; 6], &s, &obs, &[1.0, 2.0]),
        Err(QuantumError::SizeMismatch { .. })
    ));
    assert!(matches!(
        adjoint::vjp(&c, &[0.0; 5], &s, &obs, &[1.0]),
        Err(QuantumError::TooFewParameters { .. })
    ));
    assert!(matches!(
        adjoint::vjp(&c, &[0.0; 6], &s, &[Observable::Z(2)], &[1.0]),
        Err(QuantumError::QubitOutOfRange { .. })
    ));
    assert!(matches!(
        adjoint::vjp(&c, &[0.0; 6], &s, &obs, &[f64::NAN]),
        Err(QuantumError::NonFinite { .. })
    ));
    assert!(adjoint::jacobian(&c, &[0.0; 6], &StateVector::zero(3).unwrap(), &obs).is_err());
}

fn batch_fixture(
    n: usize,
    batch_size: usize,
) -> (
    Circuit,
    Vec<f64>,
    Vec<StateVector>,
    Vec<Observable>,
    Vec<f64>,
) {
    let mut rng = common::rng(99);
    let c = Circuit::layered(n, 2).unwrap();
    let params = common::random_params(&mut rng, c.n_params());
    let inputs: Vec<StateVector> = (0..batch_size)
        .map(|b| {
            let x: Vec<f64> = (0..(1usize << n) - 3)
                .map(|i| ((b * 31 + i) as f64 * 0.7).sin())
                .collect();
            encoding::amplitude_on(&x, n).unwrap()
        })
        .collect();
    let obs: Vec<Observable> = (0..n)
        .map(Observable::Z)
        .chain([Observable::Zz(0, 2)])
        .collect();
    let weights: Vec<f64> = (0..batch_size * obs.len())
        .map(|i| (i as f64 * 0.13).cos())
        .collect();
    (c, params, inputs, obs, weights)
}

#[test]
fn batch_vjp_is_the_sum_of_single_vjps() {
    let (c, params, inputs, obs, weights) = batch_fixture(5, 13);
    let k = obs.len();
    let mut expected_grad = vec![0.0; params.len()];
    let mut expected_exp = Vec::new();
    for (b, s) in inputs.iter().enumerate() {
        let v = adjoint::vjp(&c, &params, s, &obs, &weights[b * k..(b + 1) * k]).unwrap();
        expected_exp.extend(v.expectations);
        for (g, x) in expected_grad.iter_mut().zip(v.gradient) {
            *g += x;
        }
    }
    for threads in [1, 2, 3, 64] {
        let r = batch::vjp_with_threads(&c, &params, &inputs, &obs, &weights, threads).unwrap();
        assert!(
            max_abs_diff(&r.expectations, &expected_exp) < 1e-14,
            "threads {threads}"
        );
        assert!(
            max_abs_diff(&r.gradient, &expected_grad) < 1e-12,
            "threads {threads}"
        );
    }
    let r = batch::vjp(&c, &params, &inputs, &obs, &weights).unwrap();
    assert!(max_abs_diff(&r.gradient, &expected_grad) < 1e-12);

    let fwd = batch::forward(&c, &params, &inputs, &obs).unwrap();
    assert_eq!(fwd.batch(), inputs.len());
    assert!(max_abs_diff(fwd.expectations(), &expected_exp) < 1e-14);
    assert!(max_abs_diff(&fwd.vjp(&weights).unwrap(), &expected_grad) < 1e-12);
    assert!(fwd.vjp(&weights[1..]).is_err());
    assert!(
        max_abs_diff(
            &batch::expectations(&c, &params, &inputs, &obs).unwrap(),
            &expected_exp
        ) < 1e-14
    );
}

#[test]
fn large_batch_uses_threads_and_agrees() {
    // Big enough to cross the parallel threshold in `batch::vjp`.
    let (c, params, inputs, obs, weights) = batch_fixture(8, 40);
    let one = batch::vjp_with_threads(&c, &params, &inputs, &obs, &weights, 1).unwrap();
    let auto = batch::vjp(&c, &params, &inputs, &obs, &weights).unwrap();
    assert!(max_abs_diff(&one.gradient, &auto.gradient) < 1e-12);
    assert_eq!(one.expectations, auto.expectations);
    let fwd = batch::forward(&c, &params, &inputs, &obs).unwrap();
    assert!(max_abs_diff(&fwd.vjp(&weights).unwrap(), &one.gradient) < 1e-12);
}

#[test]
fn batch_rejects_mismatched_inputs() {
    let (c, params, mut inputs, obs, weights) = batch_fixture(4, 3);
    assert!(batch::vjp(&c, &params, &inputs, &obs, &weights[..weights.len() - 1]).is_err());
    inputs.push(StateVector::zero(3).unwrap());
    assert!(batch::vjp(&c, &params, &inputs, &obs, &weights).is_err());
    assert!(batch::forward(&c, &params, &inputs, &obs).is_err());
    let empty = batch::vjp(&c, &params, &[], &obs, &[]).unwrap();
    assert!(empty.expectations.is_empty());
    assert!(empty.gradient.iter().all(|g| *g == 0.0));
}

#[test]
fn workspace_accumulates() {
    let (c, params, inputs, obs, weights) = batch_fixture(4, 2);
    let k = obs.len();
    let mut ws = qmec_quantum::Workspace::new(4).unwrap();
    let mut exp = vec![0.0; k];
    let mut grad = vec![0.0; params.len()];
    ws.vjp_accumulate(
        &c,
        &params,
        &inputs[0],
        &obs,
        &weights[..k],
        &mut exp,
        &mut grad,
    )
    .unwrap();
    ws.vjp_accumulate(
        &c,
        &params,
        &inputs[1],
        &obs,
        &weights[k..],
        &mut exp,
        &mut grad,
    )
    .unwrap();
    let b = batch::vjp_with_threads(&c, &params, &inputs, &obs, &weights, 1).unwrap();
    assert!(max_abs_diff(&grad, &b.gradient) < 1e-13);
    assert!(
        ws.vjp_accumulate(
            &c,
            &params,
            &inputs[0],
            &obs,
            &weights[..k],
            &mut exp,
            &mut grad[1..]
        )
        .is_err()
    );
}
