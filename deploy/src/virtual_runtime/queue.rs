//! The virtual clock: what happens next is the earliest entry of one queue,
//! and entries due at the same instant come out in the order they went in,
//! so a run is a pure function of its inputs.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

/// Entries by due time, first in first out among equals.
#[derive(Debug)]
pub struct Queue<T> {
    heap: BinaryHeap<Entry<T>>,
    next: u64,
}

/// An entry, ordered by (due time, sequence) only: the heap is a max-heap,
/// so the order is reversed.
#[derive(Debug)]
struct Entry<T> {
    at: Duration,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Queue<T> {
        Queue { heap: BinaryHeap::new(), next: 0 }
    }
}

impl<T> Queue<T> {
    pub fn push(&mut self, at: Duration, item: T) {
        self.heap.push(Entry { at, seq: self.next, item });
        self.next += 1;
    }

    /// The earliest entry and its due time.
    pub fn pop(&mut self) -> Option<(Duration, T)> {
        self.heap.pop().map(|entry| (entry.at, entry.item))
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
