//! Seeded random streams. Each device draws its arrivals and its channel from
//! streams of its own, derived from the run seed and the device id, so that
//! (a) a seed reproduces a run bit for bit, (b) every policy sees the same
//! arrivals and fading (common random numbers), and (c) a device agent in
//! another process draws exactly what the simulator would.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream is used for; part of its derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    Arrivals = 1,
    Fading = 2,
    Geometry = 3,
    Policy = 4,
    Mobility = 5,
}

/// The stream for (seed, purpose, index), e.g. device m's arrivals.
pub fn stream(seed: u64, purpose: Purpose, index: u64) -> ChaCha8Rng {
    let key = splitmix(splitmix(seed ^ splitmix(purpose as u64)) ^ index);
    ChaCha8Rng::seed_from_u64(key)
}

/// SplitMix64's finaliser: spreads nearby seeds far apart.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
