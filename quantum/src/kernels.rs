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
use pulp::Simd;
use pulp::bytemuck::cast;
use std::f64::consts::FRAC_1_SQRT_2;

/// Calls `f(a, b)` for every amplitude pair differing only in bit `q`
/// (`a` has the bit clear, `b` set).
#[inline(always)]
fn for_each_pair(amps: &mut [C], q: usize, mut f: impl FnMut(&mut C, &mut C)) {
    let stride = 1usize << q;
    debug_assert!(2 * stride <= amps.len());
    if stride == 1 {
        // Neighbours: one flat loop instead of a one-long inner loop per pair.
        for pair in amps.chunks_exact_mut(2) {
            let (a, b) = pair.split_at_mut(1);
            f(&mut a[0], &mut b[0]);
        }
        return;
    }
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

/// Applies `ga` to qubit `qa` and `gb` to qubit `qb` (`qa != qb`) in one
/// sweep over the quadruples the two qubits span: half the memory traffic
/// of two sweeps when the state is larger than the cache.
#[inline(always)]
pub(crate) fn gate1_pair(amps: &mut [C], qa: usize, ga: &Gate1, qb: usize, gb: &Gate1) {
    let ((lo, g_lo), (hi, g_hi)) = lower_first(qa, ga, qb, gb);
    let (m_lo, m_hi) = (g_lo.rows(), g_hi.rows());
    for_each_quad_run(amps, lo, hi, |a00, a01, a10, a11| {
        let quads = a00.iter_mut().zip(a01).zip(a10.iter_mut().zip(a11));
        for ((v00, v01), (v10, v11)) in quads {
            apply_rows(&m_lo, v00, v01);
            apply_rows(&m_lo, v10, v11);
            apply_rows(&m_hi, v00, v10);
            apply_rows(&m_hi, v01, v11);
        }
    });
}

/// A pair gate's two qubits, the lower first, each with its gate.
#[inline(always)]
fn lower_first<'g>(qa: usize, ga: &'g Gate1, qb: usize, gb: &'g Gate1) -> ((usize, &'g Gate1), (usize, &'g Gate1)) {
    if qa < qb { ((qa, ga), (qb, gb)) } else { ((qb, gb), (qa, ga)) }
}

/// Hands `visit` the four runs of amplitudes whose (`hi`, `lo`) bits are
/// 00, 01, 10 and 11, for every block the qubits `lo` < `hi` span: the
/// walk both the scalar and the vector pair kernels make.
#[inline(always)]
fn for_each_quad_run(
    amps: &mut [C],
    lo: usize,
    hi: usize,
    mut visit: impl FnMut(&mut [C], &mut [C], &mut [C], &mut [C]),
) {
    for chunk in amps.chunks_exact_mut(2 << hi) {
        let (h0, h1) = chunk.split_at_mut(1 << hi);
        for (c0, c1) in h0.chunks_exact_mut(2 << lo).zip(h1.chunks_exact_mut(2 << lo)) {
            let (a00, a01) = c0.split_at_mut(1 << lo);
            let (a10, a11) = c1.split_at_mut(1 << lo);
            visit(a00, a01, a10, a11);
        }
    }
}

#[inline(always)]
fn apply_rows(m: &[[C; 2]; 2], a: &mut C, b: &mut C) {
    let (x, y) = (*a, *b);
    *a = m[0][0] * x + m[0][1] * y;
    *b = m[1][0] * x + m[1][1] * y;
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

#[inline(always)]
pub(crate) fn x(amps: &mut [C], q: usize) {
    for_each_pair(amps, q, std::mem::swap);
}

/// Calls `f(v)` for every amplitude with bits `q1` and `q2` both set
/// (`q1 != q2`), walking contiguous runs rather than computed indices.
#[inline(always)]
fn for_each_both_set(amps: &mut [C], q1: usize, q2: usize, mut f: impl FnMut(&mut C)) {
    let (lo, hi) = if q1 < q2 { (q1, q2) } else { (q2, q1) };
    for chunk in amps.chunks_exact_mut(2 << hi) {
        for sub in chunk[1 << hi..].chunks_exact_mut(2 << lo) {
            sub[1 << lo..].iter_mut().for_each(&mut f);
        }
    }
}

#[inline(always)]
pub(crate) fn cnot(amps: &mut [C], control: usize, target: usize) {
    if target < control {
        // Within each run with the control set, X on the target.
        for chunk in amps.chunks_exact_mut(2 << control) {
            x(&mut chunk[1 << control..], target);
        }
    } else {
        let stride = 1usize << target;
        for chunk in amps.chunks_exact_mut(2 * stride) {
            let (lo, hi) = chunk.split_at_mut(stride);
            for (a, b) in lo
                .chunks_exact_mut(2 << control)
                .zip(hi.chunks_exact_mut(2 << control))
            {
                a[1 << control..].swap_with_slice(&mut b[1 << control..]);
            }
        }
    }
}

#[inline(always)]
pub(crate) fn cz(amps: &mut [C], q1: usize, q2: usize) {
    for_each_both_set(amps, q1, q2, |v| *v = -*v);
}

/// Pauli Z on `q`: negates the amplitudes with bit `q` set.
#[inline(always)]
pub(crate) fn z(amps: &mut [C], q: usize) {
    for chunk in amps.chunks_exact_mut(2 << q) {
        chunk[1 << q..].iter_mut().for_each(|v| *v = -*v);
    }
}

/// Negates every amplitude (a global phase of −1: what a CZ does to a
/// block of amplitudes in which both its qubits are set).
#[inline(always)]
pub(crate) fn negate(amps: &mut [C]) {
    amps.iter_mut().for_each(|v| *v = -*v);
}

/// A single-qubit gate as a matrix, diagonal ones kept apart because they
/// need half the arithmetic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Gate1 {
    /// diag(d0, d1).
    Diagonal { d0: C, d1: C },
    /// [[m00, m01], [m10, m11]].
    General { m: [[C; 2]; 2] },
}

impl Gate1 {
    pub(crate) const IDENTITY: Gate1 = Gate1::Diagonal {
        d0: C::new(1.0, 0.0),
        d1: C::new(1.0, 0.0),
    };

    fn rows(&self) -> [[C; 2]; 2] {
        let zero = C::new(0.0, 0.0);
        match *self {
            Gate1::Diagonal { d0, d1 } => [[d0, zero], [zero, d1]],
            Gate1::General { m } => m,
        }
    }

    /// `self · first`: the gate that applies `first`, then `self`.
    pub(crate) fn after(&self, first: &Gate1) -> Gate1 {
        if let (Gate1::Diagonal { d0, d1 }, Gate1::Diagonal { d0: e0, d1: e1 }) = (self, first) {
            return Gate1::Diagonal {
                d0: d0 * e0,
                d1: d1 * e1,
            };
        }
        let (a, b) = (self.rows(), first.rows());
        let entry = |i: usize, j: usize| a[i][0] * b[0][j] + a[i][1] * b[1][j];
        Gate1::General {
            m: [[entry(0, 0), entry(0, 1)], [entry(1, 0), entry(1, 1)]],
        }
    }

    pub(crate) fn rx(theta: f64) -> Gate1 {
        let (c, s) = half(theta);
        let (c, mis) = (C::new(c, 0.0), C::new(0.0, -s));
        Gate1::General {
            m: [[c, mis], [mis, c]],
        }
    }

    pub(crate) fn ry(theta: f64) -> Gate1 {
        let (c, s) = half(theta);
        let (c, s) = (C::new(c, 0.0), C::new(s, 0.0));
        Gate1::General {
            m: [[c, -s], [s, c]],
        }
    }

    pub(crate) fn rz(theta: f64) -> Gate1 {
        let (c, s) = half(theta);
        Gate1::Diagonal {
            d0: C::new(c, -s),
            d1: C::new(c, s),
        }
    }

    pub(crate) fn h() -> Gate1 {
        let r = C::new(FRAC_1_SQRT_2, 0.0);
        Gate1::General {
            m: [[r, r], [r, -r]],
        }
    }

    pub(crate) fn x() -> Gate1 {
        let (o, l) = (C::new(0.0, 0.0), C::new(1.0, 0.0));
        Gate1::General {
            m: [[o, l], [l, o]],
        }
    }
}

/// Applies `gate` to qubit `q`.
#[inline(always)]
pub(crate) fn gate1(amps: &mut [C], q: usize, gate: &Gate1) {
    match *gate {
        Gate1::Diagonal { d0, d1 } => for_each_pair(amps, q, |a, b| {
            *a *= d0;
            *b *= d1;
        }),
        Gate1::General { m } => for_each_pair(amps, q, |a, b| apply_rows(&m, a, b)),
    }
}

/// `w · x` for every complex lane of `x`, computed as num-complex computes
/// it (w.re x.re − w.im x.im, w.re x.im + w.im x.re, no fused multiply-add),
/// so a vector kernel gives the same bits as the scalar one.
#[inline(always)]
fn cmul<S: Simd>(simd: S, w: C, x: S::f64s) -> S::f64s {
    let swapped: S::f64s = cast(simd.swap_re_im_c64s(cast(x)));
    let re = simd.mul_f64s(x, cast(simd.splat_c64s(C::new(w.re, w.re))));
    let im = simd.mul_f64s(swapped, cast(simd.splat_c64s(C::new(-w.im, w.im))));
    simd.add_f64s(re, im)
}

/// `m · (a, b)` for the complex lanes of two vectors.
#[inline(always)]
fn apply_rows_simd<S: Simd>(simd: S, m: &[[C; 2]; 2], a: &mut S::f64s, b: &mut S::f64s) {
    let (x, y) = (*a, *b);
    *a = simd.add_f64s(cmul(simd, m[0][0], x), cmul(simd, m[0][1], y));
    *b = simd.add_f64s(cmul(simd, m[1][0], x), cmul(simd, m[1][1], y));
}

/// Whether `simd`'s vectors can carry the pairs of qubit `q` whole: a
/// vector of complex lanes (at least two of them), no wider than a half of
/// a pair's run (2^q amplitudes).
#[inline(always)]
fn simd_pairs<S: Simd>(q: usize) -> bool {
    let lanes = S::C64_LANES;
    size_of::<S::f64s>() == size_of::<S::c64s>() && lanes >= 2 && 1usize << q >= lanes
}

/// `amps` as `simd`'s vectors of complex lanes; `amps.len()` is a multiple
/// of the lanes wherever [`simd_pairs`] holds.
#[inline(always)]
fn vectors<S: Simd>(amps: &mut [C]) -> &mut [S::f64s] {
    S::as_mut_simd_f64s(pulp::bytemuck::cast_slice_mut(amps)).0
}

/// [`gate1`] on `simd`'s vectors where [`simd_pairs`] holds (the same
/// bits), else [`gate1`] itself.
#[inline(always)]
pub(crate) fn gate1_simd<S: Simd>(simd: S, amps: &mut [C], q: usize, gate: &Gate1) {
    if !simd_pairs::<S>(q) {
        return gate1(amps, q, gate);
    }
    let m = gate.rows();
    for chunk in amps.chunks_exact_mut(2 << q) {
        let (lo, hi) = chunk.split_at_mut(1 << q);
        let pairs = vectors::<S>(lo).iter_mut().zip(vectors::<S>(hi));
        match *gate {
            Gate1::Diagonal { d0, d1 } => pairs.for_each(|(a, b)| {
                *a = cmul(simd, d0, *a);
                *b = cmul(simd, d1, *b);
            }),
            Gate1::General { .. } => {
                pairs.for_each(|(a, b)| apply_rows_simd(simd, &m, a, b))
            }
        }
    }
}

/// [`gate1_pair`] on `simd`'s vectors where [`simd_pairs`] holds for the
/// lower qubit (the same bits), else [`gate1_pair`] itself.
#[inline(always)]
pub(crate) fn gate1_pair_simd<S: Simd>(
    simd: S,
    amps: &mut [C],
    qa: usize,
    ga: &Gate1,
    qb: usize,
    gb: &Gate1,
) {
    let ((lo, g_lo), (hi, g_hi)) = lower_first(qa, ga, qb, gb);
    if !simd_pairs::<S>(lo) {
        return gate1_pair(amps, qa, ga, qb, gb);
    }
    let (m_lo, m_hi) = (g_lo.rows(), g_hi.rows());
    for_each_quad_run(amps, lo, hi, |a00, a01, a10, a11| {
        let quads = vectors::<S>(a00)
            .iter_mut()
            .zip(vectors::<S>(a01))
            .zip(vectors::<S>(a10).iter_mut().zip(vectors::<S>(a11)));
        for ((v00, v01), (v10, v11)) in quads {
            apply_rows_simd(simd, &m_lo, v00, v01);
            apply_rows_simd(simd, &m_lo, v10, v11);
            apply_rows_simd(simd, &m_hi, v00, v10);
            apply_rows_simd(simd, &m_hi, v01, v11);
        }
    });
}

/// exp(-iθD) for a real diagonal `D` (`diag.len() == amps.len()`).
#[inline(always)]
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
            if (i & m).count_ones().is_multiple_of(2) {
                p
            } else {
                -p
            }
        })
        .sum()
}

/// Expectation of a real diagonal observable.
pub(crate) fn expectation_diag(amps: &[C], diag: &[f64]) -> f64 {
    amps.iter().zip(diag).map(|(a, &d)| d * a.norm_sqr()).sum()
}
