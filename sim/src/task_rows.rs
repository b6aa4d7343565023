//! `tasks.csv` rows formatted straight into bytes. A run completes tens of
//! tasks per slot, and formatting their rows through serde and the csv
//! crate cost twice the slot's simulation; written without its per-field
//! machinery they take a fraction of the work. Every field is a number, so
//! none needs quoting.
//!
//! Eight of a row's thirteen fields are seconds, written to the nanosecond
//! (`0.065813`, not the float's shortest round-trip text
//! `0.06581299999999998`): the model's times mean nothing below that, the
//! text is shorter to read and to write, and digits of a whole number of
//! nanoseconds cost a fraction of a float's shortest text, which was most
//! of a row's cost. Values that are not finite, or beyond about 104 days,
//! keep their shortest text. A column whose value repeats the previous
//! row's (a constant result delay, a stage the task skipped) reuses its
//! text.

use crate::summary::round_non_negative;
use qmec_model::task::TaskRecord;

/// The header row: [`TaskRecord`]'s fields, as the csv crate names them.
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

    fn integer(&mut self, value: u64) {
        self.len += write_decimal(&mut self.bytes[self.len..], value);
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

/// Writes the decimal digits of `value` (as itoa, and so the csv crate,
/// writes them) at the start of `into`; their count.
fn write_decimal(into: &mut [u8], mut value: u64) -> usize {
    let digits = value.checked_ilog10().unwrap_or(0) as usize + 1;
    for slot in into[..digits].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    digits
}

/// A float and its text, in a fixed buffer.
#[derive(Debug, Clone, Copy)]
struct FloatText {
    bits: u64,
    len: usize,
    bytes: [u8; FLOAT_TEXT_BYTES],
}

/// Seconds from which a value is written in full rather than to the
/// nanosecond: below, its nanoseconds stay under 2⁵³, where a float holds
/// every whole number.
const NANOSECOND_TEXT_BELOW_S: f64 = 9e6;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

impl FloatText {
    fn of(value: f64) -> FloatText {
        let mut float = FloatText { bits: value.to_bits(), len: 0, bytes: [0; FLOAT_TEXT_BYTES] };
        if value.abs() < NANOSECOND_TEXT_BELOW_S {
            float.nanoseconds(value);
        } else {
            float.shortest(value);
        }
        float
    }

    /// `value` rounded to the nanosecond, without trailing zeros: `0.0`,
    /// `-0.25`, `12.000000001`.
    fn nanoseconds(&mut self, value: f64) {
        let nanos = round_non_negative(value.abs() * NANOS_PER_SECOND as f64);
        if value < 0.0 && nanos > 0 {
            self.push(b"-");
        }
        let (whole, mut fraction) = (nanos / NANOS_PER_SECOND, nanos % NANOS_PER_SECOND);
        self.len += write_decimal(&mut self.bytes[self.len..], whole);
        self.push(b".");
        if fraction == 0 {
            self.push(b"0");
            return;
        }
        let mut places = 9;
        while fraction % 10 == 0 {
            fraction /= 10;
            places -= 1;
        }
        // Leading zeros of the fraction, then its digits.
        let into = &mut self.bytes[self.len..self.len + places];
        into.fill(b'0');
        let digits = fraction.ilog10() as usize + 1;
        write_decimal(&mut into[places - digits..], fraction);
        self.len += places;
    }

    /// The shortest text that reads back as `value`, as ryu (and the csv
    /// crate) writes it.
    fn shortest(&mut self, value: f64) {
        let mut buffer = zmij::Buffer::new();
        let text = buffer.format(value);
        // zmij writes a positive exponent as `1e+21`, ryu as `1e21`.
        match text.split_once("e+") {
            Some((mantissa, exponent)) => {
                self.push(mantissa.as_bytes());
                self.push(b"e");
                self.push(exponent.as_bytes());
            }
            None => self.push(text.as_bytes()),
        }
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

    fn our_bytes(tasks: &[TaskRecord]) -> String {
        let mut ours = HEADER.as_bytes().to_vec();
        let mut formatter = RowFormatter::default();
        for row in tasks {
            formatter.push_row(&mut ours, row);
        }
        String::from_utf8(ours).expect("utf-8")
    }

    fn written(value: f64) -> String {
        String::from_utf8(FloatText::of(value).text().to_vec()).expect("utf-8")
    }

    #[test]
    fn seconds_are_written_to_the_nanosecond_without_trailing_zeros() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "0.0"),
            (5e-324, "0.0"),
            (-4e-10, "0.0"),
            (1e-9, "0.000000001"),
            (0.1, "0.1"),
            (0.06581299999999998, "0.065813"),
            (0.03776811120520941, "0.037768111"),
            (-0.25, "-0.25"),
            (5.0, "5.0"),
            (12.345_678_901_234_5, "12.345678901"),
            (0.999_999_999_6, "1.0"),
            (8_999_999.5, "8999999.5"),
            (-8_999_999.5, "-8999999.5"),
        ];
        for (value, expected) in cases {
            assert_eq!(written(value), expected, "{value:e}");
        }
    }

    #[test]
    fn values_beyond_the_nanosecond_range_keep_their_shortest_text() {
        let mut ryu = ryu::Buffer::new();
        for value in [9e6, -9e6, 1e15, 1e21, -1.5e300, f64::MAX, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(written(value), ryu.format(value), "{value:e}");
        }
    }

    #[test]
    fn every_text_reads_back_within_half_a_nanosecond() {
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
        for _ in 0..200_000 {
            let bits = next();
            let seconds = (bits >> 11) as f64 / (1u64 << 53) as f64 * 10f64.powi((bits % 11) as i32 - 4);
            for value in [f64::from_bits(bits), seconds, -seconds] {
                let text = written(value);
                let read: f64 = text.parse().expect("a number");
                if value.abs() < NANOSECOND_TEXT_BELOW_S {
                    // Half a nanosecond, and the rounding of value × 1e9.
                    let bound = 0.5e-9 + value.abs() * 4.0 * f64::EPSILON;
                    assert!((read - value).abs() <= bound, "{value:e} written {text}");
                    let fraction = text.split_once('.').expect("a point").1;
                    assert!(fraction.len() <= 9 && (fraction == "0" || !fraction.ends_with('0')), "{text}");
                } else {
                    assert!(read.to_bits() == value.to_bits() || value.is_nan() && read.is_nan(), "{value:e} written {text}");
                }
            }
        }
    }

    #[test]
    fn rows_read_back_as_the_tasks_they_came_from() {
        let tasks = [
            task(0, 0.0, 0.1),
            task(0, 0.0, 0.1),
            task(usize::MAX, 12.345_678_901_234_5, 1e21),
            task(7, -0.0, 5e-324),
            task(4, 1e-5, 1.0 / 3.0),
            task(8, 123_456.789, -2.225_073_858_507_201_4e-308),
        ];
        let text = our_bytes(&tasks);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let read: Vec<TaskRecord> = reader.deserialize().collect::<Result<_, _>>().expect("rows read back");
        assert_eq!(read.len(), tasks.len());
        for (back, task) in read.iter().zip(&tasks) {
            assert_eq!((back.device, back.task, back.bits, back.offloaded_bits, back.fragments),
                (task.device, task.task, task.bits, task.offloaded_bits, task.fragments));
            let seconds = |t: &TaskRecord| {
                let [a, b, c, d, e, f] = t.stage_seconds();
                [t.arrival_s, t.completion_s, a, b, c, d, e, f]
            };
            for (read, written) in seconds(back).into_iter().zip(seconds(task)) {
                let bound = if written.abs() < NANOSECOND_TEXT_BELOW_S { 0.5e-9 + written.abs() * 4.0 * f64::EPSILON } else { 0.0 };
                assert!((read - written).abs() <= bound, "{written:e} read back as {read:e}");
            }
        }
    }
}
