//! The virtual clock: what happens next is the earliest entry of one queue,
//! and entries due at the same instant come out in the order they went in,
//! so a run is a pure function of its inputs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// Entries by due time, first in first out among equals. The heap orders
/// small keys only; the entries wait in a slab beside it, so that a large
/// message is never moved while the heap sifts.
#[derive(Debug)]
pub struct Queue<T> {
    heap: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    slab: Vec<Option<T>>,
    free: Vec<usize>,
    next: u64,
}

impl<T> Default for Queue<T> {
    fn default() -> Queue<T> {
        Queue { heap: BinaryHeap::new(), slab: Vec::new(), free: Vec::new(), next: 0 }
    }
}

impl<T> Queue<T> {
    pub fn push(&mut self, at: Duration, item: T) {
        let index = match self.free.pop() {
            Some(index) => {
                self.slab[index] = Some(item);
                index
            }
            None => {
                self.slab.push(Some(item));
                self.slab.len() - 1
            }
        };
        self.heap.push(Reverse((at, self.next, index)));
        self.next += 1;
    }

    /// The earliest entry and its due time.
    pub fn pop(&mut self) -> Option<(Duration, T)> {
        let Reverse((at, _, index)) = self.heap.pop()?;
        self.free.push(index);
        self.slab.get_mut(index).and_then(Option::take).map(|item| (at, item))
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
