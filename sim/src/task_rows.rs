//! `tasks.csv` rows formatted straight into bytes. A run completes tens of
//! tasks per slot, and formatting their rows through serde and the csv
//! crate cost twice the slot's simulation; the same itoa and ryu formatting
//! the csv crate uses, written without its per-field machinery, gives the
//! same bytes for a fraction of the work. Every field is a number, so none
//! needs quoting.

use qmec_model::task::TaskRecord;

/// The header row, as the csv crate writes it from [`TaskRecord`]'s fields.
pub const HEADER: &str = "device,task,bits,offloaded_bits,fragments,arrival_s,completion_s,\
queue_s,upload_s,server_wait_s,server_compute_s,return_s,local_compute_s\n";

/// Appends `task`'s row, newline included, to `out`.
pub fn push_row(out: &mut Vec<u8>, task: &TaskRecord) {
    let mut integer = itoa::Buffer::new();
    let mut float = ryu::Buffer::new();
    for value in [task.device as u64, task.task, task.bits, task.offloaded_bits, u64::from(task.fragments)] {
        out.extend_from_slice(integer.format(value).as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(float.format(task.arrival_s).as_bytes());
    out.push(b',');
    out.extend_from_slice(float.format(task.completion_s).as_bytes());
    for stage in task.stage_seconds() {
        out.push(b',');
        out.extend_from_slice(float.format(stage).as_bytes());
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_the_bytes_the_csv_crate_writes() {
        let task = |device, arrival_s: f64, completion_s: f64| TaskRecord {
            device,
            task: u64::MAX,
            bits: 150_000,
            offloaded_bits: 0,
            fragments: u32::MAX,
            arrival_s,
            completion_s,
            queue_s: completion_s / 7.0,
            upload_s: 0.0,
            server_wait_s: -arrival_s,
            server_compute_s: 1e-9,
            return_s: 0.01,
            local_compute_s: arrival_s * 3.0,
        };
        let tasks = [
            task(0, 0.0, 0.1),
            task(usize::MAX, 12.345_678_901_234_5, 1e21),
            task(7, -0.0, 5e-324),
            task(3, f64::NAN, f64::INFINITY),
            task(4, f64::NEG_INFINITY, 1.0 / 3.0),
        ];
        let mut expected = csv::Writer::from_writer(Vec::new());
        for row in &tasks {
            expected.serialize(row).expect("serializes");
        }
        let expected = expected.into_inner().expect("flushes");
        let mut ours = HEADER.as_bytes().to_vec();
        for row in &tasks {
            push_row(&mut ours, row);
        }
        assert_eq!(String::from_utf8(ours).expect("utf-8"), String::from_utf8(expected).expect("utf-8"));
    }
}
