//! A randomised fault soak: fault schedules drawn from a seed (kills,
//! stops, controller restarts, partitions, late devices and slow servers),
//! each carried out over a short run on any runtime, and each run judged
//! twice: task and bit conservation over records that cover the whole run
//! (the run's own verdict), and recovery (once the faults are over, the
//! controller hears on time from every agent it should). `qmec soak`
//! runs it for as long as asked; the virtual runtime's exploration test
//! runs a thousand schedules the same way.

use crate::config::RuntimeKind;
use crate::outcome::TestbedOutcome;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Faults end this many slots before the run does, so recovery shows.
pub const QUIET_TAIL: u64 = 15;

/// The run a schedule is drawn for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub slots: u64,
    pub devices: usize,
    pub servers: usize,
}

/// A random schedule for a run of `shape` on `runtime`: up to four faults
/// of the kinds that runtime carries out, on any agent, all before the
/// quiet tail. Kills are of servers only (a run without its controller or
/// a device process is incomplete by design, not a failure to find).
pub fn draw(seed: u64, shape: Shape, runtime: RuntimeKind) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let latest = shape.slots.saturating_sub(QUIET_TAIL + 12).max(1);
    let partitions = runtime != RuntimeKind::Local;
    let mut faults = Vec::new();
    let mut restarted = false;
    let mut killed = vec![false; shape.servers];
    for _ in 0..rng.random_range(0..=4) {
        let at = rng.random_range(0..latest);
        let span = rng.random_range(1..=10);
        let device = rng.random_range(0..shape.devices.max(1));
        let server = rng.random_range(0..shape.servers.max(1));
        let fault = match rng.random_range(0..7) {
            0 if !killed[server] => {
                killed[server] = true;
                format!("kill:server-{server}@{at}")
            }
            1 if !restarted => {
                restarted = true;
                format!("restart:controller@{at}+{span}")
            }
            2 => format!("stop:device-{device}@{at}+{span}"),
            3 => format!("late:device-{device}@{at}"),
            4 => format!("slow:server-{server}@{at}"),
            5 if partitions => format!("partition:device-{device}@{at}+{span}"),
            _ if partitions => format!("partition:server-{server}@{at}+{span}"),
            _ => format!("stop:server-{server}@{at}+{span}"),
        };
        faults.push(fault);
    }
    faults.join(",")
}

/// What is wrong with a run of `slots` slots under `faults`, if anything:
/// its verdict (conservation over records that cover the whole run), the
/// bit balance, and recovery over the quiet tail, where only the devices
/// that report late for good are late and only servers killed or slow.
pub fn judge(outcome: &TestbedOutcome, faults: &str, slots: u64) -> Result<(), String> {
    outcome.verdict()?;
    let figures = &outcome.merged.figures;
    if !figures.bits.holds() {
        return Err(format!("bits not conserved: {:?}", figures.bits));
    }
    if figures.slots_run != slots {
        return Err(format!("{} of {slots} slots run", figures.slots_run));
    }
    let late_devices = faults.matches("late:").count() as u32;
    let (gone, slow) = (faults.matches("kill:").count() as u32, faults.matches("slow:").count() as u32);
    let tail = outcome.merged.controller_slots.iter().filter(|s| s.slot + 5 >= slots);
    for slot in tail {
        if slot.late_devices > late_devices || slot.stale_devices > 0 || slot.late_servers > gone + slow {
            return Err(format!(
                "not recovered by slot {}: {} late devices, {} stale, {} late servers",
                slot.slot, slot.late_devices, slot.stale_devices, slot.late_servers
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_seeded_parse_and_fit_the_runtime() {
        let shape = Shape { slots: 60, devices: 3, servers: 2 };
        assert_eq!(draw(7, shape, RuntimeKind::Virtual), draw(7, shape, RuntimeKind::Virtual));
        let names: Vec<String> = ["controller", "server-0", "server-1", "device-0", "device-1", "device-2"].map(String::from).into();
        for seed in 0..200 {
            let local = draw(seed, shape, RuntimeKind::Local);
            assert!(!local.contains("partition"), "{local}");
            for schedule in [local, draw(seed, shape, RuntimeKind::Netns)] {
                let faults = crate::faults::parse(&schedule).expect("drawn schedules parse");
                assert!(faults.iter().all(|f| f.at_slot + QUIET_TAIL < shape.slots), "{schedule}");
                crate::faults::actions(&faults, &names, std::time::Duration::from_millis(10)).expect("known agents");
            }
        }
    }
}
