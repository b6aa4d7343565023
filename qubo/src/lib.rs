//! AIGC server selection as a QUBO: the second research system of qmec
//! (IEEE IoT J. 13(7), 2026). Devices send AI-generated-content requests to
//! edge servers; a classical stage pre-allocates the wireless band, then the
//! choice of each device's server is a quadratic unconstrained binary
//! optimisation solved by QAOA (exact simulation), quantum-inspired and
//! classical solvers.
//!
//! # Layout
//! - [`aigc`]: requests, servers, links and the latency model, with the
//!   default ranges and why.
//! - [`bandwidth`]: the square-root pre-allocation rule (derived by KKT) and
//!   the equal split.
//! - [`problem`]: the selection problem — linear latencies plus a pairwise
//!   load coupling — independent of any encoding.
//! - [`qubo`]: a general QUBO in compressed-row form; dimod JSON and qbsolv
//!   exports.
//! - [`build`]: the one-hot penalty encoding and the proven rule for A.
//! - [`repair`]: making any output one-hot, counted.
//! - [`solver`]: the [`Solver`](solver::Solver) trait and every solver.
//! - [`policy`]: the `qubo` MEC offloading policy for the simulator and the
//!   testbed.
//! - [`bench`]: side-by-side solver and baseline measurements for the CLI.
//! - `rng` (private): a fast seeded generator for the annealers.
//!
//! Every input is checked at the boundary and reported as a [`QuboError`].

#![forbid(unsafe_code)]

pub mod aigc;
pub mod bandwidth;
pub mod bench;
pub mod build;
pub mod error;
pub mod policy;
pub mod problem;
pub mod qubo;
pub mod repair;
mod rng;
pub mod solver;

pub use build::AssignmentQubo;
pub use error::QuboError;
pub use policy::{POLICIES, QuboPolicy, by_name_policy};
pub use problem::SelectionProblem;
pub use qubo::Qubo;
