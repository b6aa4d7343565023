//! A general QUBO, E(x) = offset + Σ_i a_i x_i + Σ_{i<j} b_ij x_i x_j over
//! x ∈ {0,1}^n, stored the way the solvers read it: linear terms in a flat
//! array and the couplings as a symmetric compressed-row adjacency (each
//! b_ij appears in row i and in row j), so a single-bit flip updates its
//! neighbours' local fields in O(degree).
//!
//! Two exchange formats: a dimod-style JSON object (`linear`, `quadratic`,
//! `offset`, `vartype: "BINARY"`, which `dimod.BinaryQuadraticModel(**d)`
//! reads directly) and the plain qbsolv `.qubo` matrix file (upper triangle,
//! diagonal = linear terms, offset in a comment).

use crate::error::{QuboError, check_finite};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A QUBO over n binary variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Qubo {
    linear: Vec<f64>,
    offset: f64,
    row_start: Vec<usize>,
    cols: Vec<u32>,
    vals: Vec<f64>,
}

/// Largest variable count a [`Qubo`] accepts (indices are stored as u32).
pub const MAX_VARIABLES: usize = 1 << 24;

impl Qubo {
    /// Builds a QUBO from linear terms and (i, j, b_ij) couplings with i ≠ j;
    /// repeated pairs, in either order, are summed; zero couplings dropped.
    pub fn new(
        linear: Vec<f64>,
        quadratic: &[(usize, usize, f64)],
        offset: f64,
    ) -> Result<Qubo, QuboError> {
        let n = linear.len();
        if n == 0 || n > MAX_VARIABLES {
            return Err(QuboError::Size(format!(
                "{n} variables (1 to {MAX_VARIABLES} allowed)"
            )));
        }
        for a in &linear {
            check_finite("linear coefficient", *a)?;
        }
        check_finite("offset", offset)?;
        let mut pairs: BTreeMap<(usize, usize), f64> = BTreeMap::new();
        for &(i, j, b) in quadratic {
            check_finite("quadratic coefficient", b)?;
            if i >= n || j >= n || i == j {
                return Err(QuboError::Size(format!(
                    "coupling ({i}, {j}) on {n} variables"
                )));
            }
            *pairs.entry((i.min(j), i.max(j))).or_insert(0.0) += b;
        }
        let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
        for ((i, j), b) in pairs {
            if b != 0.0 {
                rows[i].push((j as u32, b));
                rows[j].push((i as u32, b));
            }
        }
        let mut row_start = Vec::with_capacity(n + 1);
        let mut cols = Vec::new();
        let mut vals = Vec::new();
        row_start.push(0);
        for mut row in rows {
            row.sort_by_key(|(j, _)| *j);
            for (j, b) in row {
                cols.push(j);
                vals.push(b);
            }
            row_start.push(cols.len());
        }
        Ok(Qubo {
            linear,
            offset,
            row_start,
            cols,
            vals,
        })
    }

    pub fn variables(&self) -> usize {
        self.linear.len()
    }

    /// Number of distinct couplings b_ij ≠ 0 (i < j).
    pub fn couplings(&self) -> usize {
        self.cols.len() / 2
    }

    pub fn offset(&self) -> f64 {
        self.offset
    }

    pub fn linear(&self) -> &[f64] {
        &self.linear
    }

    /// Neighbours j of variable i and b_ij, sorted by j.
    #[inline]
    pub fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.row_start[i], self.row_start[i + 1]);
        (&self.cols[a..b], &self.vals[a..b])
    }

    /// Every coupling once, as (i, j, b_ij) with i < j.
    pub fn quadratic(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        (0..self.variables()).flat_map(move |i| {
            let (cols, vals) = self.row(i);
            cols.iter()
                .zip(vals)
                .filter(move |(j, _)| (**j as usize) > i)
                .map(move |(j, b)| (i, *j as usize, *b))
        })
    }

    /// b_ij, 0 where absent.
    pub fn coupling(&self, i: usize, j: usize) -> f64 {
        if i >= self.variables() {
            return 0.0;
        }
        let (cols, vals) = self.row(i);
        cols.binary_search(&(j as u32))
            .map(|k| vals[k])
            .unwrap_or(0.0)
    }

    /// E(x) for x given as 0/1 bytes; an error if the length is wrong.
    pub fn energy(&self, x: &[u8]) -> Result<f64, QuboError> {
        if x.len() != self.variables() {
            return Err(QuboError::Size(format!(
                "{} bits for {} variables",
                x.len(),
                self.variables()
            )));
        }
        Ok(self.energy_unchecked(x))
    }

    pub(crate) fn energy_unchecked(&self, x: &[u8]) -> f64 {
        let mut e = self.offset;
        for (i, &xi) in x.iter().enumerate() {
            if xi != 0 {
                e += self.linear[i];
                let (cols, vals) = self.row(i);
                for (j, b) in cols.iter().zip(vals) {
                    if (*j as usize) > i && x[*j as usize] != 0 {
                        e += b;
                    }
                }
            }
        }
        e
    }

    /// Local fields h_i = a_i + Σ_j b_ij x_j: flipping bit i changes E by
    /// +h_i (0 → 1) or −h_i (1 → 0).
    pub(crate) fn fields(&self, x: &[u8], out: &mut [f64]) {
        out.copy_from_slice(&self.linear);
        for (i, &xi) in x.iter().enumerate() {
            if xi != 0 {
                let (cols, vals) = self.row(i);
                for (j, b) in cols.iter().zip(vals) {
                    out[*j as usize] += b;
                }
            }
        }
    }

    /// The largest |ΔE| a single flip can cause: max_i |a_i| + Σ_j |b_ij|.
    pub fn max_flip_delta(&self) -> f64 {
        (0..self.variables())
            .map(|i| self.linear[i].abs() + self.row(i).1.iter().map(|b| b.abs()).sum::<f64>())
            .fold(0.0, f64::max)
    }

    /// The smallest non-zero |coefficient|, a scale for the smallest flip.
    pub fn min_coefficient(&self) -> f64 {
        self.linear
            .iter()
            .chain(&self.vals)
            .map(|v| v.abs())
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min)
    }

    /// The dimod-style JSON document.
    pub fn to_dimod_json(&self) -> String {
        let doc = DimodJson {
            linear: self
                .linear
                .iter()
                .enumerate()
                .map(|(i, a)| (i.to_string(), *a))
                .collect(),
            quadratic: self.quadratic().collect(),
            offset: self.offset,
            vartype: "BINARY".into(),
        };
        // A struct of numbers and strings always serialises.
        serde_json::to_string(&doc).unwrap_or_default()
    }

    /// Reads what [`Qubo::to_dimod_json`] writes (variables labelled 0..n).
    pub fn from_dimod_json(text: &str) -> Result<Qubo, QuboError> {
        let doc: DimodJson =
            serde_json::from_str(text).map_err(|e| QuboError::Format(qmec_model::excerpt::excerpt_lines(&e.to_string())))?;
        if doc.vartype != "BINARY" {
            return Err(QuboError::Format(format!(
                "vartype {} (only BINARY is read)",
                doc.vartype
            )));
        }
        let mut linear = vec![0.0; doc.linear.len()];
        for (label, a) in &doc.linear {
            let i: usize = label
                .parse()
                .map_err(|_| QuboError::Format(format!("variable label `{label}`")))?;
            *linear
                .get_mut(i)
                .ok_or_else(|| QuboError::Format(format!("label {i} out of range")))? = *a;
        }
        Qubo::new(linear, &doc.quadratic, doc.offset)
    }

    /// The qbsolv `.qubo` file: `p qubo 0 n n_diag n_couplings`, then the
    /// diagonal `i i a_i`, then the upper triangle `i j b_ij`.
    pub fn to_qbsolv(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "c qmec-qubo server selection, energy = x^T Q x + offset"
        );
        let _ = writeln!(out, "c offset {:e}", self.offset);
        let _ = writeln!(
            out,
            "p qubo 0 {} {} {}",
            self.variables(),
            self.variables(),
            self.couplings()
        );
        for (i, a) in self.linear.iter().enumerate() {
            let _ = writeln!(out, "{i} {i} {a:e}");
        }
        for (i, j, b) in self.quadratic() {
            let _ = writeln!(out, "{i} {j} {b:e}");
        }
        out
    }
}

#[derive(Serialize, Deserialize)]
struct DimodJson {
    linear: BTreeMap<String, f64>,
    quadratic: Vec<(usize, usize, f64)>,
    offset: f64,
    vartype: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Qubo {
        Qubo::new(
            vec![1.0, -2.0, 0.5],
            &[(0, 1, 3.0), (2, 1, -1.0), (1, 2, 0.25)],
            4.0,
        )
        .expect("valid")
    }

    #[test]
    fn energy_sums_the_terms_of_the_set_bits() {
        let q = sample();
        assert_eq!(q.energy(&[0, 0, 0]).expect("ok"), 4.0);
        assert_eq!(q.energy(&[1, 1, 0]).expect("ok"), 4.0 + 1.0 - 2.0 + 3.0);
        assert_eq!(q.energy(&[0, 1, 1]).expect("ok"), 4.0 - 2.0 + 0.5 - 0.75);
        assert_eq!(q.coupling(2, 1), -0.75);
        assert!(q.energy(&[0, 1]).is_err());
    }

    #[test]
    fn fields_predict_every_flip() {
        let q = sample();
        for bits in 0..8u8 {
            let x: Vec<u8> = (0..3).map(|i| (bits >> i) & 1).collect();
            let mut h = vec![0.0; 3];
            q.fields(&x, &mut h);
            for i in 0..3 {
                let mut y = x.clone();
                y[i] ^= 1;
                let delta = q.energy(&y).expect("ok") - q.energy(&x).expect("ok");
                let predicted = if x[i] == 0 { h[i] } else { -h[i] };
                assert!((delta - predicted).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn dimod_json_round_trips() {
        let q = sample();
        let text = q.to_dimod_json();
        assert!(text.contains("\"vartype\":\"BINARY\""));
        assert_eq!(Qubo::from_dimod_json(&text).expect("parses"), q);
    }

    #[test]
    fn qbsolv_file_lists_diagonal_and_upper_triangle() {
        let text = sample().to_qbsolv();
        assert!(text.contains("p qubo 0 3 3 2"));
        assert!(text.contains("1 2 -7.5e-1"));
    }

    #[test]
    fn rejects_self_couplings_and_nan() {
        assert!(Qubo::new(vec![0.0; 2], &[(1, 1, 1.0)], 0.0).is_err());
        assert!(Qubo::new(vec![0.0; 2], &[(0, 2, 1.0)], 0.0).is_err());
        assert!(Qubo::new(vec![f64::NAN; 2], &[], 0.0).is_err());
        assert!(Qubo::new(vec![], &[], 0.0).is_err());
    }
}
