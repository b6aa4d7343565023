//! Turning any bit string into a one-hot assignment. Solvers that work on
//! the penalised QUBO (annealing, bifurcation, textbook QAOA) can end on an
//! infeasible x; each device whose row is not one-hot is re-assigned to the
//! option that raises the energy least given every other bit — the cheapest
//! single one-hot fix — and the number of devices so fixed is reported.

use crate::build::AssignmentQubo;

/// Repairs `x` in place, device by device in index order, and returns how
/// many devices needed it. `x` must have the QUBO's length.
pub fn repair(aq: &AssignmentQubo, x: &mut [u8]) -> usize {
    let s_count = aq.servers();
    let qubo = aq.qubo();
    let mut repaired = 0;
    for m in 0..aq.devices() {
        let row = m * s_count..(m + 1) * s_count;
        if x[row.clone()].iter().filter(|b| **b != 0).count() == 1 {
            continue;
        }
        repaired += 1;
        x[row.clone()].fill(0);
        let mut best = (f64::INFINITY, 0);
        for s in 0..s_count {
            let i = row.start + s;
            let (cols, vals) = qubo.row(i);
            let field: f64 = qubo.linear()[i]
                + cols
                    .iter()
                    .zip(vals)
                    .filter(|(j, _)| x[**j as usize] != 0)
                    .map(|(_, b)| b)
                    .sum::<f64>();
            if field < best.0 {
                best = (field, s);
            }
        }
        x[row.start + best.1] = 1;
    }
    repaired
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::SelectionProblem;

    #[test]
    fn repair_fixes_and_counts_only_broken_rows() {
        let p = SelectionProblem::new(3, 2, vec![1.0, 5.0, 5.0, 1.0, 2.0, 3.0], vec![0.0; 6])
            .expect("valid");
        let aq = AssignmentQubo::new(p).expect("builds");
        let mut x = vec![1, 1, 0, 1, 0, 0];
        assert_eq!(repair(&aq, &mut x), 2);
        assert_eq!(aq.decode(&x), Some(vec![0, 1, 0]));
        assert_eq!(repair(&aq, &mut x), 0);
    }
}
