//! A device's open tasks (arrived, not completed), found by id. A device
//! hands out ids in sequence and its tasks mostly complete in arrival order,
//! so they live in a window from the oldest open id to the newest: a lookup
//! is an index rather than a hash, and the window moves on as the oldest
//! tasks complete. A task that stays open long keeps the ids after it in the
//! window (as empty places) until it completes.

use crate::task::TaskId;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub(crate) struct OpenTasks<T> {
    /// The id of `places[0]`.
    first: TaskId,
    places: VecDeque<Option<T>>,
    open: usize,
}

impl<T> OpenTasks<T> {
    pub(crate) fn new() -> OpenTasks<T> {
        OpenTasks { first: 0, places: VecDeque::new(), open: 0 }
    }

    /// Opens a task under the next id in sequence and returns that id.
    pub(crate) fn push(&mut self, task: T) -> TaskId {
        let id = self.first + self.places.len() as TaskId;
        self.places.push_back(Some(task));
        self.open += 1;
        id
    }

    /// Tasks open now.
    pub(crate) fn len(&self) -> usize {
        self.open
    }

    pub(crate) fn get_mut(&mut self, id: TaskId) -> Option<&mut T> {
        let index = self.index(id)?;
        self.places.get_mut(index)?.as_mut()
    }

    /// Closes a task and returns it; `None` when it is not open.
    pub(crate) fn remove(&mut self, id: TaskId) -> Option<T> {
        let index = self.index(id)?;
        let task = self.places.get_mut(index)?.take()?;
        self.open -= 1;
        while let Some(None) = self.places.front() {
            self.places.pop_front();
            self.first += 1;
        }
        Some(task)
    }

    fn index(&self, id: TaskId) -> Option<usize> {
        usize::try_from(id.checked_sub(self.first)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_in_sequence_and_survive_out_of_order_completion() {
        let mut tasks = OpenTasks::new();
        let ids: Vec<TaskId> = (0..5).map(|n| tasks.push(n * 10)).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4]);
        assert_eq!(tasks.remove(2), Some(20));
        assert_eq!(tasks.remove(2), None, "a task closes once");
        assert_eq!(tasks.remove(0), Some(0));
        assert_eq!(tasks.remove(1), Some(10));
        assert_eq!(tasks.get_mut(0), None, "an id before the window is closed");
        assert_eq!(tasks.get_mut(9), None, "an id past the window was never opened");
        *tasks.get_mut(3).expect("open") += 1;
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks.push(50), 5, "ids continue after completions");
        assert_eq!(tasks.remove(3), Some(31));
        assert_eq!(tasks.remove(4), Some(40));
        assert_eq!(tasks.remove(5), Some(50));
        assert_eq!((tasks.len(), tasks.places.len()), (0, 0), "an empty window holds nothing");
        assert_eq!(tasks.push(60), 6);
    }
}
