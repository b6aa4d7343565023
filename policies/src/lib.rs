//! Classical offloading policies, each behind the one [`Policy`] trait of
//! the model crate, so they run unchanged in the simulator and the controller.
//!
//! # Layout
//! - [`local`]: μ = 0, everything computed on the device.
//! - [`random`]: each device picks a server or none uniformly.
//! - [`greedy`]: each device offloads to its best channel (the usual
//!   textbook baseline; it ignores Ψ, so it also offloads where the energy
//!   penalty outweighs the drain).
//! - [`dpp_greedy`]: pairs by Ψ_ms, largest first, each filled with what
//!   is left ([`fill`]): near the LP optimum in microseconds.
//! - [`fill`]: sort-and-fill, the feasible decision from an order of pairs.
//! - [`share`]: the fair split both of them use when devices pick the same server.
//! - [`lyapunov`]: the exact per-slot drift-plus-penalty LP, and the
//!   LP optimum every learned policy is scored against; `lyapunov` solves it
//!   with [`dpp_exact`], `lyapunov-lp` with microlp.
//! - [`dpp_exact`]: the structured solver with its certificate (a dual bound).

#![forbid(unsafe_code)]

pub mod dpp_exact;
pub mod dpp_greedy;
pub mod fill;
pub mod greedy;
pub mod local;
pub mod lyapunov;
pub mod random;
pub mod share;

pub use dpp_exact::{Certified, solve_exact};
pub use dpp_greedy::DppGreedy;
pub use greedy::Greedy;
pub use local::Local;
pub use lyapunov::{Lyapunov, LyapunovLp, solve_dpp_exact, solve_dpp_lp, solve_on_pairs};
pub use random::RandomChoice;

use qmec_model::Policy;

/// The names [`classical`] knows.
pub const CLASSICAL: [&str; 5] = ["local", "random", "greedy", "dpp-greedy", "lyapunov"];

/// Policies [`classical`] also knows that experiments do not run by
/// default: `lyapunov-lp`, the same optimum as `lyapunov` from microlp.
pub const REFERENCE: [&str; 1] = ["lyapunov-lp"];

/// A classical policy by name; `None` if the name is in neither [`CLASSICAL`]
/// nor [`REFERENCE`].
/// `seed` drives the random policy's own stream.
pub fn classical(name: &str, seed: u64) -> Option<Box<dyn Policy>> {
    Some(match name {
        "local" => Box::new(Local),
        "random" => Box::new(RandomChoice::new(seed)),
        "greedy" => Box::new(Greedy),
        "dpp-greedy" => Box::new(DppGreedy::default()),
        "lyapunov" => Box::new(Lyapunov),
        "lyapunov-lp" => Box::new(LyapunovLp),
        _ => return None,
    })
}
