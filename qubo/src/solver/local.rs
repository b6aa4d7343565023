//! Local moves the heuristic solvers finish with.
//!
//! - [`quench`]: zero-temperature single-flip descent on the QUBO itself; by
//!   the penalty rule ([`crate::build`]) its end point is always one-hot.
//! - [`polish`]: re-assigning one device at a time while that lowers the
//!   cost — a two-flip move on the QUBO that never leaves the feasible set,
//!   priced in O(1) from per-server counts and load sums.

use crate::problem::SelectionProblem;
use crate::qubo::Qubo;

/// Flips improving bits until none is left; `fields` must hold the local
/// fields of `x` and is kept up to date. Returns the energy change.
pub(crate) fn quench(qubo: &Qubo, x: &mut [u8], fields: &mut [f64]) -> f64 {
    let mut change = 0.0;
    loop {
        let mut improved = false;
        for i in 0..x.len() {
            let delta = if x[i] == 0 { fields[i] } else { -fields[i] };
            if delta < -1e-12 * (1.0 + fields[i].abs()) {
                flip(qubo, x, fields, i);
                change += delta;
                improved = true;
            }
        }
        if !improved {
            return change;
        }
    }
}

/// Flips bit i and updates the neighbours' fields.
#[inline]
pub(crate) fn flip(qubo: &Qubo, x: &mut [u8], fields: &mut [f64], i: usize) {
    let sign = if x[i] == 0 { 1.0 } else { -1.0 };
    x[i] ^= 1;
    let (cols, vals) = qubo.row(i);
    for (j, b) in cols.iter().zip(vals) {
        fields[*j as usize] += sign * b;
    }
}

/// Moves single devices while that lowers the cost; returns the change.
pub(crate) fn polish(problem: &SelectionProblem, assignment: &mut [usize]) -> f64 {
    let s_count = problem.servers();
    let mut count = vec![0usize; s_count];
    let mut load = vec![0.0; s_count];
    for (m, &s) in assignment.iter().enumerate() {
        count[s] += 1;
        load[s] += problem.load(m, s);
    }
    let mut change = 0.0;
    loop {
        let mut improved = false;
        for (m, slot) in assignment.iter_mut().enumerate() {
            let s = *slot;
            let leave = problem.linear(m, s)
                + (count[s] - 1) as f64 * problem.load(m, s)
                + (load[s] - problem.load(m, s));
            let mut best = (0.0, s);
            for t in (0..s_count).filter(|t| *t != s) {
                let join = problem.linear(m, t) + count[t] as f64 * problem.load(m, t) + load[t];
                let delta = join - leave;
                if delta < best.0 - 1e-12 * leave.abs() {
                    best = (delta, t);
                }
            }
            if best.1 != s {
                let t = best.1;
                count[s] -= 1;
                load[s] -= problem.load(m, s);
                count[t] += 1;
                load[t] += problem.load(m, t);
                *slot = t;
                change += best.0;
                improved = true;
            }
        }
        if !improved {
            return change;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::AssignmentQubo;
    use crate::rng::FastRng;

    fn random_problem(rng: &mut FastRng, m: usize, s: usize) -> SelectionProblem {
        let linear = (0..m * s).map(|_| 1.0 + 9.0 * rng.unit()).collect();
        let load = (0..m * s).map(|_| 2.0 * rng.unit()).collect();
        SelectionProblem::new(m, s, linear, load).expect("valid")
    }

    #[test]
    fn polish_reports_the_true_change_and_reaches_a_move_optimum() {
        let mut rng = FastRng::new(5);
        for _ in 0..20 {
            let p = random_problem(&mut rng, 6, 3);
            let mut a: Vec<usize> = (0..6).map(|_| rng.below(3)).collect();
            let before = p.cost(&a).expect("ok");
            let change = polish(&p, &mut a);
            let after = p.cost(&a).expect("ok");
            assert!((before + change - after).abs() < 1e-9);
            for m in 0..6 {
                for t in 0..3 {
                    let mut b = a.clone();
                    b[m] = t;
                    assert!(p.cost(&b).expect("ok") >= after - 1e-9);
                }
            }
        }
    }

    #[test]
    fn quench_ends_one_hot() {
        let mut rng = FastRng::new(9);
        for _ in 0..20 {
            let aq = AssignmentQubo::new(random_problem(&mut rng, 5, 3)).expect("builds");
            let mut x: Vec<u8> = (0..15).map(|_| (rng.below(2)) as u8).collect();
            let mut h = vec![0.0; 15];
            aq.qubo().fields(&x, &mut h);
            let before = aq.qubo().energy(&x).expect("ok");
            let change = quench(aq.qubo(), &mut x, &mut h);
            assert!((before + change - aq.qubo().energy(&x).expect("ok")).abs() < 1e-9);
            assert!(aq.decode(&x).is_some(), "{x:?}");
        }
    }
}
