//! `tasks.csv` rows formatted straight into bytes. A run completes tens of
//! tasks per slot, and formatting their rows through serde and the csv
//! crate cost twice the slot's simulation; written without its per-field
//! machinery they come out the same bytes for a fraction of the work. Every
//! field is a number, so none needs quoting.
//!
//! Eight of a row's thirteen fields are floats, and their shortest
//! round-trip text is most of the cost: zmij finds the same digits as the
//! ryu the csv crate uses (its own benchmarks: in less time; in this
//! writer the difference was within the noise of a loaded machine), and a
//! column whose value repeats the previous row's (a constant result delay,
//! a stage the task skipped) reuses its text.

use qmec_model::task::TaskRecord;

/// The header row, as the csv crate writes it from [`TaskRecord`]'s fields.
pub const HEADER: &str = "device,task,bits,offloaded_bits,fragments,arrival_s,completion_s,\
queue_s,upload_s,server_wait_s,server_compute_s,return_s,local_compute_s\n";

/// The float columns: arrival, completion and the six stages.
const FLOAT_COLUMNS: usize = 8;

/// The longest text of an `f64` (`-2.2250738585072014e-308`).
const FLOAT_TEXT_BYTES: usize = 24;

/// The longest row: five integers of up to 20 digits, eight floats, and a
/// separator after each field.
const ROW_BYTES: usize = 5 * (20 + 1) + FLOAT_COLUMNS * (FLOAT_TEXT_BYTES + 1);

/// Turns tasks into rows, remembering each float column's last text.
#[derive(Debug)]
pub struct RowFormatter {
    last: [FloatText; FLOAT_COLUMNS],
}

impl Default for RowFormatter {
    fn default() -> RowFormatter {
        RowFormatter { last: [FloatText::of(0.0); FLOAT_COLUMNS] }
    }
}

impl RowFormatter {
    /// Appends `task`'s row, newline included, to `out`.
    ///
    /// The row is put together in a fixed array, each float's text copied
    /// whole from its fixed-size buffer: copies whose size the compiler
    /// knows are a few moves, where a copy of a field's own length is a
    /// call to `memcpy`, and thirteen such calls a row cost as much as the
    /// floats' digits.
    pub fn push_row(&mut self, out: &mut Vec<u8>, task: &TaskRecord) {
        let mut row = Row { bytes: [0; ROW_BYTES + FLOAT_TEXT_BYTES], len: 0 };
        for value in [task.device as u64, task.task, task.bits, task.offloaded_bits, u64::from(task.fragments)] {
            row.integer(value);
            row.byte(b',');
        }
        let [queue, upload, server_wait, server_compute, result, local] = task.stage_seconds();
        let floats = [task.arrival_s, task.completion_s, queue, upload, server_wait, server_compute, result, local];
        for (last, value) in self.last.iter_mut().zip(floats) {
            if value.to_bits() != last.bits {
                *last = FloatText::of(value);
            }
            row.float(last);
            row.byte(b',');
        }
        // The last float's comma becomes the newline.
        row.len -= 1;
        row.byte(b'\n');
        out.extend_from_slice(&row.bytes[..row.len]);
    }
}

/// A row being put together; `FLOAT_TEXT_BYTES` of slack past the longest
/// row let a float's whole buffer be copied at any field's start.
struct Row {
    bytes: [u8; ROW_BYTES + FLOAT_TEXT_BYTES],
    len: usize,
}

impl Row {
    fn byte(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    /// The decimal digits of `value`, as itoa (and so the csv crate)
    /// writes them.
    fn integer(&mut self, mut value: u64) {
        let digits = value.checked_ilog10().unwrap_or(0) as usize + 1;
        for slot in self.bytes[self.len..self.len + digits].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += digits;
    }

    fn float(&mut self, float: &FloatText) {
        self.bytes[self.len..self.len + FLOAT_TEXT_BYTES].copy_from_slice(&float.bytes);
        self.len += float.len;
    }
}

/// Copies `text` (of SIZE to 2 SIZE bytes) into `into` (as long) as its
/// first and its last SIZE bytes.
fn copy_ends<const SIZE: usize>(into: &mut [u8], text: &[u8]) {
    let n = text.len();
    into[..SIZE].copy_from_slice(&text[..SIZE]);
    into[n - SIZE..n].copy_from_slice(&text[n - SIZE..n]);
}

/// A float and its text as the csv crate writes it, in a fixed buffer.
#[derive(Debug, Clone, Copy)]
struct FloatText {
    bits: u64,
    len: usize,
    bytes: [u8; FLOAT_TEXT_BYTES],
}

impl FloatText {
    fn of(value: f64) -> FloatText {
        let mut buffer = zmij::Buffer::new();
        let text = buffer.format(value);
        let mut float = FloatText { bits: value.to_bits(), len: 0, bytes: [0; FLOAT_TEXT_BYTES] };
        // zmij writes a positive exponent as `1e+21`, ryu as `1e21`; the
        // rest is the same text. Below 1e15 the text has no exponent or a
        // negative one.
        let positive_exponent = if value.abs() < 1e15 { None } else { text.split_once("e+") };
        match positive_exponent {
            Some((mantissa, exponent)) => {
                float.push(mantissa.as_bytes());
                float.push(b"e");
                float.push(exponent.as_bytes());
            }
            None => float.push(text.as_bytes()),
        }
        float
    }

    /// Appends `text` (that fits) in copies of fixed sizes, overlapping
    /// where its length is not one of them (see [`RowFormatter::push_row`]).
    fn push(&mut self, text: &[u8]) {
        let into = &mut self.bytes[self.len..self.len + text.len()];
        match text.len() {
            16.. => copy_ends::<16>(into, text),
            8.. => copy_ends::<8>(into, text),
            4.. => copy_ends::<4>(into, text),
            2.. => copy_ends::<2>(into, text),
            1 => copy_ends::<1>(into, text),
            0 => {}
        }
        self.len += text.len();
    }

    #[cfg(test)]
    fn text(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(device: usize, arrival_s: f64, completion_s: f64) -> TaskRecord {
        TaskRecord {
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
        }
    }

    fn csv_crate_bytes(tasks: &[TaskRecord]) -> String {
        let mut expected = csv::Writer::from_writer(Vec::new());
        for row in tasks {
            expected.serialize(row).expect("serializes");
        }
        String::from_utf8(expected.into_inner().expect("flushes")).expect("utf-8")
    }

    fn our_bytes(tasks: &[TaskRecord]) -> String {
        let mut ours = HEADER.as_bytes().to_vec();
        let mut formatter = RowFormatter::default();
        for row in tasks {
            formatter.push_row(&mut ours, row);
        }
        String::from_utf8(ours).expect("utf-8")
    }

    #[test]
    fn rows_are_the_bytes_the_csv_crate_writes() {
        let tasks = [
            task(0, 0.0, 0.1),
            task(0, 0.0, 0.1),
            task(usize::MAX, 12.345_678_901_234_5, 1e21),
            task(7, -0.0, 5e-324),
            task(3, f64::NAN, f64::INFINITY),
            task(4, f64::NEG_INFINITY, 1.0 / 3.0),
            task(5, f64::MAX, -f64::MAX),
            task(6, 1e15, 9_999_999_999_999_998.0),
            task(6, 1e16, -1.5e300),
            task(8, 1e-5, 9.999_999_999_999_999e-6),
            task(8, 123_456_789_012_345.67, -2.225_073_858_507_201_4e-308),
        ];
        assert_eq!(our_bytes(&tasks), csv_crate_bytes(&tasks));
    }

    #[test]
    fn floats_of_every_magnitude_are_ryus_text() {
        // A fixed xorshift stream: every bit pattern is a float (NaNs,
        // infinities, subnormals, every exponent), and the seconds a run
        // writes.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut ryu = ryu::Buffer::new();
        for _ in 0..200_000 {
            let bits = next();
            let seconds = (bits >> 11) as f64 / (1u64 << 53) as f64 * 10f64.powi((bits % 9) as i32 - 4);
            for value in [f64::from_bits(bits), seconds] {
                let ours = FloatText::of(value);
                assert_eq!(ours.text(), ryu.format(value).as_bytes(), "{value:e}");
            }
        }
    }
}
