//! Structured inputs (`arbitrary`) that sit near the edges validation draws:
//! small ids around the run's size, totals that may or may not add up,
//! shares around 1, special floats. Each message is checked against an
//! independent statement of the rule (accept exactly when it holds), so a
//! check that is too loose or too strict shows up, not only a panic.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use qmec_proto::pb;
use qmec_proto::validate::{self, MAX_FRAGMENT_BITS, MAX_PAYLOAD_BYTES, MAX_QUEUE_BITS};

/// A float drawn mostly from the interesting values.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Float {
    Zero,
    NegZero,
    Half,
    One,
    JustOverOne,
    Neg,
    Nan,
    Inf,
    NegInf,
    Huge,
    Any(f64),
}

impl Float {
    fn get(self) -> f64 {
        match self {
            Float::Zero => 0.0,
            Float::NegZero => -0.0,
            Float::Half => 0.5,
            Float::One => 1.0,
            Float::JustOverOne => 1.0 + 1e-6,
            Float::Neg => -1e-3,
            Float::Nan => f64::NAN,
            Float::Inf => f64::INFINITY,
            Float::NegInf => f64::NEG_INFINITY,
            Float::Huge => 1e300,
            Float::Any(x) => x,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Input {
    Report { servers: u8, queue: Float, virtual_bits: Float, gains: Vec<Float> },
    ServerReport { devices: u8, backlogs: Vec<(u8, u64)>, total_delta: i8, load: Float },
    Decision { servers: u8, shares: Vec<Float>, free: Vec<u64> },
    Allocation { devices: u8, cpu_hz: Vec<Float> },
    Fragment { bits: u64, small_bits: u16, payload: u16 },
    Hello { device: u8, devices: u8 },
}

fn non_negative(x: f64, max: f64) -> bool {
    x.is_finite() && x >= 0.0 && x <= max
}

fuzz_target!(|input: Input| match input {
    Input::Report { servers, queue, virtual_bits, gains } => {
        let servers = usize::from(servers % 8);
        let gains: Vec<f64> = gains.into_iter().take(10).map(Float::get).collect();
        let report = pb::DeviceReport {
            slot: 1,
            queue_bits: queue.get(),
            virtual_bits: virtual_bits.get(),
            gains: gains.clone(),
            ..Default::default()
        };
        let expected = non_negative(queue.get(), MAX_QUEUE_BITS)
            && non_negative(virtual_bits.get(), MAX_QUEUE_BITS)
            && gains.len() == servers
            && gains.iter().all(|g| non_negative(*g, 1e6));
        assert_eq!(validate::device_report(&report, servers).is_ok(), expected, "{report:?}");
    }
    Input::ServerReport { devices, backlogs, total_delta, load } => {
        let devices = usize::from(devices % 8);
        let backlogs: Vec<pb::DeviceBacklog> = backlogs
            .into_iter()
            .take(10)
            .map(|(device, bits)| pb::DeviceBacklog { device: u32::from(device % 10), bits })
            .collect();
        let sum = backlogs.iter().try_fold(0u64, |acc, b| acc.checked_add(b.bits));
        let total = sum.unwrap_or(0).wrapping_add_signed(i64::from(total_delta % 2));
        let report = pb::ServerReport { slot: 2, backlogs: backlogs.clone(), total_bits: total, load: load.get() };
        let mut ids: Vec<u32> = backlogs.iter().map(|b| b.device).collect();
        ids.sort_unstable();
        let distinct = ids.windows(2).all(|w| w[0] != w[1]);
        let expected = backlogs.len() <= devices
            && backlogs.iter().all(|b| (b.device as usize) < devices)
            && distinct
            && sum == Some(total)
            && non_negative(load.get(), 1.0 + 1e-9);
        assert_eq!(validate::server_report(&report, devices).is_ok(), expected, "{report:?}");
    }
    Input::Decision { servers, shares, free } => {
        let servers = usize::from(servers % 8);
        let shares: Vec<f64> = shares.into_iter().take(10).map(Float::get).collect();
        let free: Vec<u64> = free.into_iter().take(10).collect();
        let decision = pb::OffloadDecision { slot: 3, shares: shares.clone(), server_free_bits: free.clone(), late: false };
        let expected = shares.len() == servers
            && free.len() == servers
            && shares.iter().all(|mu| non_negative(*mu, 1.0 + 1e-9))
            && shares.iter().sum::<f64>() <= 1.0 + 1e-9;
        assert_eq!(validate::decision(&decision, servers).is_ok(), expected, "{decision:?}");
    }
    Input::Allocation { devices, cpu_hz } => {
        const F: f64 = 10.0;
        let devices = usize::from(devices % 8);
        let cpu_hz: Vec<f64> = cpu_hz.into_iter().take(10).map(|f| f.get() * F).collect();
        let allocation = pb::Allocation { slot: 4, cpu_hz: cpu_hz.clone() };
        let cap = F * (1.0 + 1e-9);
        let expected = cpu_hz.len() == devices && cpu_hz.iter().all(|f| non_negative(*f, cap)) && cpu_hz.iter().sum::<f64>() <= cap;
        assert_eq!(validate::allocation(&allocation, devices, F).is_ok(), expected, "{allocation:?}");
    }
    Input::Fragment { bits, small_bits, payload } => {
        // Half the time a small size, so the payload bound is reachable.
        let bits = if bits % 2 == 0 { u64::from(small_bits) } else { bits };
        let fragment = pb::FragmentData { slot: 5, task: 6, bits, payload: vec![0xA5; usize::from(payload)], ..Default::default() };
        let expected = (1..=MAX_FRAGMENT_BITS).contains(&bits)
            && usize::from(payload) <= MAX_PAYLOAD_BYTES
            && u64::from(payload) <= bits.div_ceil(8);
        assert_eq!(validate::fragment(&fragment).is_ok(), expected, "bits {bits}, payload {payload}");
    }
    Input::Hello { device, devices } => {
        let (device, devices) = (u32::from(device), usize::from(devices));
        let ok = validate::device_hello(&pb::DeviceHello { device, next_slot: 0, run_digest: 0 }, devices);
        assert_eq!(ok.is_ok(), (device as usize) < devices);
    }
});
