//! Link emulation, chosen once per run and said in the output: tc netem
//! where the kernel has it, else the userspace emulator in the device
//! agents; links that follow the channel by the userspace emulator, or on
//! request by the kernel's HTB (`--emulation kernel`, which needs no
//! netem). Here are the choice ([`choose`]), which link an agent carries
//! ([`link_of`]) and putting one direction of it on an interface
//! ([`apply_netem`]); the container and namespace backends call them as
//! they build their networks.

use crate::config::EmulationChoice;
use crate::error::{LaunchError, ShellError};
use crate::plan::Role;
use qmec_linkem::{Direction, Link, LinkProfile, netem};
use serde::Serialize;
use std::time::Duration;

/// What a run does with its link profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Emulation {
    /// No profile, or one that changes nothing.
    Off,
    /// tc netem on both ends of every emulated link's veth pair.
    Netem,
    /// qmec-linkem in the device agents; `why` says why not netem.
    Userspace { why: String },
    /// Links that follow the channel in the kernel: an HTB class per
    /// device and server link on each device process's interface, its
    /// rate changed each slot; `netem`: the kernel has netem, so netem
    /// adds the profile's delay, jitter and loss (else the kernel emulates
    /// the rate only, as `why` says).
    Kernel { netem: bool, why: String },
    /// The virtual runtime's simulated network (the same link schedule as
    /// the userspace emulator, on virtual time).
    Simulated,
}

impl Emulation {
    pub fn describe(&self) -> String {
        match self {
            Emulation::Off => "off (no link profile)".into(),
            Emulation::Netem => "tc netem (kernel)".into(),
            Emulation::Userspace { why } => format!("userspace (qmec-linkem in the device agents): {why}"),
            Emulation::Kernel { why, .. } => format!("kernel (HTB per device and server link, rates following the channel): {why}"),
            Emulation::Simulated => "simulated on virtual time (the virtual runtime's network)".into(),
        }
    }
}

/// Picks the emulation for `profile` and says it on stderr.
pub fn choose(profile: Option<&LinkProfile>, choice: EmulationChoice) -> Result<Emulation, LaunchError> {
    let emulation = match profile {
        None => Emulation::Off,
        Some(p) if p.is_noop() => Emulation::Off,
        Some(p) => match (choice, netem::support()) {
            (EmulationChoice::Kernel, support) => kernel(p, support)?,
            (EmulationChoice::Userspace, _) => Emulation::Userspace { why: "asked for (--emulation userspace)".into() },
            // Changing a netem qdisc mid-run is not built: a schedule
            // needs the userspace emulator.
            (EmulationChoice::Netem, _) if p.has_schedule() => return Err(LaunchError::NetemSchedule),
            (EmulationChoice::Auto, _) if p.has_schedule() => {
                Emulation::Userspace { why: "the link profile has a schedule, which only the userspace emulator applies".into() }
            }
            // One device's rate to one server changes every slot; a netem
            // qdisc on a device process's interface carries all of its
            // devices' traffic to every server and the controller.
            (EmulationChoice::Netem, _) if p.follow_channel.is_some() => return Err(LaunchError::NetemFollow),
            (EmulationChoice::Auto, support) if p.follow_channel.is_some() => {
                let kernel = match support {
                    netem::Support::Netem => "a netem qdisc shapes an agent's whole interface".to_string(),
                    netem::Support::Missing(why) => format!("this kernel has no tc netem ({why})"),
                };
                Emulation::Userspace {
                    why: format!("the link profile follows the modelled channel per device and server, which the userspace emulator applies; {kernel}"),
                }
            }
            (_, netem::Support::Netem) => Emulation::Netem,
            (EmulationChoice::Netem, netem::Support::Missing(why)) => return Err(LaunchError::NoNetem(why.clone())),
            (EmulationChoice::Auto, netem::Support::Missing(why)) => {
                Emulation::Userspace { why: format!("this kernel has no tc netem ({why})") }
            }
        },
    };
    qmec_proto::agent_process::note(format_args!("link emulation: {}", emulation.describe()));
    if let (Emulation::Userspace { .. }, Some(p)) = (&emulation, profile)
        && !p.server.is_noop()
    {
        qmec_proto::agent_process::note(format_args!("link emulation: the server links apply to device ↔ server traffic only (server ↔ controller is not emulated in userspace)"));
    }
    Ok(emulation)
}

/// `--emulation kernel` for `profile`: its links must follow the channel
/// (HTB shapes each device's link to each server) and not change on a
/// schedule; netem adds the rest where the kernel has it.
fn kernel(profile: &LinkProfile, support: &netem::Support) -> Result<Emulation, LaunchError> {
    if profile.follow_channel.is_none() {
        return Err(LaunchError::KernelProfile("the link profile has no [device.follow_channel] (for fixed links: --emulation netem)"));
    }
    if profile.has_schedule() {
        return Err(LaunchError::KernelProfile("the link profile has a schedule, which only the userspace emulator applies"));
    }
    Ok(match support {
        netem::Support::Netem => Emulation::Kernel {
            netem: true,
            why: "asked for (--emulation kernel); netem adds the profile's delay, jitter and loss under each link's class and on the other links".into(),
        },
        netem::Support::Missing(missing) => Emulation::Kernel {
            netem: false,
            why: format!(
                "asked for (--emulation kernel); the kernel emulates the device→server rates only: delay, jitter and loss are not emulated, this kernel has no tc netem ({missing})"
            ),
        },
    })
}

/// The link an agent's interface carries under netem (the controller's
/// link is not modelled).
pub fn link_of(role: &Role, profile: &LinkProfile) -> Option<Link> {
    match role {
        Role::Controller => None,
        Role::Server(_) => Some(profile.server).filter(|l| !l.is_noop()),
        Role::Devices(_) => Some(profile.device).filter(|l| !l.is_noop()),
    }
}

/// Puts `direction` on `iface`'s egress with tc, run under `exec` (e.g.
/// `ip netns exec NS` or `nsenter -t PID -n`; empty: this namespace).
pub async fn apply_netem(exec: &[&str], iface: &str, direction: &Direction) -> Result<(), ShellError> {
    let mut line: Vec<String> = exec.iter().map(|s| s.to_string()).collect();
    line.push("tc".into());
    line.extend(netem::tc_args(iface, direction));
    let (program, args) = line.split_at(1);
    crate::shell::run(&program[0], args, Duration::from_secs(10)).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_profile_or_a_noop_one_turns_emulation_off() {
        assert_eq!(choose(None, EmulationChoice::Netem).ok(), Some(Emulation::Off));
        let noop = LinkProfile::with_defaults();
        assert_eq!(choose(Some(&noop), EmulationChoice::Auto).ok(), Some(Emulation::Off));
        let delayed = LinkProfile::device_delay(Duration::from_millis(20));
        let chosen = choose(Some(&delayed), EmulationChoice::Auto).ok();
        match netem::support() {
            netem::Support::Netem => assert_eq!(chosen, Some(Emulation::Netem)),
            netem::Support::Missing(_) => assert!(matches!(chosen, Some(Emulation::Userspace { .. }))),
        }
    }

    #[test]
    fn a_schedule_takes_the_userspace_emulator_and_netem_refuses_it() {
        let scheduled = LinkProfile::parse("[[device.schedule]]\nat_s = 1\nrate_mbit = 5").expect("a valid profile");
        match choose(Some(&scheduled), EmulationChoice::Auto) {
            Ok(Emulation::Userspace { why }) => assert!(why.contains("schedule"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(choose(Some(&scheduled), EmulationChoice::Netem), Err(LaunchError::NetemSchedule)));
    }

    #[test]
    fn following_the_channel_takes_the_userspace_emulator_and_says_why() {
        let following = LinkProfile::parse("[device]\ndelay_ms = 5\n[device.follow_channel]").expect("a valid profile");
        match choose(Some(&following), EmulationChoice::Auto) {
            Ok(Emulation::Userspace { why }) => {
                assert!(why.contains("follows the modelled channel"), "{why}");
                if let netem::Support::Missing(missing) = netem::support() {
                    assert!(why.contains(missing.as_str()), "{why}");
                }
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(choose(Some(&following), EmulationChoice::Netem), Err(LaunchError::NetemFollow)));
    }

    #[test]
    fn the_kernel_takes_links_that_follow_the_channel_and_says_what_it_emulates() {
        let following = LinkProfile::parse("[device]\ndelay_ms = 5\n[device.follow_channel]").expect("a valid profile");
        match (choose(Some(&following), EmulationChoice::Kernel), netem::support()) {
            (Ok(Emulation::Kernel { netem: true, why }), netem::Support::Netem) => assert!(why.contains("netem adds"), "{why}"),
            (Ok(Emulation::Kernel { netem: false, why }), netem::Support::Missing(missing)) => {
                assert!(why.contains("rates only") && why.contains("not emulated") && why.contains(missing.as_str()), "{why}");
            }
            other => panic!("{other:?}"),
        }
        let fixed = LinkProfile::device_delay(Duration::from_millis(20));
        assert!(matches!(choose(Some(&fixed), EmulationChoice::Kernel), Err(LaunchError::KernelProfile(why)) if why.contains("follow_channel")));
        let scheduled = LinkProfile::parse("[device.follow_channel]\n[[device.schedule]]\nat_s = 1\ndelay_ms = 5").expect("a valid profile");
        assert!(matches!(choose(Some(&scheduled), EmulationChoice::Kernel), Err(LaunchError::KernelProfile(why)) if why.contains("schedule")));
    }
}
