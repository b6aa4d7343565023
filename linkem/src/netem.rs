//! Kernel link emulation: the `tc qdisc … netem` arguments for one
//! direction of a link (to put it on an interface, and to change a running
//! one's values in place, e.g. a rate that follows the modelled channel),
//! and a probe of whether this kernel has netem.
//!
//! netem shapes egress only, so a link's two directions go on the two ends
//! of its veth pair: `up` on the agent's interface (inside its namespace or
//! container), `down` on the peer end (the host or bridge side). The probe
//! adds a netem qdisc to the loopback of a throwaway network namespace, so
//! it touches nothing the host uses; it needs root and `ip`/`tc`.

use crate::profile::Direction;
use std::process::Command;
use std::sync::OnceLock;

/// netem's queue limit in packets; its default of 1000 drops packets on a
/// delayed fast link (the delay-bandwidth product overflows it).
pub const NETEM_LIMIT_PACKETS: u32 = 100_000;

/// `tc` arguments that put `direction` on `iface`'s egress (replacing any
/// root qdisc). A no-op direction still gets a qdisc with zero delay so a
/// re-run starts from a known state.
pub fn tc_args(iface: &str, direction: &Direction) -> Vec<String> {
    qdisc_args("replace", iface, &["root"], direction)
}

/// `tc` arguments that put `direction`'s delay, jitter and loss (not its
/// rate: the class above shapes that) on `iface` as the leaf of class
/// `parent` (e.g. `1:10`), with handle `handle` (e.g. `11:`): how a link
/// that HTB shapes gets the rest of its profile where netem exists.
pub fn leaf_args(iface: &str, parent: &str, handle: &str, direction: &Direction) -> Vec<String> {
    let unshaped = Direction { rate_bps: None, ..*direction };
    qdisc_args("add", iface, &["parent", parent, "handle", handle], &unshaped)
}

/// `tc` arguments that change the netem qdisc [`tc_args`] put on `iface`
/// to `direction`, in place (packets queued in it stay): how a running
/// link takes a new rate each slot. netem's change resets every option it
/// is not given, so the whole direction is given, not the new rate alone.
pub fn tc_change_args(iface: &str, direction: &Direction) -> Vec<String> {
    qdisc_args("change", iface, &["root"], direction)
}

/// The netem qdisc at `at` (`root`, or `parent P handle H`).
fn qdisc_args(verb: &str, iface: &str, at: &[&str], direction: &Direction) -> Vec<String> {
    let mut args: Vec<String> = ["qdisc", verb, "dev", iface].iter().chain(at).map(|s| s.to_string()).collect();
    args.extend(["netem".to_string(), "limit".to_string()]);
    args.push(NETEM_LIMIT_PACKETS.to_string());
    args.push("delay".into());
    args.push(format!("{}us", direction.delay.as_micros()));
    if !direction.jitter.is_zero() {
        args.push(format!("{}us", direction.jitter.as_micros()));
    }
    if direction.loss > 0.0 {
        args.push("loss".into());
        args.push(format!("{}%", direction.loss * 100.0));
    }
    if let Some(rate) = direction.rate_bps {
        args.push("rate".into());
        args.push(format!("{}bit", rate.round() as u64));
    }
    args
}

/// Whether link emulation can use the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// `tc qdisc add … netem` works.
    Netem,
    /// It does not; the reason (e.g. "Specified qdisc kind is unknown").
    Missing(String),
}

impl Support {
    pub fn has_netem(&self) -> bool {
        matches!(self, Support::Netem)
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Probes once per process (the kernel does not change under us).
pub fn support() -> &'static Support {
    static SUPPORT: OnceLock<Support> = OnceLock::new();
    SUPPORT.get_or_init(probe)
}

/// Adds and removes a netem qdisc in a throwaway namespace.
pub fn probe() -> Support {
    let ns = format!("qmec-netem-probe-{}", std::process::id());
    if let Err(reason) = run("ip", &["netns", "add", &ns]) {
        return Support::Missing(format!("cannot create a network namespace to probe netem ({reason})"));
    }
    let result = run("ip", &["netns", "exec", &ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]);
    let _ = run("ip", &["netns", "del", &ns]);
    match result {
        Ok(()) => Support::Netem,
        Err(reason) => Support::Missing(reason),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tc_args_carry_every_field() {
        let d = Direction {
            delay: Duration::from_millis(20),
            jitter: Duration::from_micros(1500),
            loss: 0.005,
            rate_bps: Some(8e6),
        };
        assert_eq!(
            tc_args("eth0", &d).join(" "),
            "qdisc replace dev eth0 root netem limit 100000 delay 20000us 1500us loss 0.5% rate 8000000bit"
        );
        assert_eq!(tc_args("veth1", &Direction::default()).join(" "), "qdisc replace dev veth1 root netem limit 100000 delay 0us");
    }

    #[test]
    fn a_rate_change_keeps_the_other_values_of_the_direction() {
        let d = Direction { delay: Duration::from_millis(5), loss: 0.01, ..Direction::default() };
        let slot = Direction { rate_bps: Some(2.5e6), ..d };
        assert_eq!(
            tc_change_args("eth0", &slot).join(" "),
            "qdisc change dev eth0 root netem limit 100000 delay 5000us loss 1% rate 2500000bit"
        );
        // Only the verb differs from putting the direction on afresh.
        let (change, replace) = (tc_change_args("eth0", &slot), tc_args("eth0", &slot));
        assert_eq!(change.iter().zip(&replace).filter(|(a, b)| a != b).count(), 1);
        assert_eq!((change[1].as_str(), replace[1].as_str()), ("change", "replace"));
    }

    #[test]
    fn a_leaf_carries_all_but_the_rate_under_its_class() {
        let d = Direction { delay: Duration::from_millis(5), loss: 0.01, rate_bps: Some(2e6), ..Direction::default() };
        assert_eq!(
            leaf_args("eth0", "1:10", "11:", &d).join(" "),
            "qdisc add dev eth0 parent 1:10 handle 11: netem limit 100000 delay 5000us loss 1%"
        );
    }
}
