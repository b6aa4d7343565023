//! A dense device × server matrix: rates r_ms, weights Ψ_ms, shares μ_ms and
//! CPU allocations f_ms all share this one shape.

use serde::{Deserialize, Serialize};

/// Row-major M × S matrix of f64, rows are devices and columns servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix { rows, cols, data: vec![0.0; rows * cols] }
    }

    /// Builds a matrix from row-major data; `None` when the length is wrong.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f64>) -> Option<Matrix> {
        (data.len() == rows * cols).then_some(Matrix { rows, cols, data })
    }

    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> f64) -> Matrix {
        let mut m = Matrix::zeros(rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                m.data[r * cols + c] = f(r, c);
            }
        }
        m
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn get(&self, row: usize, col: usize) -> f64 {
        self.data[row * self.cols + col]
    }

    pub fn set(&mut self, row: usize, col: usize, value: f64) {
        self.data[row * self.cols + col] = value;
    }

    pub fn row(&self, row: usize) -> &[f64] {
        &self.data[row * self.cols..(row + 1) * self.cols]
    }

    pub fn row_mut(&mut self, row: usize) -> &mut [f64] {
        &mut self.data[row * self.cols..(row + 1) * self.cols]
    }

    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    pub fn row_sum(&self, row: usize) -> f64 {
        self.row(row).iter().sum()
    }

    pub fn col_sum(&self, col: usize) -> f64 {
        (0..self.rows).map(|r| self.get(r, col)).sum()
    }

    /// Σ_ms self_ms · other_ms.
    pub fn dot(&self, other: &Matrix) -> f64 {
        self.data.iter().zip(&other.data).map(|(a, b)| a * b).sum()
    }
}
