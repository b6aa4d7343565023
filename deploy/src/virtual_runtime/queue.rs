//! The virtual clock: what happens next is the earliest entry of one queue,
//! and entries due at the same instant come out in the order they went in,
//! so a run is a pure function of its inputs.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Entries by due time, first in first out among equals. Many entries fall
/// due at the same instant (every end-of-slot marker of a slot, on links
/// without delay), so entries wait in one first-in-first-out line per
/// instant: the search is over the few distinct instants, not the many
/// entries. The earliest line is kept out of the map, since most entries
/// are pushed for the instant being run (a message on a link without
/// delay) and all are popped from it; emptied lines are kept for reuse, so
/// an instant costs no allocation.
///
/// The entries themselves wait in one slab and the lines hold their
/// places: an entry (a message, some 150 bytes) is moved in once and out
/// once, and a reused line keeps only the capacity of places (8 bytes
/// each) that its busiest instant needed, not of entries: with the entries
/// in the lines, every spare line came to keep room for a slot start's
/// thousands of messages, and the queue grew to tens of megabytes.
#[derive(Debug)]
pub struct Queue<T> {
    /// The earliest instant's line; earlier than every key of `lines`
    /// (it may have run empty: then the next pop moves on).
    front: Option<(Duration, VecDeque<usize>)>,
    lines: BTreeMap<Duration, VecDeque<usize>>,
    spare: Vec<VecDeque<usize>>,
    entries: Slab<T>,
}

impl<T> Default for Queue<T> {
    fn default() -> Queue<T> {
        Queue { front: None, lines: BTreeMap::new(), spare: Vec::new(), entries: Slab::default() }
    }
}

impl<T> Queue<T> {
    pub fn push(&mut self, at: Duration, item: T) {
        let item = self.entries.insert(item);
        match &mut self.front {
            Some((front, line)) if *front == at => line.push_back(item),
            Some((front, _)) if *front < at => {
                let spare = &mut self.spare;
                self.lines.entry(at).or_insert_with(|| spare.pop().unwrap_or_default()).push_back(item);
            }
            front => {
                let mut line = self.spare.pop().unwrap_or_default();
                line.push_back(item);
                if let Some((earlier, old)) = front.replace((at, line)) {
                    if old.is_empty() {
                        self.spare.push(old);
                    } else {
                        self.lines.insert(earlier, old);
                    }
                }
            }
        }
    }

    /// The earliest entry and its due time.
    pub fn pop(&mut self) -> Option<(Duration, T)> {
        loop {
            let (at, line) = self.front.as_mut()?;
            if let Some(place) = line.pop_front() {
                return Some((*at, self.entries.remove(place)));
            }
            let next = self.lines.pop_first();
            if let Some((_, emptied)) = std::mem::replace(&mut self.front, next) {
                self.spare.push(emptied);
            }
        }
    }
}

/// Entries by place; a freed place is taken again first (its memory is
/// the likeliest in cache).
#[derive(Debug)]
struct Slab<T> {
    places: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Default for Slab<T> {
    fn default() -> Slab<T> {
        Slab { places: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slab<T> {
    fn insert(&mut self, item: T) -> usize {
        match self.free.pop() {
            Some(place) => {
                self.places[place] = Some(item);
                place
            }
            None => {
                self.places.push(Some(item));
                self.places.len() - 1
            }
        }
    }

    /// The entry at `place`, which [`Slab::insert`] returned and no
    /// remove has taken since.
    fn remove(&mut self, place: usize) -> T {
        self.free.push(place);
        self.places[place].take().expect("a queued place holds its entry")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_ties_in_arrival_order() {
        let mut queue = Queue::default();
        let ms = Duration::from_millis;
        queue.push(ms(5), "b");
        queue.push(ms(1), "a");
        queue.push(ms(5), "c");
        let order: Vec<&str> = std::iter::from_fn(|| queue.pop().map(|(_, item)| item)).collect();
        assert_eq!(order, ["a", "b", "c"]);
    }

    /// Pushes while popping, at the instant being run, before it and after
    /// it, against a plain sort by (time, arrival).
    #[test]
    fn pushes_between_pops_keep_the_order_of_a_sort() {
        let mut queue = Queue::default();
        let mut expected = Vec::new();
        let mut popped = Vec::new();
        let mut seq = 0u64;
        let mut push = |queue: &mut Queue<u64>, expected: &mut Vec<(u64, u64)>, at: u64| {
            queue.push(Duration::from_millis(at), seq);
            expected.push((at, seq));
            seq += 1;
        };
        for at in [7, 3, 3, 9, 1] {
            push(&mut queue, &mut expected, at);
        }
        // A small deterministic mix of times, relative to the last popped.
        let mut x = 12345u64;
        while let Some((at, item)) = queue.pop() {
            let now = at.as_millis() as u64;
            popped.push((now, item));
            if popped.len() < 200 {
                for _ in 0..2 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    push(&mut queue, &mut expected, now + (x >> 61));
                }
            }
        }
        // Every entry pushed at or after the instant it was pushed in.
        expected.sort();
        assert_eq!(popped, expected);
    }
}
