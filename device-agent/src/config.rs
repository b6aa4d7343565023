//! Device agent settings, from flags or a TOML file (`--config`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Share of the wall slot a full modelled slot of transmission takes by
/// default: room left in the slot for results and the next report.
pub const DEFAULT_TX_FRACTION: f64 = 0.4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceAgentConfig {
    /// The controller's gRPC endpoint, e.g. `http://127.0.0.1:4000`.
    pub controller: String,
    /// Device ids this process runs, one agent each.
    pub devices: Vec<usize>,
    /// Payload bytes on the wire are bits / 8 / payload_scale (≥ 1).
    pub payload_scale: f64,
    /// Share of the wall slot that a full modelled slot of transmission
    /// takes (the rest leaves room for reports and decisions).
    pub tx_fraction: f64,
    #[serde(default)]
    pub records: Option<PathBuf>,
    /// Userspace link emulation (qmec-linkem): dial the controller and the
    /// servers through this link profile, for hosts whose kernel has no
    /// `tc netem`. None: plain TCP.
    #[serde(default)]
    pub link_profile: Option<PathBuf>,
    /// Shape the links up to the servers in the kernel instead: an HTB
    /// class per device and server on this interface, its rate following
    /// the channel as the link profile's `[device.follow_channel]` says
    /// (which it needs); the controller's link is not emulated then.
    #[serde(default)]
    pub kernel_links: Option<String>,
    /// With `kernel_links`: the kernel has netem, so a netem leaf under
    /// each class adds the profile's device up delay, jitter and loss.
    #[serde(default)]
    pub kernel_netem: bool,
    /// Mutual TLS and the bearer token (off by default).
    #[serde(default)]
    pub security: qmec_security::SecurityConfig,
    /// Fault injection: hold every report of slot ≥ `report_delay_from`
    /// this long before sending it (0: none), so the device reports late.
    #[serde(default)]
    pub report_delay_ms: f64,
    #[serde(default)]
    pub report_delay_from: u64,
    /// Report slot t as soon as slot t−1's decision ends it, ahead of the
    /// announcement. Off (the default), a device reports after the slot is
    /// announced, as DESIGN.md's protocol has it, so the control-plane round
    /// trip is part of every task's latency; on, the controller holds every
    /// report when a slot starts (shorter slot loops at scale), and that
    /// round trip is hidden.
    #[serde(default)]
    pub early_reports: bool,
    /// Prometheus metrics address (e.g. `127.0.0.1:9101`); none disables it.
    #[serde(default)]
    pub metrics: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Read every setting from this TOML file (a DeviceAgentConfig) instead.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub controller: String,
    /// Device ids: a list (0,1,2) or a range (0..100, end excluded).
    #[arg(long, default_value = "0")]
    pub devices: String,
    #[arg(long, default_value_t = 1000.0)]
    pub payload_scale: f64,
    #[arg(long, default_value_t = DEFAULT_TX_FRACTION)]
    pub tx_fraction: f64,
    #[arg(long)]
    pub records: Option<PathBuf>,
    /// Emulate the device's links in userspace from this link-profile file.
    #[arg(long)]
    pub link_profile: Option<PathBuf>,
    /// Shape the links up to the servers with HTB on this interface, their
    /// rates following the channel (see DeviceAgentConfig).
    #[arg(long)]
    pub kernel_links: Option<String>,
    /// With --kernel-links: add the profile's delay, jitter and loss with netem.
    #[arg(long)]
    pub kernel_netem: bool,
    #[command(flatten)]
    pub security: qmec_security::SecurityArgs,
    /// Fault injection: delay every report by this many ms (a device that
    /// reports late every slot).
    #[arg(long, default_value_t = 0.0)]
    pub report_delay_ms: f64,
    /// First slot whose report is delayed.
    #[arg(long, default_value_t = 0)]
    pub report_delay_from: u64,
    /// Report each slot ahead of its announcement (see DeviceAgentConfig).
    #[arg(long)]
    pub early_reports: bool,
    /// Serve Prometheus metrics on this address.
    #[arg(long)]
    pub metrics: Option<String>,
    /// One replica of a replicated service (Docker Swarm), whose replicas
    /// all get the same arguments: run this many of `--devices` (a range),
    /// the share of the 1-based task slot in `$QMEC_DEVICE_SLOT`, and name
    /// the records file by them where `--records` says `{devices}`.
    #[arg(long)]
    pub devices_per_slot: Option<usize>,
}

/// The environment variable a replicated device service sets to its task
/// slot (`{{.Task.Slot}}`, counted from 1).
pub const SLOT_ENV: &str = "QMEC_DEVICE_SLOT";

/// Where a `--records` path names the devices of the process.
pub const DEVICES_PLACEHOLDER: &str = "{devices}";

/// The devices of task slot `slot` (from 1) when each slot runs
/// `per_slot` of the consecutive `ids`.
pub fn slot_share(ids: &[usize], per_slot: usize, slot: &str) -> Result<std::ops::Range<usize>, ConfigError> {
    let invalid = |field, reason: String| ConfigError::Invalid { field, reason };
    if per_slot == 0 {
        return Err(invalid("devices_per_slot", "must be ≥ 1".into()));
    }
    let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
        return Err(invalid("devices", "no device ids".into()));
    };
    if last + 1 - first != ids.len() || ids.windows(2).any(|w| w[1] != w[0] + 1) {
        return Err(invalid("devices", "must be a range (A..B) when split by task slot".into()));
    }
    let slot: usize = slot
        .trim()
        .parse()
        .ok()
        .filter(|s| *s >= 1)
        .ok_or_else(|| invalid("QMEC_DEVICE_SLOT", format!("`{slot}` is not a task slot (1, 2, …)")))?;
    let start = first + (slot - 1).saturating_mul(per_slot);
    let end = start.saturating_add(per_slot).min(last + 1);
    if start > last {
        let slots = ids.len().div_ceil(per_slot);
        return Err(invalid("QMEC_DEVICE_SLOT", format!("slot {slot} is beyond the {slots} slots of {} devices, {per_slot} a slot", ids.len())));
    }
    Ok(start..end)
}

/// `--devices` and `--records` of one replica: its share of the devices
/// and its records file named after them.
fn take_slot_share(config: &mut DeviceAgentConfig, per_slot: usize) -> Result<(), ConfigError> {
    let slot = std::env::var(SLOT_ENV)
        .map_err(|_| ConfigError::Invalid { field: "QMEC_DEVICE_SLOT", reason: "must be set with --devices-per-slot".into() })?;
    let share = slot_share(&config.devices, per_slot, &slot)?;
    if let Some(records) = &config.records {
        let name = qmec_security::certs::devices_name(&share);
        config.records = Some(PathBuf::from(records.to_string_lossy().replace(DEVICES_PLACEHOLDER, &name)));
    }
    config.devices = share.collect();
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] qmec_proto::config_file::ConfigFileError),
    #[error("`{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// `0,1,2` or `0..100`.
pub fn parse_ids(text: &str) -> Result<Vec<usize>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { field: "devices", reason };
    let ids: Vec<usize> = if let Some((a, b)) = text.split_once("..") {
        let a: usize = a.trim().parse().map_err(|_| invalid(format!("bad range start in `{text}`")))?;
        let b: usize = b.trim().parse().map_err(|_| invalid(format!("bad range end in `{text}`")))?;
        (a..b).collect()
    } else {
        text.split(',')
            .map(|id| id.trim().parse().map_err(|_| invalid(format!("bad id `{id}`"))))
            .collect::<Result<_, _>>()?
    };
    if ids.is_empty() {
        return Err(invalid("no device ids".into()));
    }
    Ok(ids)
}

impl Args {
    pub fn into_config(self) -> Result<DeviceAgentConfig, ConfigError> {
        let mut config = match &self.config {
            Some(path) => qmec_proto::config_file::read_toml(path)?,
            None => DeviceAgentConfig {
                controller: self.controller,
                devices: parse_ids(&self.devices)?,
                payload_scale: self.payload_scale,
                tx_fraction: self.tx_fraction,
                records: self.records,
                link_profile: self.link_profile,
                kernel_links: self.kernel_links,
                kernel_netem: self.kernel_netem,
                security: self.security.into(),
                report_delay_ms: self.report_delay_ms,
                report_delay_from: self.report_delay_from,
                early_reports: self.early_reports,
                metrics: self.metrics,
            },
        };
        if let Some(per_slot) = self.devices_per_slot {
            take_slot_share(&mut config, per_slot)?;
        }
        if !(config.report_delay_ms.is_finite() && config.report_delay_ms >= 0.0) {
            return Err(ConfigError::Invalid { field: "report_delay_ms", reason: format!("must be ≥ 0, got {}", config.report_delay_ms) });
        }
        if !(config.payload_scale.is_finite() && config.payload_scale >= 1.0) {
            return Err(ConfigError::Invalid { field: "payload_scale", reason: format!("must be ≥ 1, got {}", config.payload_scale) });
        }
        if !(config.tx_fraction > 0.0 && config.tx_fraction <= 1.0) {
            return Err(ConfigError::Invalid { field: "tx_fraction", reason: format!("must be in (0, 1], got {}", config.tx_fraction) });
        }
        if let Some(path) = &config.link_profile {
            let profile = qmec_linkem::LinkProfile::load(path)
                .map_err(|e| ConfigError::Invalid { field: "link_profile", reason: e.to_string() })?;
            if config.kernel_links.is_some() && profile.follow_channel.is_none() {
                let reason = "the kernel shapes links that follow the channel only: the link profile has no [device.follow_channel]";
                return Err(ConfigError::Invalid { field: "kernel_links", reason: reason.into() });
            }
        } else if config.kernel_links.is_some() {
            return Err(ConfigError::Invalid { field: "kernel_links", reason: "needs a link profile (--link-profile)".into() });
        }
        Ok(config)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        args: super::Args,
    }

    #[test]
    fn kernel_links_need_a_profile_that_follows_the_channel() {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let config = |profile: Option<&str>| {
            let mut args = vec!["device".to_string(), "--kernel-links".into(), "eth0".into()];
            if let Some(text) = profile {
                let path = dir.path().join("links.toml");
                std::fs::write(&path, text).unwrap();
                args.extend(["--link-profile".into(), path.display().to_string()]);
            }
            Command::try_parse_from(args).unwrap().args.into_config().map_err(|e| e.to_string())
        };
        assert_eq!(config(None).unwrap_err(), "`kernel_links`: needs a link profile (--link-profile)");
        assert!(config(Some("[device]\ndelay_ms = 5\n")).unwrap_err().contains("no [device.follow_channel]"));
        let following = config(Some("[device.follow_channel]\n")).unwrap();
        assert_eq!((following.kernel_links.as_deref(), following.kernel_netem), (Some("eth0"), false));
    }

    #[test]
    fn ids_parse_as_lists_and_ranges() {
        assert_eq!(super::parse_ids("0..3").unwrap(), vec![0, 1, 2]);
        assert_eq!(super::parse_ids("4, 7").unwrap(), vec![4, 7]);
        assert!(super::parse_ids("3..3").is_err());
        assert!(super::parse_ids("x").is_err());
    }

    #[test]
    fn a_task_slot_takes_its_share_of_a_range() {
        let ids: Vec<usize> = (0..10).collect();
        assert_eq!(super::slot_share(&ids, 4, "1").unwrap(), 0..4);
        assert_eq!(super::slot_share(&ids, 4, "3").unwrap(), 8..10);
        let beyond = super::slot_share(&ids, 4, "4").unwrap_err().to_string();
        assert_eq!(beyond, "`QMEC_DEVICE_SLOT`: slot 4 is beyond the 3 slots of 10 devices, 4 a slot");
        for bad in ["0", "x", ""] {
            assert!(super::slot_share(&ids, 4, bad).unwrap_err().to_string().contains("is not a task slot"), "{bad}");
        }
        assert!(super::slot_share(&[0, 2, 3], 2, "1").unwrap_err().to_string().contains("must be a range"));
        assert!(super::slot_share(&ids, 0, "1").unwrap_err().to_string().contains("devices_per_slot"));
    }
}
