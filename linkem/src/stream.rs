//! An emulated TCP connection: the application gets one end of a
//! `tokio::io::duplex` pair; two pump tasks carry bytes between its other
//! end and the real socket, each direction released on its own
//! [`Schedule`]. A reader task timestamps chunks as they arrive and queues
//! them (bounded, so a slow link pushes back on the writer as TCP would);
//! a writer task sends each chunk at its release time. Half-closes pass
//! through; an I/O error on either side ends both pumps, which the
//! application sees as a broken connection. The writer meters each chunk's
//! real entry and exit into the link's [`LinkMeters`] (its fidelity).

use crate::fidelity::{ChunkPlan, ConnectionMeter, DirectionMeter};
use crate::follow::LiveRate;
use crate::profile::{Link, TimedLink};
use crate::schedule::{DirectionChange, Schedule};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Largest chunk read at once: small enough that rate pacing and loss act
/// on segments of a sensible size, large enough to keep the pumps cheap.
pub const CHUNK_BYTES: usize = 16 * 1024;
/// Bytes the duplex pair buffers toward the application.
pub const DUPLEX_BYTES: usize = 256 * 1024;
/// Chunks in flight per direction (at most `CHUNK_BYTES` each).
pub const IN_FLIGHT_CHUNKS: usize = 1024;

/// The link a connection emulates: its values at first, and what they
/// change to at times after `origin` (the run's start).
#[derive(Debug, Clone)]
pub struct EmulatedLink {
    pub link: Link,
    pub timeline: Vec<TimedLink>,
    pub origin: Instant,
    pub meters: Arc<LinkMeters>,
    /// The `up` direction's rate, set at run time (a link that follows the
    /// modelled channel).
    pub live_up: Option<LiveRate>,
    /// How much longer than planned each chunk is held: 1 for a true
    /// emulator; the tests set another to check that the fidelity verdict
    /// catches an emulator that does not do what it was asked.
    pub stretch: f64,
}

/// The fidelity sums of a link's two directions, shared by its connections.
#[derive(Debug, Default)]
pub struct LinkMeters {
    pub up: Mutex<DirectionMeter>,
    pub down: Mutex<DirectionMeter>,
}

impl LinkMeters {
    /// Copies of the sums so far (`up`, `down`).
    pub fn read(&self) -> (DirectionMeter, DirectionMeter) {
        let read = |m: &Mutex<DirectionMeter>| m.lock().map(|m| m.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone());
        (read(&self.up), read(&self.down))
    }
}

impl EmulatedLink {
    /// One direction's changes, on the tokio clock.
    fn changes(&self, pick: fn(&Link) -> crate::Direction) -> Vec<DirectionChange<Instant>> {
        self.timeline.iter().map(|t| DirectionChange { from: self.origin + t.from, direction: pick(&t.link) }).collect()
    }
}

/// Wraps a connected socket in `link` (`up`: what the application writes,
/// `down`: what it reads) and returns the application's end.
pub fn emulate(tcp: TcpStream, link: &EmulatedLink, retransmit: Duration, seed: u64) -> DuplexStream {
    let (app, pump) = tokio::io::duplex(DUPLEX_BYTES);
    let (pump_read, pump_write) = tokio::io::split(pump);
    let (tcp_read, tcp_write) = tcp.into_split();
    let up = Schedule::new(link.link.up, retransmit, seed)
        .with_changes(link.changes(|l| l.up))
        .with_live_rate(link.live_up.clone());
    let down =
        Schedule::new(link.link.down, retransmit, seed ^ 0x9E37_79B9_7F4A_7C15).with_changes(link.changes(|l| l.down));
    pipe(pump_read, tcp_write, up, Metered { meters: Arc::clone(&link.meters), up: true, stretch: link.stretch });
    pipe(tcp_read, pump_write, down, Metered { meters: Arc::clone(&link.meters), up: false, stretch: link.stretch });
    app
}

/// Where a direction's writer meters its chunks.
struct Metered {
    meters: Arc<LinkMeters>,
    up: bool,
    stretch: f64,
}

impl Metered {
    fn sums(&self) -> &Mutex<DirectionMeter> {
        if self.up { &self.meters.up } else { &self.meters.down }
    }

    /// Adds to the shared sums (a poisoned lock only means another writer
    /// panicked mid-add: the sums are still worth keeping).
    fn with_sums(&self, add: impl FnOnce(&mut DirectionMeter)) {
        let mut sums = self.sums().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        add(&mut sums);
    }
}

/// A chunk between the reader and the writer.
struct InFlight {
    entry: Instant,
    release: Instant,
    plan: ChunkPlan,
    bytes: Vec<u8>,
}

/// One direction: `from` → schedule → `to`, metered.
fn pipe<R, W>(mut from: R, mut to: W, mut schedule: Schedule<Instant>, metered: Metered)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<InFlight>(IN_FLIGHT_CHUNKS);
    tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let entry = Instant::now();
            let (release, plan) = schedule.plan(entry, n);
            if tx.send(InFlight { entry, release, plan, bytes: buf[..n].to_vec() }).await.is_err() {
                break;
            }
        }
        // Dropping `tx` tells the writer the stream ended.
    });
    tokio::spawn(async move {
        let mut meter = ConnectionMeter::default();
        while let Some(chunk) = rx.recv().await {
            tokio::time::sleep_until(chunk.entry + (chunk.release - chunk.entry).mul_f64(metered.stretch)).await;
            if to.write_all(&chunk.bytes).await.is_err() {
                break;
            }
            let exit = Instant::now();
            metered.with_sums(|sums| meter.record(sums, &chunk.plan, chunk.bytes.len(), chunk.entry, exit));
        }
        let _ = to.shutdown().await;
    });
}
