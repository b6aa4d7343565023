//! The state vector and the checked, public gate API.
//!
//! A [`StateVector`] is the full 2^n complex amplitude vector of an n-qubit
//! register. Gates act in place. Every public method checks its qubit
//! arguments and returns a [`QuantumError`] instead of panicking; the
//! unchecked loops live in `kernels`.
//!
//! # Qubit convention
//!
//! Qubit `q` is bit `q` of the basis index: qubit 0 is the **least**
//! significant bit, so for 3 qubits the amplitude at index `0b110` belongs to
//! |q2=1, q1=1, q0=0⟩.
//!
//! PennyLane (and most textbooks' ket notation) reads the other way: wire 0 is
//! the **most** significant bit. Two ways to line the two up:
//!
//! * map qmec qubit `q` to PennyLane wire `n - 1 - q` ([`pennylane_wire`]);
//!   then both simulators hold the very same amplitude array, index for index,
//!   and a diagonal observable or an amplitude encoding needs no permutation.
//!   The cross-check in `quantum/crosscheck/` does this.
//! * map qubit `q` to wire `q`; then amplitude `i` here is amplitude
//!   `reverse_bits(i)` there ([`reverse_index_bits`],
//!   [`StateVector::to_reversed_qubit_order`]).

use crate::error::{QuantumError, Result};
use crate::kernels;
use num_complex::Complex64;

/// Largest register this simulator will allocate (2^30 amplitudes = 16 GiB).
pub const MAX_QUBITS: usize = 30;

/// The PennyLane wire that holds qmec qubit `qubit` in an `n_qubits` register
/// when the two amplitude arrays are to coincide (see the module docs).
/// Returns `None` if `qubit >= n_qubits`.
pub fn pennylane_wire(qubit: usize, n_qubits: usize) -> Option<usize> {
    (qubit < n_qubits).then(|| n_qubits - 1 - qubit)
}

/// Reverses the low `n_qubits` bits of a basis index: converts between
/// "qubit q = bit q" and "qubit q = bit n-1-q" (PennyLane wire order with
/// qubit q on wire q). Bits above `n_qubits` are dropped.
pub fn reverse_index_bits(index: usize, n_qubits: usize) -> usize {
    if n_qubits == 0 {
        return 0;
    }
    // Bit k moves to 63 - k, then to n - 1 - k; bits k >= n fall off.
    index.reverse_bits() >> (usize::BITS as usize - n_qubits.min(usize::BITS as usize))
}

/// The amplitudes of an n-qubit register (see the module docs for the order).
#[derive(Debug, Clone, PartialEq)]
pub struct StateVector {
    n_qubits: usize,
    amps: Vec<Complex64>,
}

pub(crate) fn check_n_qubits(n_qubits: usize) -> Result<()> {
    if n_qubits == 0 {
        return Err(QuantumError::NoQubits);
    }
    if n_qubits > MAX_QUBITS {
        return Err(QuantumError::TooManyQubits {
            requested: n_qubits,
            max: MAX_QUBITS,
        });
    }
    Ok(())
}

impl StateVector {
    /// |0…0⟩ on `n_qubits` qubits (1 ≤ n ≤ [`MAX_QUBITS`]).
    pub fn zero(n_qubits: usize) -> Result<Self> {
        check_n_qubits(n_qubits)?;
        let mut amps = vec![Complex64::new(0.0, 0.0); 1usize << n_qubits];
        amps[0] = Complex64::new(1.0, 0.0);
        Ok(Self { n_qubits, amps })
    }

    /// A state from raw amplitudes (length a power of two ≥ 2, all finite).
    /// The vector is taken as given, not normalised.
    pub fn from_amplitudes(amps: Vec<Complex64>) -> Result<Self> {
        let len = amps.len();
        if len < 2 || !len.is_power_of_two() {
            return Err(QuantumError::NotPowerOfTwo { len });
        }
        let n_qubits = len.trailing_zeros() as usize;
        check_n_qubits(n_qubits)?;
        if let Some(index) = amps
            .iter()
            .position(|a| !(a.re.is_finite() && a.im.is_finite()))
        {
            return Err(QuantumError::NonFinite {
                what: "amplitude",
                index,
            });
        }
        Ok(Self { n_qubits, amps })
    }

    /// Number of qubits.
    pub fn n_qubits(&self) -> usize {
        self.n_qubits
    }

    /// Number of amplitudes, 2^n.
    pub fn dim(&self) -> usize {
        self.amps.len()
    }

    /// The amplitudes, indexed as described in the module docs.
    pub fn amplitudes(&self) -> &[Complex64] {
        &self.amps
    }

    pub(crate) fn amps_mut(&mut self) -> &mut [Complex64] {
        &mut self.amps
    }

    /// Consumes the state, returning its amplitudes.
    pub fn into_amplitudes(self) -> Vec<Complex64> {
        self.amps
    }

    /// Σ|aᵢ|².
    pub fn norm_sqr(&self) -> f64 {
        self.amps.iter().map(|a| a.norm_sqr()).sum()
    }

    /// The Euclidean norm, 1 for a physical state.
    pub fn norm(&self) -> f64 {
        self.norm_sqr().sqrt()
    }

    /// Measurement probabilities |aᵢ|² in basis-index order.
    pub fn probabilities(&self) -> Vec<f64> {
        self.amps.iter().map(|a| a.norm_sqr()).collect()
    }

    /// ⟨self|other⟩.
    pub fn inner(&self, other: &StateVector) -> Result<Complex64> {
        self.check_same_size(other)?;
        Ok(self
            .amps
            .iter()
            .zip(&other.amps)
            .map(|(a, b)| a.conj() * b)
            .sum())
    }

    /// Overwrites this state with `other`'s amplitudes without reallocating.
    pub fn copy_from(&mut self, other: &StateVector) -> Result<()> {
        self.check_same_size(other)?;
        self.amps.copy_from_slice(&other.amps);
        Ok(())
    }

    /// Resets to |0…0⟩ without reallocating.
    pub fn reset(&mut self) {
        self.amps.fill(Complex64::new(0.0, 0.0));
        self.amps[0] = Complex64::new(1.0, 0.0);
    }

    /// The same state with qubit `q` renamed `n - 1 - q`: the amplitude array
    /// PennyLane holds when qmec qubit `q` sits on its wire `q`.
    pub fn to_reversed_qubit_order(&self) -> StateVector {
        let mut amps = vec![Complex64::new(0.0, 0.0); self.amps.len()];
        for (i, a) in self.amps.iter().enumerate() {
            amps[reverse_index_bits(i, self.n_qubits)] = *a;
        }
        StateVector {
            n_qubits: self.n_qubits,
            amps,
        }
    }

    fn check_same_size(&self, other: &StateVector) -> Result<()> {
        if self.n_qubits != other.n_qubits {
            return Err(QuantumError::SizeMismatch {
                what: "qubits in the other state",
                expected: self.n_qubits,
                found: other.n_qubits,
            });
        }
        Ok(())
    }

    pub(crate) fn check_qubit(&self, qubit: usize) -> Result<()> {
        check_qubit(qubit, self.n_qubits)
    }

    fn check_pair(&self, q1: usize, q2: usize) -> Result<()> {
        check_pair(q1, q2, self.n_qubits)
    }

    fn check_angle(theta: f64) -> Result<()> {
        if theta.is_finite() {
            Ok(())
        } else {
            Err(QuantumError::NonFinite {
                what: "rotation angle",
                index: 0,
            })
        }
    }

    /// RX(θ) = exp(-iθX/2) on `qubit`.
    pub fn rx(&mut self, qubit: usize, theta: f64) -> Result<()> {
        self.check_qubit(qubit)?;
        Self::check_angle(theta)?;
        kernels::rx(&mut self.amps, qubit, theta);
        Ok(())
    }

    /// RY(θ) = exp(-iθY/2) on `qubit`.
    pub fn ry(&mut self, qubit: usize, theta: f64) -> Result<()> {
        self.check_qubit(qubit)?;
        Self::check_angle(theta)?;
        kernels::ry(&mut self.amps, qubit, theta);
        Ok(())
    }

    /// RZ(θ) = exp(-iθZ/2) on `qubit`, applied as a phase multiplication.
    pub fn rz(&mut self, qubit: usize, theta: f64) -> Result<()> {
        self.check_qubit(qubit)?;
        Self::check_angle(theta)?;
        kernels::rz(&mut self.amps, qubit, theta);
        Ok(())
    }

    /// Hadamard on `qubit`.
    pub fn h(&mut self, qubit: usize) -> Result<()> {
        self.check_qubit(qubit)?;
        kernels::h(&mut self.amps, qubit);
        Ok(())
    }

    /// Pauli X (NOT) on `qubit`.
    pub fn x(&mut self, qubit: usize) -> Result<()> {
        self.check_qubit(qubit)?;
        kernels::x(&mut self.amps, qubit);
        Ok(())
    }

    /// CNOT: flips `target` where `control` is 1.
    pub fn cnot(&mut self, control: usize, target: usize) -> Result<()> {
        self.check_pair(control, target)?;
        kernels::cnot(&mut self.amps, control, target);
        Ok(())
    }

    /// CZ: negates the amplitudes where both qubits are 1 (symmetric).
    pub fn cz(&mut self, q1: usize, q2: usize) -> Result<()> {
        self.check_pair(q1, q2)?;
        kernels::cz(&mut self.amps, q1, q2);
        Ok(())
    }

    /// exp(-iθD) for a real diagonal `D` of length 2^n, as phase multiplications.
    pub fn phase_diag(&mut self, diag: &[f64], theta: f64) -> Result<()> {
        check_diagonal(diag, self.n_qubits)?;
        Self::check_angle(theta)?;
        kernels::phase_diag(&mut self.amps, diag, theta);
        Ok(())
    }
}

pub(crate) fn check_qubit(qubit: usize, n_qubits: usize) -> Result<()> {
    if qubit < n_qubits {
        Ok(())
    } else {
        Err(QuantumError::QubitOutOfRange { qubit, n_qubits })
    }
}

pub(crate) fn check_pair(q1: usize, q2: usize, n_qubits: usize) -> Result<()> {
    check_qubit(q1, n_qubits)?;
    check_qubit(q2, n_qubits)?;
    if q1 == q2 {
        return Err(QuantumError::RepeatedQubit { qubit: q1 });
    }
    Ok(())
}

/// A diagonal must have 2^n finite entries.
pub(crate) fn check_diagonal(diag: &[f64], n_qubits: usize) -> Result<()> {
    let dim = 1usize << n_qubits;
    if diag.len() != dim {
        return Err(QuantumError::SizeMismatch {
            what: "diagonal length",
            expected: dim,
            found: diag.len(),
        });
    }
    if let Some(index) = diag.iter().position(|d| !d.is_finite()) {
        return Err(QuantumError::NonFinite {
            what: "diagonal entry",
            index,
        });
    }
    Ok(())
}
