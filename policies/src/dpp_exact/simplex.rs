//! A dense bounded primal simplex for the small restricted LPs the exact
//! solver builds: max cᵀx s.t. Ax ≤ b, 0 ≤ x ≤ u, with b ≥ 0.
//!
//! It exists beside microlp because the exact solver needs the row duals
//! (the server prices of its certificate), which microlp does not report,
//! and because its LPs are small (tens of rows), where a dense tableau
//! beats a general sparse solver. b ≥ 0 makes x = 0 feasible, so there is
//! no phase 1; upper bounds are handled by bound flips, not rows.

use qmec_model::PolicyError;

/// A reduced cost counts as positive above this (costs are scaled to |c| ≤ 1).
const COST_TOL: f64 = 1e-11;
/// Tableau entries smaller than this are not pivoted on.
const PIVOT_TOL: f64 = 1e-9;
/// Consecutive degenerate pivots after which Bland's rule takes over, so
/// the method cannot cycle.
const DEGENERATE_RUN: usize = 50;

/// The LP: `a` is rows × cols, row-major.
#[derive(Debug, Clone, Default)]
pub struct DenseLp {
    pub rows: usize,
    pub cols: usize,
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    pub c: Vec<f64>,
    pub upper: Vec<f64>,
}

/// An optimal vertex, the duals of the rows (π ≥ 0) and its basis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vertex {
    pub x: Vec<f64>,
    pub duals: Vec<f64>,
    pub basis: Basis,
}

/// A basis by what it fixes: the basic columns, the columns at their upper
/// bound, and the rows whose slack is nonbasic (tight). A later LP with
/// more columns and rows starts from it when it is still feasible there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Basis {
    pub basic: Vec<usize>,
    pub at_upper: Vec<usize>,
    pub tight_rows: Vec<usize>,
}

/// Where a nonbasic variable sits.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    Basic,
    Lower,
    Upper,
}

/// The tableau B⁻¹[A I], the basic values, the reduced costs and who is where.
#[derive(Debug, Clone, Default)]
struct Tableau {
    rows: usize,
    width: usize,
    t: Vec<f64>,
    beta: Vec<f64>,
    reduced: Vec<f64>,
    basis: Vec<usize>,
    place: Vec<Place>,
    upper: Vec<f64>,
}

/// The step an entering variable takes: a bound flip or a pivot on a row.
enum Step {
    Flip,
    Pivot { row: usize, leaves_at: Place },
}

/// Solves `lp` to optimality from `start` (columns and rows of `lp`), or
/// from the slack basis where `start` is not a feasible basis of `lp`.
pub fn solve(lp: &DenseLp, start: &Basis) -> Result<Vertex, PolicyError> {
    let mut vertex = Vertex::default();
    Scratch::default().solve(lp, start, &mut vertex)?;
    Ok(vertex)
}

/// The tableau's buffers, kept from one solve to the next: the exact solver
/// solves a few LPs a slot, and allocating the tableau each time cost more
/// than its pivots.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    tableau: Tableau,
    open: Vec<usize>,
}

impl Scratch {
    /// [`solve`], the optimum written into `vertex` (its vectors reused).
    pub fn solve(&mut self, lp: &DenseLp, start: &Basis, vertex: &mut Vertex) -> Result<(), PolicyError> {
        let tableau = &mut self.tableau;
        tableau.reset(lp);
        if !tableau.crash(start, lp.cols, &mut self.open) {
            tableau.reset(lp);
        }
        let mut degenerate = 0;
        // Each basis is visited at most once under Bland's rule; this cap only
        // guards against a numerical loop.
        let limit = 50 * (lp.rows + lp.cols) + 1000;
        for _ in 0..limit {
            let Some(entering) = tableau.entering(degenerate >= DEGENERATE_RUN) else {
                tableau.vertex(lp.cols, vertex);
                return Ok(());
            };
            let (step, length) = tableau.ratio_test(entering, degenerate >= DEGENERATE_RUN)?;
            degenerate = if length > 0.0 { 0 } else { degenerate + 1 };
            tableau.apply(entering, step, length);
        }
        Err(PolicyError::Solver(format!("the restricted LP did not converge in {limit} pivots")))
    }
}

impl Tableau {
    /// The slack basis of `lp`, in the buffers of the last tableau.
    fn reset(&mut self, lp: &DenseLp) {
        let (rows, width) = (lp.rows, lp.cols + lp.rows);
        (self.rows, self.width) = (rows, width);
        self.t.clear();
        self.t.resize(rows * width, 0.0);
        for i in 0..rows {
            self.t[i * width..i * width + lp.cols].copy_from_slice(&lp.a[i * lp.cols..(i + 1) * lp.cols]);
            self.t[i * width + lp.cols + i] = 1.0;
        }
        self.reduced.clear();
        self.reduced.extend_from_slice(&lp.c);
        self.reduced.resize(width, 0.0);
        self.place.clear();
        self.place.resize(lp.cols, Place::Lower);
        self.place.resize(width, Place::Basic);
        self.upper.clear();
        self.upper.extend_from_slice(&lp.upper);
        self.upper.resize(width, f64::INFINITY);
        self.beta.clear();
        self.beta.extend_from_slice(&lp.b);
        self.basis.clear();
        self.basis.extend(lp.cols..width);
    }

    /// Moves from the slack basis to `start`: its upper columns flipped,
    /// its basic columns pivoted in on its tight rows. False when that is
    /// singular or infeasible here.
    fn crash(&mut self, start: &Basis, cols: usize, open: &mut Vec<usize>) -> bool {
        for &j in &start.at_upper {
            let u = self.upper[j];
            (0..self.rows).for_each(|i| self.beta[i] -= u * self.t[i * self.width + j]);
            self.place[j] = Place::Upper;
        }
        open.clear();
        open.extend_from_slice(&start.tight_rows);
        for &j in &start.basic {
            let best = open.iter().enumerate().max_by(|a, b| self.t[a.1 * self.width + j].abs().total_cmp(&self.t[b.1 * self.width + j].abs()));
            let Some((slot, &row)) = best else { return false };
            let pivot = self.t[row * self.width + j];
            if pivot.abs() < PIVOT_TOL {
                return false;
            }
            open.swap_remove(slot);
            let value = self.beta[row] / pivot;
            (0..self.rows).for_each(|i| self.beta[i] -= self.t[i * self.width + j] * value);
            self.beta[row] = value;
            self.place[self.basis[row]] = Place::Lower;
            self.place[j] = Place::Basic;
            self.basis[row] = j;
            self.pivot(row, j);
        }
        // Rounding may leave a basic value a hair outside its bounds.
        let slack = 1e-9;
        open.is_empty() && self.basis.iter().zip(&self.beta).all(|(&v, &x)| x >= -slack && (v >= cols || x <= self.upper[v] + slack))
    }

    /// The nonbasic variable to move: the largest improving reduced cost,
    /// or the first improving one under Bland's rule.
    fn entering(&self, bland: bool) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (j, &d) in self.reduced.iter().enumerate() {
            let gain = match self.place[j] {
                Place::Lower if self.upper[j] > 0.0 => d,
                Place::Upper => -d,
                _ => continue,
            };
            if gain > COST_TOL {
                if bland {
                    return Some(j);
                }
                if best.is_none_or(|(_, g)| gain > g) {
                    best = Some((j, gain));
                }
            }
        }
        best.map(|(j, _)| j)
    }

    /// How far `entering` can move before a basic variable or itself hits
    /// a bound. Ties go to the largest pivot (or, under Bland, the lowest
    /// basic index).
    fn ratio_test(&self, entering: usize, bland: bool) -> Result<(Step, f64), PolicyError> {
        let dir = self.direction(entering);
        let mut best = (Step::Flip, self.upper[entering], f64::INFINITY);
        for i in 0..self.rows {
            let alpha = dir * self.t[i * self.width + entering];
            let basic = self.basis[i];
            let (limit, leaves_at) = if alpha > PIVOT_TOL {
                (self.beta[i].max(0.0) / alpha, Place::Lower)
            } else if alpha < -PIVOT_TOL && self.upper[basic].is_finite() {
                ((self.upper[basic] - self.beta[i]).max(0.0) / -alpha, Place::Upper)
            } else {
                continue;
            };
            let key = if bland { basic as f64 } else { -alpha.abs() };
            if limit < best.1 || (limit == best.1 && key < best.2) {
                best = (Step::Pivot { row: i, leaves_at }, limit, key);
            }
        }
        if best.1.is_infinite() {
            return Err(PolicyError::Solver("the restricted LP is unbounded".into()));
        }
        Ok((best.0, best.1))
    }

    /// +1 when `j` moves up from its lower bound, −1 down from its upper.
    fn direction(&self, j: usize) -> f64 {
        if self.place[j] == Place::Upper { -1.0 } else { 1.0 }
    }

    fn apply(&mut self, entering: usize, step: Step, length: f64) {
        let dir = self.direction(entering);
        for i in 0..self.rows {
            self.beta[i] -= dir * length * self.t[i * self.width + entering];
        }
        match step {
            Step::Flip => self.place[entering] = if dir > 0.0 { Place::Upper } else { Place::Lower },
            Step::Pivot { row, leaves_at } => {
                let start = if dir > 0.0 { 0.0 } else { self.upper[entering] };
                self.beta[row] = start + dir * length;
                self.place[self.basis[row]] = leaves_at;
                self.place[entering] = Place::Basic;
                self.basis[row] = entering;
                self.pivot(row, entering);
            }
        }
    }

    /// Gauss–Jordan on (row, col), the reduced costs included.
    fn pivot(&mut self, row: usize, col: usize) {
        let width = self.width;
        let scale = 1.0 / self.t[row * width + col];
        let (before, rest) = self.t.split_at_mut(row * width);
        let (pivot_row, after) = rest.split_at_mut(width);
        pivot_row.iter_mut().for_each(|v| *v *= scale);
        pivot_row[col] = 1.0;
        for other in before.chunks_exact_mut(width).chain(after.chunks_exact_mut(width)) {
            eliminate(other, pivot_row, col);
        }
        eliminate(&mut self.reduced, pivot_row, col);
    }

    fn vertex(&self, cols: usize, vertex: &mut Vertex) {
        vertex.x.clear();
        vertex.x.extend((0..cols).map(|j| if self.place[j] == Place::Upper { self.upper[j] } else { 0.0 }));
        for (i, &basic) in self.basis.iter().enumerate() {
            if basic < cols {
                vertex.x[basic] = self.beta[i].clamp(0.0, self.upper[basic]);
            }
        }
        // A slack's reduced cost is −π for its row.
        vertex.duals.clear();
        vertex.duals.extend(self.reduced[cols..].iter().map(|d| (-d).max(0.0)));
        let basis = &mut vertex.basis;
        basis.basic.clear();
        basis.basic.extend(self.basis.iter().copied().filter(|&v| v < cols));
        basis.at_upper.clear();
        basis.at_upper.extend((0..cols).filter(|&j| self.place[j] == Place::Upper));
        basis.tight_rows.clear();
        basis.tight_rows.extend((0..self.rows).filter(|&i| self.place[cols + i] != Place::Basic));
    }
}

/// `target −= target[col] · pivot_row`, so `target[col]` becomes 0.
fn eliminate(target: &mut [f64], pivot_row: &[f64], col: usize) {
    let factor = target[col];
    if factor != 0.0 {
        target.iter_mut().zip(pivot_row).for_each(|(v, p)| *v -= factor * p);
        target[col] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_textbook_lp_reaches_its_optimum_and_duals() {
        // max 2x + 3y s.t. x + y ≤ 4, x + 3y ≤ 6, x ≤ 10: x = 3, y = 1, π = (1.5, 0.5).
        let lp = DenseLp { rows: 2, cols: 2, a: vec![1.0, 1.0, 1.0, 3.0], b: vec![4.0, 6.0], c: vec![2.0, 3.0], upper: vec![10.0, f64::INFINITY] };
        let vertex = solve(&lp, &Basis::default()).expect("solves");
        assert!((vertex.x[0] - 3.0).abs() < 1e-12 && (vertex.x[1] - 1.0).abs() < 1e-12, "{vertex:?}");
        assert!((vertex.duals[0] - 1.5).abs() < 1e-12 && (vertex.duals[1] - 0.5).abs() < 1e-12, "{vertex:?}");
    }

    #[test]
    fn an_upper_bound_alone_is_reached_by_a_flip() {
        let lp = DenseLp { rows: 1, cols: 1, a: vec![1.0], b: vec![5.0], c: vec![1.0], upper: vec![0.5] };
        let vertex = solve(&lp, &Basis::default()).expect("solves");
        assert_eq!(vertex.x, vec![0.5]);
        assert_eq!(vertex.duals, vec![0.0]);
    }

    #[test]
    fn a_start_from_the_optimal_basis_of_a_smaller_lp_reaches_the_larger_optimum() {
        // max 2x + 3y s.t. x + y ≤ 4, x + 3y ≤ 6; then z (weight 4) joins
        // the first row, under a third row z ≤ 1: optimum 11.5.
        let small = DenseLp { rows: 2, cols: 2, a: vec![1.0, 1.0, 1.0, 3.0], b: vec![4.0, 6.0], c: vec![2.0, 3.0], upper: vec![10.0, 10.0] };
        let first = solve(&small, &Basis::default()).expect("solves");
        assert_eq!(first.basis.basic.len(), 2);
        let large = DenseLp {
            rows: 3,
            cols: 3,
            a: vec![1.0, 1.0, 1.0, 1.0, 3.0, 0.0, 0.0, 0.0, 1.0],
            b: vec![4.0, 6.0, 1.0],
            c: vec![2.0, 3.0, 4.0],
            upper: vec![10.0, 10.0, 10.0],
        };
        let warm = solve(&large, &first.basis).expect("solves");
        let value = 2.0 * warm.x[0] + 3.0 * warm.x[1] + 4.0 * warm.x[2];
        assert!((value - 11.5).abs() < 1e-12, "{warm:?}");
    }
}
