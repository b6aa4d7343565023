//! Gates, states, encodings and observables against known answers.
#![allow(clippy::unwrap_used)]

use crate::common;

use proptest::prelude::*;
use qmec_quantum::observable::{expectation_diagonal, expectation_z, expectation_zz};
use qmec_quantum::state::{pennylane_wire, reverse_index_bits};
use qmec_quantum::{Circuit, Complex64, Observable, QuantumError, StateVector, encoding};
use std::f64::consts::{FRAC_1_SQRT_2, PI};

fn assert_amps(state: &StateVector, expected: &[Complex64], tol: f64) {
    assert_eq!(state.dim(), expected.len());
    for (i, (a, e)) in state.amplitudes().iter().zip(expected).enumerate() {
        assert!((a - e).norm() < tol, "amplitude {i}: {a} vs {e}");
    }
}

fn real(v: &[f64]) -> Vec<Complex64> {
    v.iter().map(|&x| Complex64::new(x, 0.0)).collect()
}

/// |⟨a|b⟩| = 1: equal up to a global phase.
fn same_up_to_phase(a: &StateVector, b: &StateVector) -> bool {
    (a.inner(b).unwrap().norm() - 1.0).abs() < 1e-12
}

#[test]
fn bell_state() {
    let mut s = StateVector::zero(2).unwrap();
    s.h(0).unwrap();
    s.cnot(0, 1).unwrap();
    assert_amps(&s, &real(&[FRAC_1_SQRT_2, 0.0, 0.0, FRAC_1_SQRT_2]), 1e-15);
    assert!((expectation_zz(&s, 0, 1).unwrap() - 1.0).abs() < 1e-15);
    assert!(expectation_z(&s, 0).unwrap().abs() < 1e-15);
}

#[test]
fn ghz_state() {
    let n = 5;
    let mut s = StateVector::zero(n).unwrap();
    s.h(0).unwrap();
    for q in 1..n {
        s.cnot(q - 1, q).unwrap();
    }
    let mut expected = vec![0.0; 1 << n];
    expected[0] = FRAC_1_SQRT_2;
    expected[(1 << n) - 1] = FRAC_1_SQRT_2;
    assert_amps(&s, &real(&expected), 1e-15);
    for q in 1..n {
        assert!((expectation_zz(&s, 0, q).unwrap() - 1.0).abs() < 1e-15);
    }
}

#[test]
fn qubit_zero_is_least_significant_bit() {
    let mut s = StateVector::zero(3).unwrap();
    s.x(2).unwrap();
    assert_eq!(s.probabilities()[0b100], 1.0);
    s.x(0).unwrap();
    assert_eq!(s.probabilities()[0b101], 1.0);
    assert_eq!(expectation_z(&s, 1).unwrap(), 1.0);
    assert_eq!(expectation_z(&s, 2).unwrap(), -1.0);
    // CNOT with control 0 flips qubit 1: |101⟩ → |111⟩.
    s.cnot(0, 1).unwrap();
    assert_eq!(s.probabilities()[0b111], 1.0);
}

#[test]
fn gate_identities_on_random_states() {
    let mut rng = common::rng(7);
    for _ in 0..20 {
        let s0 = common::random_state(&mut rng, 4);
        let check = |f: &dyn Fn(&mut StateVector), g: &dyn Fn(&mut StateVector)| {
            let (mut a, mut b) = (s0.clone(), s0.clone());
            f(&mut a);
            g(&mut b);
            assert_amps(&a, b.amplitudes(), 1e-13);
        };
        // Involutions.
        check(
            &|s| {
                s.h(1).unwrap();
                s.h(1).unwrap();
            },
            &|_| {},
        );
        check(
            &|s| {
                s.x(3).unwrap();
                s.x(3).unwrap();
            },
            &|_| {},
        );
        check(
            &|s| {
                s.cnot(2, 0).unwrap();
                s.cnot(2, 0).unwrap();
            },
            &|_| {},
        );
        check(
            &|s| {
                s.cz(1, 3).unwrap();
                s.cz(1, 3).unwrap();
            },
            &|_| {},
        );
        // CZ is symmetric; H_t CZ H_t = CNOT.
        check(&|s| s.cz(0, 2).unwrap(), &|s| s.cz(2, 0).unwrap());
        check(
            &|s| {
                s.h(3).unwrap();
                s.cz(1, 3).unwrap();
                s.h(3).unwrap();
            },
            &|s| s.cnot(1, 3).unwrap(),
        );
        // H RZ H = RX; RX(π) = -iX; RZ(a)RZ(b) = RZ(a+b).
        check(
            &|s| {
                s.h(2).unwrap();
                s.rz(2, 0.7).unwrap();
                s.h(2).unwrap();
            },
            &|s| s.rx(2, 0.7).unwrap(),
        );
        check(&|s| s.rz(0, 0.3 + 1.1).unwrap(), &|s| {
            s.rz(0, 0.3).unwrap();
            s.rz(0, 1.1).unwrap();
        });
        let (mut a, mut b) = (s0.clone(), s0.clone());
        a.rx(1, PI).unwrap();
        b.x(1).unwrap();
        let expected: Vec<Complex64> = b
            .amplitudes()
            .iter()
            .map(|v| v * Complex64::new(0.0, -1.0))
            .collect();
        assert_amps(&a, &expected, 1e-13);
        // HXH = Z = i·RZ(π): equal up to phase; CNOT differs from identity.
        let (mut a, mut b) = (s0.clone(), s0.clone());
        a.h(0).unwrap();
        a.x(0).unwrap();
        a.h(0).unwrap();
        b.rz(0, PI).unwrap();
        assert!(same_up_to_phase(&a, &b));
        let mut c = s0.clone();
        c.cnot(0, 1).unwrap();
        assert!(!same_up_to_phase(&c, &s0));
    }
}

#[test]
fn rotations_on_zero() {
    let t = 0.9_f64;
    let mut s = StateVector::zero(1).unwrap();
    s.ry(0, t).unwrap();
    assert_amps(&s, &real(&[(t / 2.0).cos(), (t / 2.0).sin()]), 1e-15);
    let mut s = StateVector::zero(1).unwrap();
    s.rx(0, t).unwrap();
    assert_amps(
        &s,
        &[
            Complex64::new((t / 2.0).cos(), 0.0),
            Complex64::new(0.0, -(t / 2.0).sin()),
        ],
        1e-15,
    );
    assert!((expectation_z(&s, 0).unwrap() - t.cos()).abs() < 1e-15);
    let mut s = StateVector::zero(1).unwrap();
    s.h(0).unwrap();
    s.rz(0, t).unwrap();
    let e = Complex64::from_polar(FRAC_1_SQRT_2, -t / 2.0);
    assert_amps(&s, &[e, e.conj()], 1e-15);
}

#[test]
fn phase_diag_multiplies_phases() {
    let mut s = StateVector::zero(2).unwrap();
    s.h(0).unwrap();
    s.h(1).unwrap();
    let d = [0.0, 1.0, -2.0, 0.5];
    s.phase_diag(&d, 0.4).unwrap();
    let expected: Vec<Complex64> = d
        .iter()
        .map(|x| Complex64::from_polar(0.5, -0.4 * x))
        .collect();
    assert_amps(&s, &expected, 1e-15);
    assert!(matches!(
        s.phase_diag(&d[..3], 0.1),
        Err(QuantumError::SizeMismatch { .. })
    ));
}

#[test]
fn gate_errors_are_typed() {
    let mut s = StateVector::zero(3).unwrap();
    assert_eq!(
        s.h(3),
        Err(QuantumError::QubitOutOfRange {
            qubit: 3,
            n_qubits: 3
        })
    );
    assert_eq!(s.cnot(1, 1), Err(QuantumError::RepeatedQubit { qubit: 1 }));
    assert!(matches!(
        s.rx(0, f64::NAN),
        Err(QuantumError::NonFinite { .. })
    ));
    assert!(matches!(StateVector::zero(0), Err(QuantumError::NoQubits)));
    assert!(matches!(
        StateVector::zero(64),
        Err(QuantumError::TooManyQubits { .. })
    ));
    assert!(matches!(
        StateVector::from_amplitudes(vec![Complex64::new(1.0, 0.0); 3]),
        Err(QuantumError::NotPowerOfTwo { len: 3 })
    ));
    // A failed gate leaves the state untouched.
    assert_eq!(s, StateVector::zero(3).unwrap());
}

#[test]
fn pennylane_mapping_helpers() {
    assert_eq!(pennylane_wire(0, 4), Some(3));
    assert_eq!(pennylane_wire(3, 4), Some(0));
    assert_eq!(pennylane_wire(4, 4), None);
    assert_eq!(reverse_index_bits(0b0001, 4), 0b1000);
    assert_eq!(reverse_index_bits(0b0110, 4), 0b0110);
    assert_eq!(reverse_index_bits(0b1101, 4), 0b1011);
    let mut s = StateVector::zero(3).unwrap();
    s.x(0).unwrap();
    assert_eq!(s.to_reversed_qubit_order().probabilities()[0b100], 1.0);
}

#[test]
fn amplitude_encoding() {
    let s = encoding::amplitude(&[3.0, 0.0, 4.0]).unwrap();
    assert_eq!(s.n_qubits(), 2);
    assert_amps(&s, &real(&[0.6, 0.0, 0.8, 0.0]), 1e-15);
    assert_eq!(encoding::amplitude(&[2.0]).unwrap().n_qubits(), 1);
    assert_eq!(encoding::amplitude_on(&[1.0, 1.0], 3).unwrap().dim(), 8);
    assert_eq!(encoding::qubits_for_amplitudes(5), 3);
    assert_eq!(encoding::qubits_for_amplitudes(8), 3);
    use qmec_quantum::EncodingError as E;
    let err = |r: Result<StateVector, QuantumError>| match r {
        Err(QuantumError::Encoding(e)) => e,
        other => panic!("expected an encoding error, got {other:?}"),
    };
    assert_eq!(err(encoding::amplitude(&[0.0, 0.0, 0.0])), E::AllZero);
    assert_eq!(err(encoding::amplitude(&[])), E::Empty);
    assert!(matches!(
        err(encoding::amplitude(&[1.0, f64::NAN])),
        E::NonFinite { index: 1, .. }
    ));
    assert!(matches!(
        err(encoding::amplitude(&[1e200, 1e200])),
        E::NormOverflow
    ));
    assert_eq!(
        err(encoding::amplitude_on(&[1.0; 5], 2)),
        E::TooManyFeatures {
            len: 5,
            capacity: 4
        }
    );
    assert!(
        encoding::amplitude(&[0.0, 0.0])
            .unwrap_err()
            .to_string()
            .contains("all-zero")
    );
    // amplitude_into leaves the register untouched on error and reuses it on success.
    let mut s = StateVector::zero(2).unwrap();
    assert!(encoding::amplitude_into(&[0.0], &mut s).is_err());
    assert_eq!(s, StateVector::zero(2).unwrap());
    encoding::amplitude_into(&[0.0, -2.0], &mut s).unwrap();
    assert_amps(&s, &real(&[0.0, -1.0, 0.0, 0.0]), 1e-15);
}

#[test]
fn angle_encoding() {
    let x = [0.3, -1.2, 2.5];
    let s = encoding::angle(&x).unwrap();
    for (q, xi) in x.iter().enumerate() {
        assert!((expectation_z(&s, q).unwrap() - xi.cos()).abs() < 1e-14);
    }
    // Product state: amplitude of |q2 q1 q0⟩ = Π cos/sin(x_q/2).
    let i = 0b101;
    let expected = (x[0] / 2.0).sin() * (x[1] / 2.0).cos() * (x[2] / 2.0).sin();
    assert!((s.amplitudes()[i].re - expected).abs() < 1e-15);
    let mut small = StateVector::zero(2).unwrap();
    assert!(encoding::angle_into(&x, &mut small).is_err());
    assert!(encoding::angle(&[f64::INFINITY]).is_err());
}

#[test]
fn diagonal_observables_agree() {
    let mut rng = common::rng(3);
    let s = common::random_state(&mut rng, 4);
    let p = s.probabilities();
    let d: Vec<f64> = (0..16).map(|i| (i as f64).sin()).collect();
    let direct: f64 = p.iter().zip(&d).map(|(a, b)| a * b).sum();
    assert!((expectation_diagonal(&s, &d).unwrap() - direct).abs() < 1e-15);
    // Z_2 and Z_0 Z_3 written as diagonals.
    let z2: Vec<f64> = (0..16)
        .map(|i| if i & 4 == 0 { 1.0 } else { -1.0 })
        .collect();
    let z03: Vec<f64> = (0..16)
        .map(|i| {
            if ((i & 1) ^ (i >> 3 & 1)) == 0 {
                1.0
            } else {
                -1.0
            }
        })
        .collect();
    assert!(
        (Observable::Diagonal(z2).expectation(&s).unwrap() - expectation_z(&s, 2).unwrap()).abs()
            < 1e-15
    );
    assert!(
        (Observable::Diagonal(z03).expectation(&s).unwrap()
            - Observable::Zz(0, 3).expectation(&s).unwrap())
        .abs()
            < 1e-15
    );
    assert!(Observable::Z(4).expectation(&s).is_err());
    assert!(Observable::Zz(1, 1).expectation(&s).is_err());
    assert!(Observable::Diagonal(vec![1.0; 15]).expectation(&s).is_err());
    assert!(
        Observable::Diagonal(vec![f64::NAN; 16])
            .expectation(&s)
            .is_err()
    );
}

#[test]
fn circuit_serde_round_trip_and_validation() {
    let mut rng = common::rng(11);
    let c = common::random_circuit(&mut rng, 3, 4, 30, true);
    let json = serde_json::to_string(&c).unwrap();
    let back: Circuit = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.n_params(), c.n_params());
    // Scale defaults to 1; invalid circuits are rejected when deserialised.
    let ok = r#"{"n_qubits":2,"ops":[{"op":"rx","qubit":1,"angle":{"param":{"index":2}}},{"op":"cz","q1":0,"q2":1}]}"#;
    let c: Circuit = serde_json::from_str(ok).unwrap();
    assert_eq!(c.n_params(), 3);
    for bad in [
        r#"{"n_qubits":2,"ops":[{"op":"h","qubit":2}]}"#,
        r#"{"n_qubits":2,"ops":[{"op":"cnot","control":1,"target":1}]}"#,
        r#"{"n_qubits":2,"ops":[{"op":"phase_diag","param":0,"diag":[1.0,2.0]}]}"#,
        r#"{"n_qubits":0,"ops":[]}"#,
    ] {
        assert!(serde_json::from_str::<Circuit>(bad).is_err(), "{bad}");
    }
}

#[test]
fn run_checks_params_and_size() {
    let c = Circuit::layered(3, 2).unwrap();
    assert_eq!(c.n_params(), 18);
    let mut s = StateVector::zero(3).unwrap();
    assert_eq!(
        c.run(&[0.1; 17], &mut s),
        Err(QuantumError::TooFewParameters {
            needed: 18,
            given: 17
        })
    );
    let mut bad = vec![0.1; 18];
    bad[4] = f64::NAN;
    assert!(matches!(
        c.run(&bad, &mut s),
        Err(QuantumError::NonFinite { index: 4, .. })
    ));
    let mut s4 = StateVector::zero(4).unwrap();
    assert!(matches!(
        c.run(&[0.1; 18], &mut s4),
        Err(QuantumError::SizeMismatch { .. })
    ));
    assert_eq!(s, StateVector::zero(3).unwrap());
    c.run(&[0.1; 20], &mut s).unwrap();
    assert_ne!(s, StateVector::zero(3).unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_circuits_preserve_norm(seed in any::<u64>(), n in 1usize..7, n_ops in 0usize..60) {
        let mut rng = common::rng(seed);
        let c = if n == 1 {
            // Two-qubit ops need two qubits: a single-qubit layered circuit instead.
            Circuit::layered(1, n_ops / 3 + 1).unwrap()
        } else {
            common::random_circuit(&mut rng, n, 5, n_ops, true)
        };
        let params = common::random_params(&mut rng, c.n_params().max(5));
        let mut s = common::random_state(&mut rng, n);
        c.run(&params, &mut s).unwrap();
        prop_assert!((s.norm() - 1.0).abs() < 1e-12, "norm {}", s.norm());
    }
}

#[test]
fn fused_forward_pass_matches_op_by_op_past_the_cache_block() {
    // 16 qubits: above the 2^14-amplitude blocks, so gates on qubits 14 and
    // 15 sweep the state alone while the rest run block by block.
    let n = 16;
    for seed in 0..3 {
        let mut rng = common::rng(seed);
        let circuit = common::random_circuit(&mut rng, n, 6, 60, true);
        let params = common::random_params(&mut rng, 6);
        let input = common::random_state(&mut rng, n);
        let mut fused = input.clone();
        circuit.run(&params, &mut fused).unwrap();
        let mut unfused = input;
        circuit.run_unfused(&params, &mut unfused).unwrap();
        for (i, (a, b)) in fused
            .amplitudes()
            .iter()
            .zip(unfused.amplitudes())
            .enumerate()
        {
            assert!(
                (a - b).norm() < 1e-13,
                "seed {seed}, amplitude {i}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn unfused_run_checks_its_arguments() {
    let circuit = Circuit::layered(3, 1).unwrap();
    let mut wrong_size = StateVector::zero(2).unwrap();
    assert!(circuit.run_unfused(&[0.0; 9], &mut wrong_size).is_err());
    let mut state = StateVector::zero(3).unwrap();
    assert!(circuit.run_unfused(&[0.0; 8], &mut state).is_err());
}
