//! Every role's metrics page passes `promtool check metrics`, Prometheus'
//! own linter (names, suffixes, units), so that what a scrape collects
//! follows the conventions dashboards and alerts assume. Each page is
//! rendered from its role's metrics with figures in every family.
//!
//! promtool comes from Debian's `prometheus` package (`test.sh` installs it
//! when missing). Under `CI=true` a missing promtool fails the test;
//! elsewhere the test says why it did nothing.

use qmec_controller::{ControllerMetrics, ControllerSlot};
use qmec_device_agent::{DeviceFigures, DeviceMetrics};
use qmec_model::task::DropReason;
use qmec_proto::metrics::Page;
use qmec_server_agent::{ServerFigures, ServerMetrics};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

fn controller_page() -> String {
    let metrics = ControllerMetrics::default();
    metrics.connected(3, 2);
    metrics.slot(&ControllerSlot { slot: 0, decision_s: 0.002, slot_loop_s: 0.01, late_devices: 1, policy_failed: true, ..Default::default() });
    metrics.invalid();
    metrics.dropped();
    metrics.render()
}

fn server_page() -> String {
    let metrics = ServerMetrics::new(Arc::new(AtomicU64::new(2)), Arc::new(AtomicU64::new(4096)));
    let mut figures = ServerFigures { backlog_bits: 500, slots: 3, forced_slots: 1, ..Default::default() };
    figures.counters.received_bits = 1700;
    figures.counters.computed_bits = 1200;
    figures.counters.fragments_done = 4;
    metrics.update(figures);
    metrics.render()
}

fn device_page() -> String {
    let metrics = DeviceMetrics::default();
    for device in [0, 5] {
        let mut figures = DeviceFigures { queue_bits: 900, slots: 10, undecided_slots: 1, requeued_fragments: 1, ..Default::default() };
        figures.counters.local_bits = 300;
        figures.counters.offloaded_bits = 77;
        figures.counters.dropped.insert(DropReason::DeviceQueueFull, 2);
        metrics.update(device, figures);
    }
    metrics.render()
}

/// promtool's complaints about `page` (empty when it passes), or None
/// when there is no promtool to ask.
fn promtool_findings(page: &str) -> Option<String> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => panic!("starting promtool: {error}"),
    };
    child.stdin.take().expect("promtool's stdin").write_all(page.as_bytes()).expect("writing to promtool");
    let output = child.wait_with_output().expect("waiting for promtool");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    Some(if output.status.success() && said.trim().is_empty() { String::new() } else { format!("{}: {said}", output.status) })
}

#[test]
fn every_roles_metrics_page_passes_promtool() {
    for (role, page) in [("controller", controller_page()), ("server", server_page()), ("device", device_page())] {
        let Some(findings) = promtool_findings(&page) else {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "promtool is missing (Debian's `prometheus` package; test.sh installs it)"
            );
            eprintln!("skipped: no promtool on PATH (apt-get install prometheus)");
            return;
        };
        assert!(findings.is_empty(), "promtool check metrics on the {role} page: {findings}\n{page}");
    }
}
