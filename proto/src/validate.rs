//! Validation of incoming messages. Peers are other processes, possibly on
//! other machines and of other versions, so nothing from the wire is trusted:
//! each check turns a message into a model-level value or an [`Invalid`]
//! naming the field and the reason. A handler answers
//! `Status::invalid_argument` and the process carries on.

use crate::pb;
use qmec_model::Scenario;
use qmec_model::task::FragmentTimes;
use std::time::Duration;

/// The most bits one fragment may carry: a whole device queue cap is far
/// below this, so a larger value is corruption, not load.
pub const MAX_FRAGMENT_BITS: u64 = 1 << 40;
/// The most payload bytes one fragment may carry (tonic's default message
/// limit is 4 MiB; fragments stay well under it).
pub const MAX_PAYLOAD_BYTES: usize = 2 << 20;
/// Queue figures beyond this many bits are not physical.
pub const MAX_QUEUE_BITS: f64 = 1e18;
/// Model times (seconds) beyond this are corruption: ~30 000 years.
pub const MAX_MODEL_TIME_S: f64 = 1e12;
/// Wall-clock waits beyond a day are corruption.
pub const MAX_WALL_US: u64 = 86_400_000_000;
/// The longest endpoint string accepted.
pub const MAX_ENDPOINT_LEN: usize = 256;
/// The longest scenario TOML accepted.
pub const MAX_SCENARIO_LEN: usize = 1 << 20;

/// A message field that failed validation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
        Invalid { field: field.into(), reason: reason.into() }
    }

    /// The gRPC status a handler answers with.
    pub fn to_status(&self) -> tonic::Status {
        tonic::Status::invalid_argument(self.to_string())
    }
}

impl From<Invalid> for tonic::Status {
    fn from(invalid: Invalid) -> tonic::Status {
        invalid.to_status()
    }
}

/// A device report, checked against the run's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub slot: u64,
    pub queue_bits: f64,
    pub virtual_bits: f64,
    pub gains: Vec<f64>,
}

/// A server report, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerReport {
    pub slot: u64,
    /// (device, Z_ms) pairs, devices distinct and known.
    pub backlogs: Vec<(usize, u64)>,
    pub total_bits: u64,
    pub load: f64,
}

/// A decision row, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub slot: u64,
    pub shares: Vec<f64>,
    pub server_free_bits: Vec<u64>,
    pub late: bool,
}

/// A fragment, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    pub slot: u64,
    pub task: u64,
    pub bits: u64,
    pub payload_len: usize,
    pub sent_s: f64,
    pub uploaded_s: f64,
}

/// A result, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FragmentResult {
    pub slot: u64,
    pub task: u64,
    pub bits: u64,
    /// The fragment's path in model time (offloaded).
    pub times: FragmentTimes,
    /// Wall-clock time it waited at the server for its slot's computing,
    /// and then for the result to leave (on the server's clock).
    pub server_wait: Duration,
    pub server_hold: Duration,
}

/// The run's setup, checked and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    pub scenario: Scenario,
    pub seed: u64,
    pub slots: u64,
    pub slot_wall_s: f64,
    pub server_endpoints: Vec<String>,
}

fn finite_non_negative(field: &str, value: f64, max: f64) -> Result<f64, Invalid> {
    if !value.is_finite() {
        return Err(Invalid::new(field, format!("must be finite, got {value}")));
    }
    if value < 0.0 {
        return Err(Invalid::new(field, format!("must be ≥ 0, got {value}")));
    }
    if value > max {
        return Err(Invalid::new(field, format!("must be ≤ {max}, got {value}")));
    }
    Ok(value)
}

/// Every value finite, ≥ 0 and ≤ `max`, and their sum. A bad one's field
/// name (`prefix[i]`) is written only then: this runs on every message.
fn all_finite_non_negative(prefix: &str, values: &[f64], max: f64) -> Result<f64, Invalid> {
    let mut total = 0.0;
    for (i, &value) in values.iter().enumerate() {
        if !(value.is_finite() && (0.0..=max).contains(&value)) {
            return finite_non_negative(&format!("{prefix}[{i}]"), value, max);
        }
        total += value;
    }
    Ok(total)
}

fn id(field: &str, value: u32, count: usize) -> Result<usize, Invalid> {
    let value = value as usize;
    if value >= count {
        return Err(Invalid::new(field, format!("unknown id {value} (the run has {count})")));
    }
    Ok(value)
}

fn length(field: &str, len: usize, expected: usize) -> Result<(), Invalid> {
    if len != expected {
        return Err(Invalid::new(field, format!("must have {expected} entries, got {len}")));
    }
    Ok(())
}

/// A device id, known to a run of `devices` devices.
pub fn device_hello(hello: &pb::DeviceHello, devices: usize) -> Result<usize, Invalid> {
    device_id("hello.device", hello.device, devices)
}

/// A device id in any message (`field` names it), known to a run of
/// `devices` devices.
pub fn device_id(field: &str, device: u32, devices: usize) -> Result<usize, Invalid> {
    id(field, device, devices)
}

/// An agent's `next_slot` (see `DeviceHello`) in a run of `slots` slots:
/// one beyond the run would make a restarted controller skip to its end.
pub fn next_slot(field: &str, value: u64, slots: u64) -> Result<u64, Invalid> {
    if value > slots {
        return Err(Invalid::new(field, format!("must be ≤ {slots} (the run's slots), got {value}")));
    }
    Ok(value)
}

/// What identifies a run to its agents: a digest of its setup without the
/// server endpoints (which a restarted controller learns anew). Never 0,
/// which in a hello means "no run yet". FNV-1a over the encoded message,
/// which prost writes the same way for the same setup.
pub fn run_digest(setup: &pb::RunSetup) -> u64 {
    use prost::Message;
    let bytes = pb::RunSetup { server_endpoints: Vec::new(), ..setup.clone() }.encode_to_vec();
    let digest = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    digest.max(1)
}

/// An agent's `run_digest` in a run whose digest is `run`: 0 (a fresh
/// agent) or the same run.
pub fn hello_run(field: &str, digest: u64, run: u64) -> Result<(), Invalid> {
    if digest != 0 && digest != run {
        return Err(Invalid::new(
            field,
            format!("this agent belongs to another run ({digest:016x}, not {run:016x}): scenario, seed, slots or slot length differ"),
        ));
    }
    Ok(())
}

/// A server id and endpoint, for a run of `servers` servers.
pub fn server_hello(hello: &pb::ServerHello, servers: usize) -> Result<(usize, String), Invalid> {
    let server = id("hello.server", hello.server, servers)?;
    let endpoint = hello.endpoint.trim();
    if endpoint.is_empty() || endpoint.len() > MAX_ENDPOINT_LEN {
        return Err(Invalid::new("hello.endpoint", format!("must be 1..={MAX_ENDPOINT_LEN} characters")));
    }
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(Invalid::new("hello.endpoint", format!("must be an http(s) URI, got `{endpoint}`")));
    }
    // Handed to every device as it is: no line breaks or other control
    // characters that would land in their logs and requests.
    if let Some(at) = endpoint.find(char::is_control) {
        return Err(Invalid::new("hello.endpoint", format!("a control character at byte {at}")));
    }
    Ok((server, endpoint.to_string()))
}

/// A device report for a run with `servers` servers.
pub fn device_report(report: &pb::DeviceReport, servers: usize) -> Result<Report, Invalid> {
    let queue_bits = finite_non_negative("report.queue_bits", report.queue_bits, MAX_QUEUE_BITS)?;
    let virtual_bits = finite_non_negative("report.virtual_bits", report.virtual_bits, MAX_QUEUE_BITS)?;
    length("report.gains", report.gains.len(), servers)?;
    all_finite_non_negative("report.gains", &report.gains, 1e6)?;
    Ok(Report { slot: report.slot, queue_bits, virtual_bits, gains: report.gains.clone() })
}

/// A report's slot, `limit` being the latest one a report may name: a
/// device reports slot t + 1 as soon as it has slot t's decision and a
/// server once it computed slot t, before t + 1 is announced, so one past
/// the last announced slot is as far as a report reaches. A later one would
/// stand as the agent's latest report, fresher than any to come.
pub fn report_slot(slot: u64, limit: u64) -> Result<u64, Invalid> {
    if slot > limit {
        return Err(Invalid::new("report.slot", format!("slot {slot} is not announced yet (a report may name at most {limit})")));
    }
    Ok(slot)
}

/// Whether an error receiving a message is the peer's message over the
/// stream's size limit (tonic answers `OutOfRange` before decoding it): a
/// bad message, answered and counted as any other, not a broken stream.
pub fn over_limit(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::OutOfRange
}

/// A server report for a run with `devices` devices.
pub fn server_report(report: &pb::ServerReport, devices: usize) -> Result<ServerReport, Invalid> {
    if report.backlogs.len() > devices {
        return Err(Invalid::new("report.backlogs", format!("at most {devices} entries, got {}", report.backlogs.len())));
    }
    let mut seen = vec![false; devices];
    let mut backlogs = Vec::with_capacity(report.backlogs.len());
    let mut sum: u64 = 0;
    for (i, entry) in report.backlogs.iter().enumerate() {
        let device = id("", entry.device, devices).map_err(|e| Invalid::new(format!("report.backlogs[{i}].device"), e.reason))?;
        if std::mem::replace(&mut seen[device], true) {
            return Err(Invalid::new(format!("report.backlogs[{i}].device"), format!("device {device} listed twice")));
        }
        sum = sum
            .checked_add(entry.bits)
            .ok_or_else(|| Invalid::new(format!("report.backlogs[{i}].bits"), "total overflows"))?;
        backlogs.push((device, entry.bits));
    }
    if sum != report.total_bits {
        return Err(Invalid::new("report.total_bits", format!("is {} but the backlogs add up to {sum}", report.total_bits)));
    }
    let load = finite_non_negative("report.load", report.load, 1.0 + 1e-9)?;
    Ok(ServerReport { slot: report.slot, backlogs, total_bits: sum, load })
}

/// A decision row for a run with `servers` servers.
pub fn decision(decision: &pb::OffloadDecision, servers: usize) -> Result<Decision, Invalid> {
    length("decision.shares", decision.shares.len(), servers)?;
    length("decision.server_free_bits", decision.server_free_bits.len(), servers)?;
    let total = all_finite_non_negative("decision.shares", &decision.shares, 1.0 + 1e-9)?;
    if total > 1.0 + 1e-9 {
        return Err(Invalid::new("decision.shares", format!("must add up to ≤ 1, got {total}")));
    }
    Ok(Decision {
        slot: decision.slot,
        shares: decision.shares.clone(),
        server_free_bits: decision.server_free_bits.clone(),
        late: decision.late,
    })
}

/// A CPU allocation for a run with `devices` devices and F_s = `cpu_hz`.
pub fn allocation(allocation: &pb::Allocation, devices: usize, cpu_hz: f64) -> Result<Vec<f64>, Invalid> {
    length("allocation.cpu_hz", allocation.cpu_hz.len(), devices)?;
    let total = all_finite_non_negative("allocation.cpu_hz", &allocation.cpu_hz, cpu_hz * (1.0 + 1e-9))?;
    if total > cpu_hz * (1.0 + 1e-9) {
        return Err(Invalid::new("allocation.cpu_hz", format!("adds up to {total} Hz > F_s = {cpu_hz}")));
    }
    Ok(allocation.cpu_hz.clone())
}

/// A fragment from a device.
pub fn fragment(fragment: &pb::FragmentData) -> Result<Fragment, Invalid> {
    if fragment.bits == 0 || fragment.bits > MAX_FRAGMENT_BITS {
        return Err(Invalid::new("fragment.bits", format!("must be in [1, {MAX_FRAGMENT_BITS}], got {}", fragment.bits)));
    }
    if fragment.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(Invalid::new(
            "fragment.payload",
            format!("at most {MAX_PAYLOAD_BYTES} bytes, got {}", fragment.payload.len()),
        ));
    }
    let most = fragment.bits.div_ceil(8);
    if fragment.payload.len() as u64 > most {
        return Err(Invalid::new(
            "fragment.payload",
            format!("{} bytes is more than the {} bits it stands for", fragment.payload.len(), fragment.bits),
        ));
    }
    Ok(Fragment {
        slot: fragment.slot,
        task: fragment.task,
        bits: fragment.bits,
        payload_len: fragment.payload.len(),
        sent_s: finite_non_negative("fragment.sent_s", fragment.sent_s, MAX_MODEL_TIME_S)?,
        uploaded_s: finite_non_negative("fragment.uploaded_s", fragment.uploaded_s, MAX_MODEL_TIME_S)?,
    })
}

/// A result from a server.
pub fn fragment_result(result: &pb::FragmentResult) -> Result<FragmentResult, Invalid> {
    if result.bits == 0 || result.bits > MAX_FRAGMENT_BITS {
        return Err(Invalid::new("result.bits", format!("must be in [1, {MAX_FRAGMENT_BITS}], got {}", result.bits)));
    }
    let times = FragmentTimes {
        offloaded: true,
        sent_s: finite_non_negative("result.sent_s", result.sent_s, MAX_MODEL_TIME_S)?,
        uploaded_s: finite_non_negative("result.uploaded_s", result.uploaded_s, MAX_MODEL_TIME_S)?,
        started_s: finite_non_negative("result.started_s", result.started_s, MAX_MODEL_TIME_S)?,
        computed_s: finite_non_negative("result.computed_s", result.computed_s, MAX_MODEL_TIME_S)?,
        done_s: finite_non_negative("result.done_s", result.done_s, MAX_MODEL_TIME_S)?,
    };
    let wall = |field: &str, us: u64| {
        if us > MAX_WALL_US {
            return Err(Invalid::new(field, format!("must be at most {MAX_WALL_US} µs, got {us}")));
        }
        Ok(Duration::from_micros(us))
    };
    Ok(FragmentResult {
        slot: result.slot,
        task: result.task,
        bits: result.bits,
        times,
        server_wait: wall("result.server_wait_us", result.server_wait_us)?,
        server_hold: wall("result.server_hold_us", result.server_hold_us)?,
    })
}

/// The run's setup as a controller sends it.
pub fn setup(setup: &pb::RunSetup) -> Result<Setup, Invalid> {
    if setup.scenario_toml.len() > MAX_SCENARIO_LEN {
        return Err(Invalid::new("setup.scenario_toml", format!("longer than {MAX_SCENARIO_LEN} bytes")));
    }
    let scenario =
        Scenario::from_toml(&setup.scenario_toml).map_err(|e| Invalid::new("setup.scenario_toml", e.to_string()))?;
    if !(setup.slot_wall_s.is_finite() && setup.slot_wall_s > 0.0 && setup.slot_wall_s <= 3600.0) {
        return Err(Invalid::new("setup.slot_wall_s", format!("must be in (0, 3600], got {}", setup.slot_wall_s)));
    }
    length("setup.server_endpoints", setup.server_endpoints.len(), scenario.servers)?;
    for (s, endpoint) in setup.server_endpoints.iter().enumerate() {
        server_hello(&pb::ServerHello { server: s as u32, endpoint: endpoint.clone(), next_slot: 0, run_digest: 0 }, scenario.servers)
            .map_err(|e| Invalid::new(format!("setup.server_endpoints[{s}]"), e.reason))?;
    }
    Ok(Setup {
        scenario,
        seed: setup.seed,
        slots: setup.slots,
        slot_wall_s: setup.slot_wall_s,
        server_endpoints: setup.server_endpoints.clone(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_run_digest_names_the_run_not_its_endpoints() {
        let setup = pb::RunSetup { scenario_toml: "x".into(), seed: 1, slots: 10, slot_wall_s: 0.02, server_endpoints: vec!["http://a:1".into()] };
        let moved = pb::RunSetup { server_endpoints: vec!["http://b:2".into()], ..setup.clone() };
        assert_eq!(run_digest(&setup), run_digest(&moved));
        let reseeded = pb::RunSetup { seed: 2, ..setup.clone() };
        assert_ne!(run_digest(&setup), run_digest(&reseeded));
        assert_ne!(run_digest(&pb::RunSetup::default()), 0);
        let run = run_digest(&setup);
        assert!(hello_run("hello.run_digest", 0, run).is_ok() && hello_run("hello.run_digest", run, run).is_ok());
        assert_eq!(hello_run("hello.run_digest", run_digest(&reseeded), run).unwrap_err().field, "hello.run_digest");
    }

    #[test]
    fn report_with_nan_names_the_field() {
        let report = pb::DeviceReport { slot: 3, queue_bits: f64::NAN, gains: vec![1e-6, 1e-6], ..Default::default() };
        let err = device_report(&report, 2).unwrap_err();
        assert_eq!(err.field, "report.queue_bits");
        let status = err.to_status();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("queue_bits"), "{}", status.message());
    }

    #[test]
    fn report_with_wrong_gain_count_or_negative_gain_is_refused() {
        let short = pb::DeviceReport { gains: vec![1e-6], ..Default::default() };
        assert_eq!(device_report(&short, 2).unwrap_err().field, "report.gains");
        let negative = pb::DeviceReport { gains: vec![1e-6, -1.0], ..Default::default() };
        assert_eq!(device_report(&negative, 2).unwrap_err().field, "report.gains[1]");
        let good = pb::DeviceReport { slot: 4, queue_bits: 5.0, virtual_bits: 1.0, gains: vec![1e-6, 2e-6], ..Default::default() };
        let ok = device_report(&good, 2).unwrap();
        assert_eq!((ok.slot, ok.queue_bits, ok.gains.len()), (4, 5.0, 2));
    }

    #[test]
    fn unknown_ids_are_refused() {
        assert!(device_hello(&pb::DeviceHello { device: 3, next_slot: 0, run_digest: 0 }, 3).is_err());
        assert_eq!(device_hello(&pb::DeviceHello { device: 2, next_slot: 0, run_digest: 0 }, 3).unwrap(), 2);
        let hello = pb::ServerHello { server: 0, endpoint: "127.0.0.1:5".into(), next_slot: 0, run_digest: 0 };
        assert_eq!(server_hello(&hello, 1).unwrap_err().field, "hello.endpoint");
        let hello = pb::ServerHello { endpoint: "http://a:1/\r\nX-Injected: 1".into(), ..hello };
        let invalid = server_hello(&hello, 1).unwrap_err();
        assert_eq!((invalid.field.as_str(), invalid.reason.as_str()), ("hello.endpoint", "a control character at byte 11"));
    }

    #[test]
    fn server_report_totals_and_duplicates_are_checked() {
        let entry = |device, bits| pb::DeviceBacklog { device, bits };
        let good = pb::ServerReport { slot: 1, backlogs: vec![entry(0, 5), entry(2, 7)], total_bits: 12, load: 0.5 };
        assert_eq!(server_report(&good, 3).unwrap().backlogs, vec![(0, 5), (2, 7)]);
        let wrong_total = pb::ServerReport { total_bits: 11, ..good.clone() };
        assert_eq!(server_report(&wrong_total, 3).unwrap_err().field, "report.total_bits");
        let twice = pb::ServerReport { backlogs: vec![entry(1, 5), entry(1, 7)], ..good.clone() };
        assert_eq!(server_report(&twice, 3).unwrap_err().field, "report.backlogs[1].device");
        let load = pb::ServerReport { load: f64::INFINITY, ..good };
        assert_eq!(server_report(&load, 3).unwrap_err().field, "report.load");
    }

    #[test]
    fn decisions_and_allocations_respect_the_constraints() {
        let over = pb::OffloadDecision { slot: 0, shares: vec![0.7, 0.7], server_free_bits: vec![1, 1], late: false };
        assert_eq!(decision(&over, 2).unwrap_err().field, "decision.shares");
        let fine = pb::OffloadDecision { shares: vec![0.5, 0.5], ..over };
        assert!(decision(&fine, 2).is_ok());
        let alloc = pb::Allocation { slot: 0, cpu_hz: vec![6.0, 6.0] };
        assert_eq!(allocation(&alloc, 2, 10.0).unwrap_err().field, "allocation.cpu_hz");
        assert!(allocation(&alloc, 2, 12.0).is_ok());
    }

    #[test]
    fn fragments_need_sane_sizes() {
        let zero = pb::FragmentData { bits: 0, ..Default::default() };
        assert_eq!(fragment(&zero).unwrap_err().field, "fragment.bits");
        let fat = pb::FragmentData { bits: 8, payload: vec![0; 2], ..Default::default() };
        assert_eq!(fragment(&fat).unwrap_err().field, "fragment.payload");
        let fine = pb::FragmentData { slot: 2, task: 9, bits: 80, payload: vec![0; 10], ..Default::default() };
        assert_eq!(fragment(&fine).unwrap().payload_len, 10);
        let unsent = pb::FragmentData { uploaded_s: f64::NAN, ..fine };
        assert_eq!(fragment(&unsent).unwrap_err().field, "fragment.uploaded_s");
        let result = pb::FragmentResult { slot: 1, task: 1, bits: 4, done_s: -1.0, ..Default::default() };
        assert_eq!(fragment_result(&result).unwrap_err().field, "result.done_s");
        let result = pb::FragmentResult { done_s: 1.0, started_s: f64::INFINITY, ..result };
        assert_eq!(fragment_result(&result).unwrap_err().field, "result.started_s");
    }

    #[test]
    fn setup_round_trips_the_scenario() {
        let scenario = Scenario::builtin("paper-small").unwrap();
        let wire = pb::RunSetup {
            scenario_toml: scenario.to_toml(),
            seed: 7,
            slots: 10,
            slot_wall_s: 0.01,
            server_endpoints: vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
        };
        assert_eq!(setup(&wire).unwrap().scenario, scenario);
        let missing = pb::RunSetup { server_endpoints: vec![], ..wire };
        assert_eq!(setup(&missing).unwrap_err().field, "setup.server_endpoints");
    }
}
