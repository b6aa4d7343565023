//! Gates that prepare a real amplitude-encoded state from |0…0⟩.
//!
//! [`crate::encoding::amplitude_on`] writes amplitudes straight into a
//! register, which no other simulator or device can do: a circuit exported
//! elsewhere must build its input from |0…0⟩ with gates. This module gives
//! that circuit, after Möttönen et al., "Transformation of quantum states
//! using uniformly controlled rotations" (2005), specialised to real
//! amplitudes: no phases are needed, only RY and CNOT.
//!
//! The qubits are set from the most significant down. Qubit t receives one
//! RY per value h of the qubits above it (a *uniformly controlled* RY) that
//! splits the weight of block h between its bit-t = 0 and bit-t = 1 halves.
//! A half's weight is its norm, except on qubit 0, where a half is a single
//! amplitude and its signed value is used: `2·atan2(high, low)` then carries
//! the sign into the angle, which is how negative amplitudes come out right.
//! Each uniformly controlled RY over k controls is 2^k plain RYs and 2^k
//! CNOTs in Gray-code order (Möttönen's eq. 3–5). In all, 2^n − 1 RYs and
//! 2^n − 2 CNOTs.

use crate::circuit::{Angle, Circuit, Op};
use crate::encoding;
use crate::error::Result;

/// A circuit taking |0…0⟩ on `n_qubits` qubits to the amplitude encoding of
/// `features` (normalised and zero-padded, exactly as
/// [`encoding::amplitude_on`] writes it, and refused for the same reasons).
pub fn amplitude_on(features: &[f64], n_qubits: usize) -> Result<Circuit> {
    let state = encoding::amplitude_on(features, n_qubits)?;
    let amps: Vec<f64> = state.amplitudes().iter().map(|a| a.re).collect();
    let mut ops = Vec::new();
    for target in (0..n_qubits).rev() {
        let angles = split_angles(&amps, target);
        uniformly_controlled_ry(&mut ops, target, &angles);
    }
    Circuit::from_ops(n_qubits, ops)
}

/// For every value h of the qubits above `target`, the RY angle that splits
/// block h of `amps` between its two halves on `target`.
fn split_angles(amps: &[f64], target: usize) -> Vec<f64> {
    let half = 1usize << target;
    amps.chunks(2 * half)
        .map(|block| {
            let (low, high) = block.split_at(half);
            2.0 * f64::atan2(weight(high), weight(low))
        })
        .collect()
}

/// A single amplitude keeps its sign (only qubit 0's split sees one); a
/// longer half contributes its norm, which its own sub-splits distribute.
fn weight(half: &[f64]) -> f64 {
    match half {
        [a] => *a,
        _ => half.iter().map(|a| a * a).sum::<f64>().sqrt(),
    }
}

/// Appends RY(`angles[h]`) on `target` conditioned on the qubits above it
/// holding h (bit j of h is qubit target + 1 + j).
///
/// Between consecutive plain RYs a CNOT flips the target's frame whenever
/// its control is 1; after step i the set of controls flipped an odd number
/// of times is gray(i), and X·RY(θ)·X = RY(−θ), so control value h sees
/// Σ_i (−1)^{|h ∧ gray(i)|} θ_i. Solving that Walsh–Hadamard system for θ
/// gives the angles below; the last CNOT returns the frame to gray(0) = 0.
fn uniformly_controlled_ry(ops: &mut Vec<Op>, target: usize, angles: &[f64]) {
    let count = angles.len();
    for i in 0..count {
        let mask = gray(i);
        let theta = angles
            .iter()
            .enumerate()
            .map(|(h, a)| if (h & mask).count_ones().is_multiple_of(2) { *a } else { -*a })
            .sum::<f64>()
            / count as f64;
        ops.push(Op::Ry {
            qubit: target,
            angle: Angle::Fixed(theta),
        });
        if count > 1 {
            let flipped = gray(i) ^ gray((i + 1) % count);
            ops.push(Op::Cnot {
                control: target + 1 + flipped.trailing_zeros() as usize,
                target,
            });
        }
    }
}

fn gray(i: usize) -> usize {
    i ^ (i >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StateVector;
    use crate::error::{EncodingError, QuantumError};
    use proptest::prelude::*;

    fn prepared(features: &[f64], n: usize) -> StateVector {
        let circuit = amplitude_on(features, n).expect("valid features");
        let mut state = StateVector::zero(n).expect("register");
        circuit.run(&[], &mut state).expect("runs");
        state
    }

    fn max_deviation(features: &[f64], n: usize) -> f64 {
        let expected = encoding::amplitude_on(features, n).expect("valid features");
        prepared(features, n)
            .amplitudes()
            .iter()
            .zip(expected.amplitudes())
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max)
    }

    /// Entries drawn so that exact zeros and negative values are common.
    fn feature() -> impl Strategy<Value = f64> {
        prop_oneof![Just(0.0), -1.0..1.0f64, -1e3..1e3f64]
    }

    fn features() -> impl Strategy<Value = (Vec<f64>, usize)> {
        (1usize..=6).prop_flat_map(|n| {
            (prop::collection::vec(feature(), 1..=(1 << n)), Just(n))
                .prop_filter("not all zero", |(f, _)| f.iter().any(|x| *x != 0.0))
        })
    }

    proptest! {
        #[test]
        fn prepares_any_real_vector_from_zero((features, n) in features()) {
            prop_assert!(max_deviation(&features, n) < 1e-12);
        }
    }

    #[test]
    fn gate_counts_follow_the_construction() {
        let circuit = amplitude_on(&[1.0, -2.0, 0.0, 3.0, 0.5, 0.0, -1.0, 2.0], 3).expect("valid");
        let rys = circuit.ops().iter().filter(|op| matches!(op, Op::Ry { .. })).count();
        assert_eq!(rys, 7);
        assert_eq!(circuit.ops().len() - rys, 6);
    }

    #[test]
    fn signs_and_single_basis_states_come_out_exactly() {
        assert!(max_deviation(&[0.0, 0.0, 0.0, -1.0], 2) < 1e-15);
        assert!(max_deviation(&[-1.0], 3) < 1e-15);
        assert!(max_deviation(&[0.0, -3.0, 4.0], 2) < 1e-15);
    }

    #[test]
    fn unusable_features_are_refused_like_the_encoding() {
        assert_eq!(
            amplitude_on(&[0.0, 0.0], 1),
            Err(QuantumError::Encoding(EncodingError::AllZero))
        );
        assert_eq!(
            amplitude_on(&[1.0; 5], 2),
            Err(QuantumError::Encoding(EncodingError::TooManyFeatures { len: 5, capacity: 4 }))
        );
    }
}
