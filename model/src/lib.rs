//! The MEC system model of qmec, written once and shared by the in-process
//! simulator, the device and server agents and every policy.
//!
//! # Layout
//! - [`scenario`]: the validated TOML scenario (the built-in `paper` one too);
//!   every error names the field and the reason.
//! - [`matrix`]: a dense device × server matrix for rates, weights and decisions.
//! - [`streams`]: seeded random streams, one per device and purpose, so a run
//!   is bit-identical for a seed and different policies see the same arrivals
//!   and channels (common random numbers).
//! - [`task`]: tasks, fragments, completion records and drop reasons.
//! - [`channel`]: path loss, Rayleigh fading with AR(1) correlation, Shannon rate.
//! - [`mobility`]: servers at coordinates and devices that move (random
//!   waypoint, Gauss–Markov, trace replay), seeded per device.
//! - `open_tasks`: a device's open tasks by id, in a window of ids rather
//!   than a hash map (ids are sequential, completions mostly in order).
//! - [`device`]: one device: FIFO task queue served in fragments, virtual queue
//!   H, local computing and its energy, arrivals.
//! - [`server`]: one edge server: per-device backlog Z and CPU allocation.
//! - [`lyapunov`]: drift-plus-penalty weights Ψ and the value of a decision.
//! - [`policy`]: the state a policy sees, the decision it returns, the trait,
//!   and the feasibility check every decision passes.
//! - [`accounting`]: per-slot throughput, power and energy.
//! - [`excerpt`]: input quoted in an error, cut to a readable length.
//!
//! Units are SI throughout (bits, seconds, watts, joules, hertz); queue bits
//! are integers so that conservation of bits and tasks is exact.

#![forbid(unsafe_code)]

pub mod accounting;
pub mod channel;
pub mod device;
pub mod excerpt;
pub mod lyapunov;
pub mod matrix;
pub mod mobility;
mod open_tasks;
pub mod policy;
pub mod scenario;
pub mod server;
pub mod streams;
pub mod task;

pub use matrix::Matrix;
pub use policy::{Decision, Policy, PolicyError, SlotFigure, SystemState};
pub use scenario::{Scenario, ScenarioError};
