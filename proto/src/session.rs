//! An agent's session with the controller, kept open across breaks. tonic
//! never resumes a broken stream, so each break opens a new one after a
//! jittered backoff ([`Backoff`]). A new stream may reach a controller that
//! restarted and knows nothing, so it starts with what the agent's
//! [`SessionMemory`] says a controller needs to pick the run up (the hello,
//! naming the next slot and the run, then the agent's latest messages).
//! What the controller says goes to `down`; what the agent queues in `up`
//! goes up. Device and server agents differ only in their memory and in
//! how a stream is opened.

use crate::backoff::Backoff;
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

/// The grpc-timeout on a session stream: longer than any run we launch, so
/// a peer that vanished without closing is still dropped eventually.
pub const SESSION_DEADLINE: Duration = Duration::from_secs(6 * 3600);

/// Messages queued on one session stream before the agent waits.
const STREAM_CAPACITY: usize = 64;

/// How long a session may stay broken after the run's last slot before
/// the agent takes the controller to have finished: a stream that broke
/// just before the finish would otherwise reopen to nobody for ever.
const AFTER_LAST_SLOT_PATIENCE: Duration = Duration::from_secs(10);

/// What one kind of agent says first on every stream and remembers across
/// them.
pub trait SessionMemory: Send {
    type Up: Clone + Send + 'static;
    type Down: Send + 'static;
    /// What a new stream starts with: the hello, then whatever a restarted
    /// controller needs again.
    fn opening(&self) -> Vec<Self::Up>;
    /// The controller said `message`.
    fn heard(&mut self, message: &Self::Down);
    /// The agent sent `message`.
    fn sent(&mut self, message: &Self::Up);
    /// `message` ends the run (for a process's devices: the last of them
    /// heard its finish; `heard` has taken `message` already).
    fn is_finish(&self, message: &Self::Down) -> bool;
    /// The agent has heard the run's last slot: only the finish is missing.
    fn run_over(&self) -> bool;
}

/// Keeps a session open until the controller says finish and `up` closes,
/// or `shutdown`. `open` opens one stream from its outgoing messages; `who`
/// names the agent in logs.
pub async fn keep_open<M, Open, Opening>(
    who: &str,
    mut memory: M,
    mut open: Open,
    down: mpsc::Sender<M::Down>,
    mut up: mpsc::Receiver<M::Up>,
    shutdown: CancellationToken,
) where
    M: SessionMemory,
    Open: FnMut(tonic::Request<ReceiverStream<M::Up>>) -> Opening,
    Opening: Future<Output = Result<Streaming<M::Down>, Status>>,
{
    let mut backoff = Backoff::default();
    let mut broken_since = None;
    loop {
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        for message in memory.opening() {
            let _ = tx.send(message).await;
        }
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        request.set_timeout(SESSION_DEADLINE);
        let opened = tokio::select! {
            () = shutdown.cancelled() => return,
            opened = open(request) => opened,
        };
        let mut inbound = match opened {
            Ok(inbound) => inbound,
            Err(status) => {
                // Not up yet is expected at start and after a restart; a
                // refusal (token, certificate, hello) is worth saying.
                if status.code() == tonic::Code::Unavailable {
                    tracing::debug!(who, %status, "controller session not open");
                } else {
                    tracing::warn!(who, %status, "controller refused the session");
                }
                let since = *broken_since.get_or_insert_with(tokio::time::Instant::now);
                if finished_unheard(memory.run_over(), since.elapsed()) {
                    tracing::warn!(who, %status, "the run's last slot has passed and the controller cannot be reached: taking the run as finished");
                    return;
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff.next_delay()) => continue,
                }
            }
        };
        backoff.reset();
        broken_since = None;
        let stream = Stream { inbound: &mut inbound, tx: &tx };
        if relay(who, &mut memory, stream, &down, &mut up, &shutdown).await == Relayed::Over {
            return;
        }
    }
}

/// Whether an agent whose session has been broken for `broken_for` takes
/// the run as finished: only once it has heard the run's last slot, and
/// after [`AFTER_LAST_SLOT_PATIENCE`] (a controller restarting near the
/// end comes back within it).
fn finished_unheard(run_over: bool, broken_for: Duration) -> bool {
    run_over && broken_for >= AFTER_LAST_SLOT_PATIENCE
}

/// How relaying one stream ended.
#[derive(Debug, PartialEq, Eq)]
enum Relayed {
    /// The run is over for this agent (finished, shut down, or its side closed).
    Over,
    /// The stream broke or ended: open another.
    Broke,
}

/// One open stream: what comes down, and where to send up.
struct Stream<'a, Down, Up> {
    inbound: &'a mut Streaming<Down>,
    tx: &'a mpsc::Sender<Up>,
}

/// Relays one stream both ways until it breaks, the controller says
/// finish (then the agent's last messages still go up), or `shutdown`.
async fn relay<M: SessionMemory>(
    who: &str,
    memory: &mut M,
    stream: Stream<'_, M::Down, M::Up>,
    down: &mpsc::Sender<M::Down>,
    up: &mut mpsc::Receiver<M::Up>,
    shutdown: &CancellationToken,
) -> Relayed {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Relayed::Over,
            message = stream.inbound.message() => match message {
                Ok(Some(message)) => {
                    memory.heard(&message);
                    let finish = memory.is_finish(&message);
                    if down.send(message).await.is_err() {
                        return Relayed::Over;
                    }
                    if finish {
                        // The controller closes the stream.
                        drain(up, stream.tx, shutdown).await;
                        return Relayed::Over;
                    }
                }
                Ok(None) => return Relayed::Broke,
                Err(status) => {
                    tracing::warn!(who, %status, "controller session broke; reconnecting");
                    return Relayed::Broke;
                }
            },
            message = up.recv() => match message {
                Some(message) => {
                    memory.sent(&message);
                    let _ = stream.tx.send(message).await;
                }
                None => return Relayed::Over,
            },
        }
    }
}

/// Sends what `up` holds until it closes or `shutdown`.
async fn drain<Up>(up: &mut mpsc::Receiver<Up>, tx: &mpsc::Sender<Up>, shutdown: &CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            message = up.recv() => match message {
                Some(message) => {
                    let _ = tx.send(message).await;
                }
                None => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_broken_after_the_last_slot_gives_up_after_the_patience_only() {
        assert!(!finished_unheard(false, AFTER_LAST_SLOT_PATIENCE * 100), "mid-run: a controller may restart");
        assert!(!finished_unheard(true, AFTER_LAST_SLOT_PATIENCE / 2));
        assert!(finished_unheard(true, AFTER_LAST_SLOT_PATIENCE));
    }
}
