//! The virtual clock: what happens next is the earliest entry of one queue,
//! and entries due at the same instant come out in the order they went in,
//! so a run is a pure function of its inputs.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Entries by due time, first in first out among equals. Many entries fall
/// due at the same instant (every end-of-slot marker of a slot, on links
/// without delay), so entries wait in one first-in-first-out line per
/// instant: the search is over the few distinct instants, not the many
/// entries.
#[derive(Debug)]
pub struct Queue<T> {
    lines: BTreeMap<Duration, VecDeque<T>>,
}

impl<T> Default for Queue<T> {
    fn default() -> Queue<T> {
        Queue { lines: BTreeMap::new() }
    }
}

impl<T> Queue<T> {
    pub fn push(&mut self, at: Duration, item: T) {
        self.lines.entry(at).or_default().push_back(item);
    }

    /// The earliest entry and its due time.
    pub fn pop(&mut self) -> Option<(Duration, T)> {
        let mut first = self.lines.first_entry()?;
        let at = *first.key();
        let item = first.get_mut().pop_front();
        if first.get().is_empty() {
            first.remove();
        }
        item.map(|item| (at, item))
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
}
