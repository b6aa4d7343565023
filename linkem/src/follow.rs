//! Links that follow the modelled channel: with `[device.follow_channel]`
//! in the link profile, a device's link up to each server runs, slot by
//! slot, at that device's modelled rate r_ms(t) to that server (which the
//! model draws each slot from distance and path loss, and which changes
//! with mobility), instead of a fixed or scheduled rate.
//!
//! The rate is set at run time, so an emulated direction holds a
//! [`LiveRate`] that its schedule reads for every chunk entering it; the
//! device's loop (or the virtual runtime's device) sets it when it hands a
//! slot's transmission to its uplink, from the modelled rates its core
//! gives with the batch. [`FollowChannel::link_rate_bps`] turns a modelled
//! rate into the link's: the device agents send `bits / 8 / payload_scale`
//! bytes per fragment and pace them so that b modelled bits take
//! `b / r · wall_per_modelled` wall seconds, so a link that carries exactly
//! the paced bytes in the paced time runs at
//! `r / (payload_scale · wall_per_modelled)` bit/s ([`RateScale::Paced`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// An emulated direction's rate, set while it runs (shared by the setter
/// and every connection's schedule). Unset until the first slot's rate.
#[derive(Debug, Clone, Default)]
pub struct LiveRate(Arc<AtomicU64>);

/// The bits of an unset rate: no f64 rate is stored as this (a positive
/// finite rate never has the bit pattern of +0.0).
const UNSET: u64 = 0;

impl LiveRate {
    pub fn new() -> LiveRate {
        LiveRate::default()
    }

    /// From now on, chunks entering the direction go at `bps` bit/s; a
    /// rate that is not a positive finite number leaves the one in force.
    pub fn set(&self, bps: f64) {
        if bps.is_finite() && bps > 0.0 {
            self.0.store(bps.to_bits(), Ordering::Relaxed);
        }
    }

    /// The rate in force, if one was set.
    pub fn get(&self) -> Option<f64> {
        match self.0.load(Ordering::Relaxed) {
            UNSET => None,
            bits => Some(f64::from_bits(bits)),
        }
    }
}

/// How a modelled rate becomes the link's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateScale {
    /// The rate at which the device agents pace their payload bytes:
    /// r / (payload_scale · wall_per_modelled).
    Paced,
    /// Link bit/s per modelled bit/s (1: the modelled rate itself).
    Factor(f64),
}

/// `[device.follow_channel]`: the device→server direction's rate follows
/// the modelled channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FollowChannel {
    pub scale: RateScale,
}

/// The floor of a followed rate: a device far from a server still gets
/// its end-of-slot markers and the protocol's own frames through in a
/// fraction of a slot (a rate near zero would hold them, and everything
/// behind them on the connection, for ever).
pub const MIN_FOLLOWED_BPS: f64 = 8_000.0;

impl FollowChannel {
    /// The link's rate for modelled rate `modelled_bps`, when a modelled
    /// second of transmission takes `wall_per_modelled` wall seconds and a
    /// fragment's payload is its bits / 8 / `payload_scale` bytes; `None`
    /// when the inputs make no rate (not positive, not finite).
    pub fn link_rate_bps(&self, modelled_bps: f64, wall_per_modelled: f64, payload_scale: f64) -> Option<f64> {
        let rate = match self.scale {
            RateScale::Paced => modelled_bps / (payload_scale * wall_per_modelled),
            RateScale::Factor(factor) => modelled_bps * factor,
        };
        (rate.is_finite() && modelled_bps > 0.0 && rate > 0.0).then_some(rate.max(MIN_FOLLOWED_BPS))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_live_rate_is_unset_until_set_and_ignores_non_rates() {
        let rate = LiveRate::new();
        assert_eq!(rate.get(), None);
        let shared = rate.clone();
        shared.set(2e6);
        assert_eq!(rate.get(), Some(2e6));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            shared.set(bad);
            assert_eq!(rate.get(), Some(2e6), "{bad}");
        }
    }

    #[test]
    fn the_paced_scale_carries_the_paced_bytes_in_the_paced_time() {
        let paced = FollowChannel { scale: RateScale::Paced };
        // 10 Mbit/s modelled, a payload scale of 1000, half a wall second
        // per modelled second: 20 kbit/s of payload.
        assert_eq!(paced.link_rate_bps(10e6, 0.5, 1000.0), Some(20_000.0));
        // b = 80 kbit at r: 8 ms modelled, 4 ms wall; its 10 payload bytes
        // at the link's rate take the same 4 ms.
        let link = paced.link_rate_bps(10e6, 0.5, 1000.0).unwrap();
        let (bits, payload_bytes) = (80_000.0, 10.0);
        assert!((payload_bytes * 8.0 / link - bits / 10e6 * 0.5).abs() < 1e-12);
        let literal = FollowChannel { scale: RateScale::Factor(1.0) };
        assert_eq!(literal.link_rate_bps(3e6, 0.5, 1000.0), Some(3e6));
        assert_eq!(literal.link_rate_bps(1.0, 0.5, 1000.0), Some(MIN_FOLLOWED_BPS), "a floor for a device out of range");
        assert_eq!(literal.link_rate_bps(0.0, 0.5, 1000.0), None);
        assert_eq!(paced.link_rate_bps(1e6, 0.0, 1000.0), None);
    }
}
