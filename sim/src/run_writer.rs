//! A run folder written as the run goes, so that a run's memory stays flat
//! however many slots it has. The rows are formatted and written on a
//! thread of their own: formatting a slot's tens of task rows costs about
//! as much as simulating the slot, and on a second core it overlaps with
//! the simulation instead of adding to it. Rows travel in batches over a
//! bounded channel, so the simulation runs at most a few batches ahead, and
//! the writer hands each emptied batch back to be filled again: the slot
//! loop neither allocates nor grows a batch once the first few go round.

use crate::engine::{SlotOutcome, attach_figures};
use crate::output::OutputError;
use crate::summary::Summary;
use crate::task_rows::{self, RowFormatter};
use qmec_model::accounting::SlotRecord;
use qmec_model::task::TaskRecord;
use qmec_model::{Scenario, SlotFigure};
use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Slots a slot's row waits in memory for figures about it before it is
/// written: policies report them a slot or so late
/// ([`qmec_model::Policy::slot_figures`]).
pub const FIGURE_WAIT_SLOTS: usize = 256;

/// Task rows per batch (about twenty slots' worth): a send per batch rather
/// than per slot keeps the channel's cost (and the writer's wake-ups) off
/// the slot loop, and a batch small enough to stay in cache on its way to
/// the writer costs the slot loop less to fill.
const BATCH_TASKS: usize = 1024;

/// Batches the simulation may run ahead of the writer.
const BATCHES_IN_FLIGHT: usize = 4;

/// Rows on their way to the writer thread.
#[derive(Debug, Default)]
struct Batch {
    tasks: Vec<TaskRecord>,
    slots: Vec<SlotRecord>,
}

impl Batch {
    fn new() -> Batch {
        // Room for a last slot's tasks past the threshold.
        Batch { tasks: Vec::with_capacity(2 * BATCH_TASKS), slots: Vec::new() }
    }
}

/// A run folder being written: `scenario.toml` first, each task's row as it
/// completes, each slot's row once no more figures can come for it,
/// `summary.json` at the end. It holds [`FIGURE_WAIT_SLOTS`] slot rows and
/// a few batches of task rows at most.
#[derive(Debug)]
pub struct RunWriter {
    /// Rows not sent yet, in slot order, waiting for figures.
    waiting: VecDeque<SlotRecord>,
    batch: Batch,
    slots_sent: u64,
    rows: Option<SyncSender<Batch>>,
    /// Batches the writer emptied, to fill again.
    emptied: Receiver<Batch>,
    writer: Option<JoinHandle<Result<(), OutputError>>>,
    slots_path: PathBuf,
    summary_path: PathBuf,
}

impl RunWriter {
    /// Creates `dir` if missing, writes `scenario.toml`, opens the CSVs and
    /// starts the thread that writes them.
    pub fn create(dir: &Path, scenario: &Scenario) -> Result<RunWriter, OutputError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let scenario_path = dir.join("scenario.toml");
        std::fs::write(&scenario_path, scenario.to_toml()).map_err(io_error(&scenario_path))?;
        let slots_path = dir.join("slots.csv");
        let slots = CsvFile::create(slots_path.clone())?;
        let tasks = TaskFile::create(dir.join("tasks.csv"))?;
        let (rows, batches) = sync_channel(BATCHES_IN_FLIGHT);
        let (give_back, emptied) = sync_channel(BATCHES_IN_FLIGHT + 1);
        let writer = std::thread::Builder::new()
            .name("run-writer".into())
            .spawn(move || write_batches(batches, &give_back, slots, tasks))
            .map_err(io_error(dir))?;
        Ok(RunWriter {
            waiting: VecDeque::with_capacity(FIGURE_WAIT_SLOTS + 1),
            batch: Batch::new(),
            slots_sent: 0,
            rows: Some(rows),
            emptied,
            writer: Some(writer),
            slots_path,
            summary_path: dir.join("summary.json"),
        })
    }

    /// One simulated slot: its completed tasks, its row and its figures.
    pub fn outcome(&mut self, outcome: &SlotOutcome) -> Result<(), OutputError> {
        self.tasks(&outcome.completed)?;
        self.slot(outcome.record.clone(), &outcome.figures)
    }

    /// Rows of completed tasks.
    pub fn tasks(&mut self, tasks: &[TaskRecord]) -> Result<(), OutputError> {
        self.batch.tasks.extend_from_slice(tasks);
        if self.batch.tasks.len() >= BATCH_TASKS {
            self.send()?;
        }
        Ok(())
    }

    /// The next slot's row, then `figures` about it or about earlier slots.
    pub fn slot(&mut self, record: SlotRecord, figures: &[SlotFigure]) -> Result<(), OutputError> {
        self.waiting.push_back(record);
        self.attach(figures)?;
        while self.waiting.len() > FIGURE_WAIT_SLOTS {
            self.batch.slots.extend(self.waiting.pop_front());
            self.slots_sent += 1;
        }
        Ok(())
    }

    /// Writes the rows still waiting, waits for the writer, then writes
    /// `summary.json`.
    pub fn finish(mut self, summary: &Summary) -> Result<(), OutputError> {
        self.slots_sent += self.waiting.len() as u64;
        self.batch.slots.extend(self.waiting.drain(..));
        self.send()?;
        self.stop_writer()?;
        let json = serde_json::to_string_pretty(summary)
            .map_err(|source| OutputError::Json { path: self.summary_path.clone(), source })?;
        std::fs::write(&self.summary_path, json).map_err(io_error(&self.summary_path))
    }

    fn attach(&mut self, figures: &[SlotFigure]) -> Result<(), OutputError> {
        if figures.is_empty() {
            return Ok(());
        }
        // A figure about a slot before the first row waiting concerns a row
        // sent already, or none of this run (dropped, as in
        // `attach_figures`).
        let first_waiting = self.waiting.front().map_or(u64::MAX, |r| r.slot);
        if self.slots_sent > 0
            && let Some(late) = figures.iter().find(|f| f.slot < first_waiting)
        {
            return Err(OutputError::LateFigure { path: self.slots_path.clone(), slot: late.slot });
        }
        attach_figures(self.waiting.make_contiguous(), figures);
        Ok(())
    }

    /// Hands the batch to the writer; if it stopped, its error.
    fn send(&mut self) -> Result<(), OutputError> {
        let next = self.emptied.try_recv().unwrap_or_else(|_| Batch::new());
        let batch = std::mem::replace(&mut self.batch, next);
        let sent = self.rows.as_ref().map(|rows| rows.send(batch).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The writer only hangs up on an error.
        let error = self.stop_writer().err();
        Err(error.unwrap_or_else(|| OutputError::WriterStopped { path: self.slots_path.clone() }))
    }

    /// Closes the channel and waits for the writer: its error if it failed.
    fn stop_writer(&mut self) -> Result<(), OutputError> {
        self.rows = None;
        let stopped = || OutputError::WriterStopped { path: self.slots_path.clone() };
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(written)) => written,
            Some(Err(_)) | None => Err(stopped()),
        }
    }
}

impl Drop for RunWriter {
    /// A writer dropped unfinished (the run failed) still ends its thread.
    fn drop(&mut self) {
        self.rows = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: every batch until the channel closes, each handed
/// back emptied, then a flush.
fn write_batches(
    batches: Receiver<Batch>,
    give_back: &SyncSender<Batch>,
    mut slots: CsvFile,
    mut tasks: TaskFile,
) -> Result<(), OutputError> {
    for mut batch in batches {
        tasks.rows(&batch.tasks)?;
        for record in &batch.slots {
            slots.row(record)?;
        }
        batch.tasks.clear();
        batch.slots.clear();
        // Refused when the slot loop holds batches enough (this one goes)
        // or the run is ending.
        let _ = give_back.try_send(batch);
    }
    slots.flush()?;
    tasks.flush()
}

/// `tasks.csv` being written: rows formatted by [`crate::task_rows`] into a
/// buffer that goes to the file when full.
#[derive(Debug)]
struct TaskFile {
    path: PathBuf,
    file: std::fs::File,
    buffer: Vec<u8>,
    rows: RowFormatter,
    /// The csv crate writes the header with the first row: an empty run's
    /// file stays empty, and so does this one.
    header_written: bool,
}

impl TaskFile {
    const BUFFER_BYTES: usize = 1 << 16;

    fn create(path: PathBuf) -> Result<TaskFile, OutputError> {
        let file = std::fs::File::create(&path).map_err(io_error(&path))?;
        Ok(TaskFile {
            path,
            file,
            buffer: Vec::with_capacity(Self::BUFFER_BYTES),
            rows: RowFormatter::default(),
            header_written: false,
        })
    }

    fn rows(&mut self, tasks: &[TaskRecord]) -> Result<(), OutputError> {
        for task in tasks {
            if !self.header_written {
                self.buffer.extend_from_slice(task_rows::HEADER.as_bytes());
                self.header_written = true;
            }
            self.rows.push_row(&mut self.buffer, task);
            if self.buffer.len() >= Self::BUFFER_BYTES {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        self.file.write_all(&self.buffer).map_err(io_error(&self.path))?;
        self.buffer.clear();
        Ok(())
    }
}

/// `slots.csv` (one row per slot, so the csv crate's cost does not matter)
/// being written.
#[derive(Debug)]
struct CsvFile {
    path: PathBuf,
    writer: csv::Writer<std::fs::File>,
}

impl CsvFile {
    fn create(path: PathBuf) -> Result<CsvFile, OutputError> {
        let writer = csv::Writer::from_path(&path).map_err(|source| OutputError::Csv { path: path.clone(), source })?;
        Ok(CsvFile { path, writer })
    }

    fn row(&mut self, row: &SlotRecord) -> Result<(), OutputError> {
        self.writer.serialize(row).map_err(|source| OutputError::Csv { path: self.path.clone(), source })
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        self.writer.flush().map_err(io_error(&self.path))
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError {
    let path = path.to_path_buf();
    move |source| OutputError::Io { path, source }
}
