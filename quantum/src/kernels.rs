//! Unchecked gate kernels on raw amplitude slices.
//!
//! This is the hot path of every simulation and of every gradient, so it is
//! kept apart from the checked, documented API in [`crate::state`]: callers
//! here have already validated qubit indices and sizes, the loops walk index
//! pairs through `chunks_exact_mut`/`split_at_mut` (no bounds checks, no
//! allocation, friendly to auto-vectorisation), and the backward-pass kernels
//! fuse "gradient term + inverse gate on ψ + inverse gate on λ" into a single
//! sweep over memory.
//!
//! Convention: qubit `q` is bit `q` of the basis index (qubit 0 = least
//! significant bit); a single-qubit gate on `q` mixes amplitudes `i` and
//! `i | 1 << q` for every `i` with bit `q` clear.

use num_complex::Complex64 as C;
use std::f64::consts::FRAC_1_SQRT_2;

/// Calls `f(a, b)` for every amplitude pair differing only in bit `q`
/// (`a` has the bit clear, `b` set).
#[inline(always)]
fn for_each_pair(amps: &mut [C], q: usize, mut f: impl FnMut(&mut C, &mut C)) {
    let stride = 1usize << q;
    debug_assert!(2 * stride <= amps.len());
    for chunk in amps.chunks_exact_mut(2 * stride) {
        let (lo, hi) = chunk.split_at_mut(stride);
        for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
            f(a, b);
        }
    }
}

/// Like [`for_each_pair`] but over two registers of equal length at once.
#[inline(always)]
fn for_each_pair2(
    x: &mut [C],
    y: &mut [C],
    q: usize,
    mut f: impl FnMut(&mut C, &mut C, &mut C, &mut C),
) {
    let stride = 1usize << q;
    debug_assert_eq!(x.len(), y.len());
    for (cx, cy) in x
        .chunks_exact_mut(2 * stride)
        .zip(y.chunks_exact_mut(2 * stride))
    {
        let (xa, xb) = cx.split_at_mut(stride);
        let (ya, yb) = cy.split_at_mut(stride);
        for (((a, b), la), lb) in xa
            .iter_mut()
            .zip(xb.iter_mut())
            .zip(ya.iter_mut())
            .zip(yb.iter_mut())
        {
            f(a, b, la, lb);
        }
    }
}

/// Inserts a zero bit at position `bit` of `k`.
#[inline(always)]
fn insert_zero(k: usize, bit: usize) -> usize {
    let low = k & ((1usize << bit) - 1);
    ((k >> bit) << (bit + 1)) | low
}

/// Calls `f(i)` for every index with bits `q1` and `q2` clear (`q1 != q2`).
#[inline(always)]
fn for_each_base2(len: usize, q1: usize, q2: usize, mut f: impl FnMut(usize)) {
    let (lo, hi) = if q1 < q2 { (q1, q2) } else { (q2, q1) };
    for k in 0..len >> 2 {
        f(insert_zero(insert_zero(k, lo), hi));
    }
}

/// `(cos θ/2, sin θ/2)`.
#[inline(always)]
fn half(theta: f64) -> (f64, f64) {
    let (s, c) = (0.5 * theta).sin_cos();
    (c, s)
}

/// RX(θ) = exp(-iθX/2) = [[c, -is], [-is, c]].
#[inline(always)]
fn rx_pair(c: f64, s: f64, a: &mut C, b: &mut C) {
    let (x, y) = (*a, *b);
    *a = C::new(c * x.re + s * y.im, c * x.im - s * y.re);
    *b = C::new(c * y.re + s * x.im, c * y.im - s * x.re);
}

/// RY(θ) = exp(-iθY/2) = [[c, -s], [s, c]].
#[inline(always)]
fn ry_pair(c: f64, s: f64, a: &mut C, b: &mut C) {
    let (x, y) = (*a, *b);
    *a = C::new(c * x.re - s * y.re, c * x.im - s * y.im);
    *b = C::new(s * x.re + c * y.re, s * x.im + c * y.im);
}

/// RZ(θ) = exp(-iθZ/2) = diag(c - is, c + is).
#[inline(always)]
fn rz_pair(c: f64, s: f64, a: &mut C, b: &mut C) {
    let (x, y) = (*a, *b);
    *a = C::new(c * x.re + s * x.im, c * x.im - s * x.re);
    *b = C::new(c * y.re - s * y.im, c * y.im + s * y.re);
}

/// Im(conj(l) · p).
#[inline(always)]
fn im_conj_mul(l: C, p: C) -> f64 {
    l.re * p.im - l.im * p.re
}

pub(crate) fn rx(amps: &mut [C], q: usize, theta: f64) {
    let (c, s) = half(theta);
    for_each_pair(amps, q, |a, b| rx_pair(c, s, a, b));
}

pub(crate) fn ry(amps: &mut [C], q: usize, theta: f64) {
    let (c, s) = half(theta);
    for_each_pair(amps, q, |a, b| ry_pair(c, s, a, b));
}

pub(crate) fn rz(amps: &mut [C], q: usize, theta: f64) {
    let (c, s) = half(theta);
    for_each_pair(amps, q, |a, b| rz_pair(c, s, a, b));
}

pub(crate) fn h(amps: &mut [C], q: usize) {
    for_each_pair(amps, q, |a, b| {
        let (x, y) = (*a, *b);
        *a = (x + y) * FRAC_1_SQRT_2;
        *b = (x - y) * FRAC_1_SQRT_2;
    });
}

pub(crate) fn x(amps: &mut [C], q: usize) {
    for_each_pair(amps, q, std::mem::swap);
}

pub(crate) fn cnot(amps: &mut [C], control: usize, target: usize) {
    let (cm, tm) = (1usize << control, 1usize << target);
    for_each_base2(amps.len(), control, target, |i| {
        amps.swap(i | cm, i | cm | tm)
    });
}

pub(crate) fn cz(amps: &mut [C], q1: usize, q2: usize) {
    let m = (1usize << q1) | (1usize << q2);
    for_each_base2(amps.len(), q1, q2, |i| {
        let v = &mut amps[i | m];
        *v = -*v;
    });
}

/// exp(-iθD) for a real diagonal `D` (`diag.len() == amps.len()`).
pub(crate) fn phase_diag(amps: &mut [C], diag: &[f64], theta: f64) {
    for (a, &d) in amps.iter_mut().zip(diag) {
        let (s, c) = (theta * d).sin_cos();
        *a = C::new(c * a.re + s * a.im, c * a.im - s * a.re);
    }
}

/// Which generator a parameterised rotation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    X,
    Y,
    Z,
}

/// Backward step for a rotation `R(φ) = exp(-iφG/2)` on qubit `q`, with ψ and
/// λ both taken just after the gate: returns `Im⟨λ|G|ψ⟩` and applies `R(-φ)`
/// to both registers, in one sweep.
pub(crate) fn rotation_backward(
    psi: &mut [C],
    lambda: &mut [C],
    q: usize,
    axis: Axis,
    phi: f64,
) -> f64 {
    let (c, s) = half(-phi);
    let mut acc = 0.0;
    match axis {
        Axis::X => for_each_pair2(psi, lambda, q, |a, b, la, lb| {
            // (Xψ)_a = ψ_b, (Xψ)_b = ψ_a
            acc += im_conj_mul(*la, *b) + im_conj_mul(*lb, *a);
            rx_pair(c, s, a, b);
            rx_pair(c, s, la, lb);
        }),
        Axis::Y => for_each_pair2(psi, lambda, q, |a, b, la, lb| {
            // (Yψ)_a = -i ψ_b, (Yψ)_b = i ψ_a; Im(conj(l)(∓i p)) = ∓Re(conj(l) p)
            acc += -(la.re * b.re + la.im * b.im) + (lb.re * a.re + lb.im * a.im);
            ry_pair(c, s, a, b);
            ry_pair(c, s, la, lb);
        }),
        Axis::Z => for_each_pair2(psi, lambda, q, |a, b, la, lb| {
            acc += im_conj_mul(*la, *a) - im_conj_mul(*lb, *b);
            rz_pair(c, s, a, b);
            rz_pair(c, s, la, lb);
        }),
    }
    acc
}

/// Backward step for `exp(-iθD)`: returns `Im⟨λ|D|ψ⟩` and applies
/// `exp(+iθD)` to both registers, in one sweep.
pub(crate) fn phase_diag_backward(
    psi: &mut [C],
    lambda: &mut [C],
    diag: &[f64],
    theta: f64,
) -> f64 {
    let mut acc = 0.0;
    for ((a, l), &d) in psi.iter_mut().zip(lambda.iter_mut()).zip(diag) {
        acc += d * im_conj_mul(*l, *a);
        let (s, c) = (-theta * d).sin_cos();
        *a = C::new(c * a.re + s * a.im, c * a.im - s * a.re);
        *l = C::new(c * l.re + s * l.im, c * l.im - s * l.re);
    }
    acc
}

/// Expectation of `Z_q`: Σ |a|² − Σ |b|² over the pairs on qubit `q`.
pub(crate) fn expectation_z(amps: &[C], q: usize) -> f64 {
    let stride = 1usize << q;
    let mut acc = 0.0;
    for chunk in amps.chunks_exact(2 * stride) {
        let (lo, hi) = chunk.split_at(stride);
        for (a, b) in lo.iter().zip(hi) {
            acc += a.norm_sqr() - b.norm_sqr();
        }
    }
    acc
}

/// Expectation of `Z_q1 Z_q2` (`q1 != q2`).
pub(crate) fn expectation_zz(amps: &[C], q1: usize, q2: usize) -> f64 {
    let m = (1usize << q1) | (1usize << q2);
    amps.iter()
        .enumerate()
        .map(|(i, a)| {
            let p = a.norm_sqr();
            if (i & m).count_ones().is_multiple_of(2) { p } else { -p }
        })
        .sum()
}

/// Expectation of a real diagonal observable.
pub(crate) fn expectation_diag(amps: &[C], diag: &[f64]) -> f64 {
    amps.iter().zip(diag).map(|(a, &d)| d * a.norm_sqr()).sum()
}
