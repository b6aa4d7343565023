//! Testbed progress: the agents run in other processes (or containers), so
//! the launcher learns how far the run is from the controller's journal,
//! which gets one JSON line per decided slot as the slot ends. A thread
//! follows the journal and moves a bar to the latest slot in it.

use crate::progress;
use indicatif::ProgressBar;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the journal is read.
const POLL: Duration = Duration::from_millis(250);

/// A bar of `slots` slots that follows the journal at `journal` until
/// [`SlotProgress::finish`].
#[derive(Debug)]
pub struct SlotProgress {
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    follower: Option<JoinHandle<()>>,
}

impl SlotProgress {
    pub fn start(journal: PathBuf, slots: u64) -> SlotProgress {
        let bar = progress::bar(slots, "slots");
        bar.set_message("starting agents");
        bar.enable_steady_tick(POLL);
        let stop = Arc::new(AtomicBool::new(false));
        let follower = {
            let (bar, stop) = (bar.clone(), stop.clone());
            std::thread::spawn(move || follow(&journal, &bar, &stop))
        };
        SlotProgress { bar, stop, follower: Some(follower) }
    }

    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(follower) = self.follower.take() {
            let _ = follower.join();
        }
        self.bar.finish_and_clear();
    }
}

/// Reads the journal's new lines every [`POLL`] and sets the bar to one
/// past the largest slot decided so far (a slot's line may come twice: again
/// when an online policy's measurement of it arrives).
fn follow(journal: &Path, bar: &ProgressBar, stop: &AtomicBool) {
    let mut offset = 0;
    let mut decided = 0;
    while !stop.load(Ordering::Relaxed) {
        if let Some((read_to, largest)) = read_from(journal, offset) {
            offset = read_to;
            if let Some(slot) = largest.filter(|&slot| slot + 1 > decided) {
                decided = slot + 1;
                bar.set_position(decided);
                bar.set_message("decided (controller journal)");
            }
        }
        std::thread::sleep(POLL);
    }
}

/// The largest slot in the whole lines after `offset`, and where they end.
/// A fresh run empties the journal: a file shorter than `offset` is read
/// from its start.
fn read_from(journal: &Path, offset: u64) -> Option<(u64, Option<u64>)> {
    let file = std::fs::File::open(journal).ok()?;
    let offset = if file.metadata().ok()?.len() < offset { 0 } else { offset };
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(offset)).ok()?;
    let (mut at, mut largest) = (offset, None);
    let mut line = String::new();
    while reader.read_line(&mut line).ok()? > 0 && line.ends_with('\n') {
        at += line.len() as u64;
        let slot = serde_json::from_str::<serde_json::Value>(&line).ok().and_then(|v| v["slot"].as_u64());
        largest = largest.max(slot);
        line.clear();
    }
    Some((at, largest))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::read_from;

    #[test]
    fn the_journal_is_read_up_to_its_last_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("controller.slots.jsonl");
        std::fs::write(&journal, "{\"slot\":0}\n{\"slot\":1}\n{\"slot\":0}\n{\"slot\":2").unwrap();
        let (offset, largest) = read_from(&journal, 0).unwrap();
        assert_eq!((offset, largest), (33, Some(1)), "the torn last line waits");
        std::fs::write(&journal, "{\"slot\":0}\n{\"slot\":1}\n{\"slot\":0}\n{\"slot\":2}\n").unwrap();
        assert_eq!(read_from(&journal, offset).unwrap(), (44, Some(2)));
        std::fs::write(&journal, "{\"slot\":0}\n").unwrap();
        assert_eq!(read_from(&journal, 44).unwrap(), (11, Some(0)), "an emptied journal is read anew");
        assert!(read_from(&dir.path().join("missing"), 0).is_none());
    }
}
