//! The greedy heuristic: devices in index order each take the option with
//! the smallest marginal cost given the devices already placed — latency
//! alone plus the coupling to those already on that server.

use super::{Solution, Solver, from_assignment};
use crate::build::AssignmentQubo;
use crate::error::QuboError;

#[derive(Debug, Clone, Copy, Default)]
pub struct Greedy;

impl Solver for Greedy {
    fn name(&self) -> &str {
        "greedy"
    }

    fn solve(&mut self, aq: &AssignmentQubo) -> Result<Solution, QuboError> {
        let p = aq.problem();
        let mut count = vec![0usize; p.servers()];
        let mut load = vec![0.0; p.servers()];
        let mut assignment = Vec::with_capacity(p.devices());
        for m in 0..p.devices() {
            let marginal = |s: usize| p.linear(m, s) + count[s] as f64 * p.load(m, s) + load[s];
            let s = (0..p.servers())
                .min_by(|&a, &b| marginal(a).total_cmp(&marginal(b)))
                .unwrap_or(0);
            count[s] += 1;
            load[s] += p.load(m, s);
            assignment.push(s);
        }
        Ok(from_assignment(aq, assignment, true, 0))
    }
}
