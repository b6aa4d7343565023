//! The device's side of the offload streams. One stream per server carries
//! fragments up (real payload bytes) and results down; one sender task per
//! device transmits each slot's fragments server after server (one radio),
//! paced so that b bits to server s take b / r_ms modelled seconds, scaled
//! to wall time, and then marks the end of the slot on every stream.

use crate::channels::AgentChannel;
use crate::core::{Batch, DeviceEvent};
use qmec_model::task::Fragment;
use qmec_proto::backoff::Backoff;
use qmec_proto::pb::{self, offload_client::OffloadClient, offload_down, offload_up};
use qmec_proto::validate::{self, MAX_PAYLOAD_BYTES};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// How many connection attempts to a server before giving up on it.
const CONNECT_ATTEMPTS: u32 = 40;
/// Fragments queued on one stream before the sender waits.
const STREAM_CAPACITY: usize = 256;

/// Opens the offload stream to one server (with backoff) and spawns its
/// reader, which turns what comes back into `events` for the device's core.
pub async fn open(
    channel: AgentChannel,
    device: usize,
    server: usize,
    events: mpsc::Sender<DeviceEvent>,
    shutdown: &CancellationToken,
) -> Option<mpsc::Sender<pb::OffloadUp>> {
    let mut backoff = Backoff::default();
    while backoff.attempts() < CONNECT_ATTEMPTS {
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        let hello = pb::OffloadUp { msg: Some(offload_up::Msg::Hello(pb::OffloadHello { device: device as u32 })) };
        let _ = tx.send(hello).await;
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        request.set_timeout(qmec_proto::session::SESSION_DEADLINE);
        let mut client = OffloadClient::new(channel.clone()).max_decoding_message_size(qmec_security::limits::OFFLOAD_DOWN);
        let opened = tokio::select! {
            () = shutdown.cancelled() => return None,
            opened = client.offload(request) => opened,
        };
        match opened {
            Ok(response) => {
                tokio::spawn(read(response.into_inner(), Peer { device, server }, events));
                return Some(tx);
            }
            Err(status) => {
                tracing::debug!(device, server, %status, "offload stream not open");
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
    None
}

/// The two ends of one offload stream.
#[derive(Debug, Clone, Copy)]
struct Peer {
    device: usize,
    server: usize,
}

/// Reads one server's results and end-of-results markers until the stream
/// ends, then says that server is lost (whatever it still held will not
/// come back; the core knows when that loses nothing).
async fn read(mut inbound: tonic::Streaming<pb::OffloadDown>, peer: Peer, events: mpsc::Sender<DeviceEvent>) {
    let Peer { device, server } = peer;
    loop {
        let event = match inbound.message().await {
            Ok(Some(pb::OffloadDown { msg: Some(offload_down::Msg::Result(result)) })) => {
                match validate::fragment_result(&result) {
                    Ok(result) => DeviceEvent::Result { server, result },
                    Err(invalid) => {
                        tracing::warn!(device, server, %invalid, "invalid result ignored");
                        continue;
                    }
                }
            }
            Ok(Some(pb::OffloadDown { msg: Some(offload_down::Msg::ResultsDone(done)) })) => {
                DeviceEvent::ResultsDone { server, slot: done.slot }
            }
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(status) => {
                tracing::debug!(device, server, %status, "offload stream ended");
                break;
            }
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
    let _ = events.send(DeviceEvent::ServerLost { server }).await;
}

/// Payload bytes for a fragment: bits / 8 / scale, at least 1, never more
/// than the bits stand for nor than the protocol's limit.
pub fn payload_len(bits: u64, payload_scale: f64) -> usize {
    let bytes = (bits as f64 / 8.0 / payload_scale).ceil().max(1.0) as u64;
    bytes.min(bits.div_ceil(8)).min(MAX_PAYLOAD_BYTES as u64) as usize
}

/// The wire form of `fragment`, sent in `slot` with `payload`.
pub fn fragment_message(slot: u64, fragment: &Fragment, payload: Vec<u8>) -> pb::FragmentData {
    pb::FragmentData {
        slot,
        task: fragment.task,
        bits: fragment.bits,
        payload,
        sent_s: fragment.sent_s,
        uploaded_s: fragment.uploaded_s,
    }
}

/// What the sender did by the time `batches` closed.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    pub payload_bytes: u64,
    /// Per server, bits of fragments not sent because the server was lost.
    pub unsent_bits: Vec<u64>,
}

/// Sends every batch, paced, then the end-of-slot markers; returns what it
/// sent once `batches` closes. `stopped` (set by the device's loop, from
/// its core's [`crate::core::DeviceCommand::StopSending`]) says per server
/// whether to skip it: a lost server's fragments are requeued by the core,
/// and the sender never waits on a dead stream.
pub async fn sender(
    streams: Vec<mpsc::Sender<pb::OffloadUp>>,
    mut batches: mpsc::Receiver<Batch>,
    payload_scale: f64,
    stopped: watch::Receiver<Vec<bool>>,
) -> Sent {
    let unsent_bits = vec![0; streams.len()];
    let mut uplink = Uplink { streams, payload_scale, stopped, sent: Sent { payload_bytes: 0, unsent_bits } };
    while let Some(batch) = batches.recv().await {
        uplink.transmit(batch).await;
    }
    uplink.sent
}

/// The sender's state.
#[derive(Debug)]
struct Uplink {
    streams: Vec<mpsc::Sender<pb::OffloadUp>>,
    payload_scale: f64,
    stopped: watch::Receiver<Vec<bool>>,
    sent: Sent,
}

impl Uplink {
    fn is_stopped(&self, server: usize) -> bool {
        self.stopped.borrow().get(server).copied().unwrap_or(false)
    }

    /// One slot's fragments, server after server (one radio), so that b
    /// bits at rate r take b / r modelled seconds; then the markers.
    async fn transmit(&mut self, batch: Batch) {
        let start = tokio::time::Instant::now();
        let mut elapsed_modelled = 0.0;
        for send in batch.sends {
            for fragment in send.fragments {
                if self.is_stopped(send.server) {
                    if let Some(unsent) = self.sent.unsent_bits.get_mut(send.server) {
                        *unsent += fragment.bits;
                    }
                    continue;
                }
                self.send_fragment(send.server, batch.slot, &fragment).await;
                if send.rate_bps > 0.0 {
                    elapsed_modelled += fragment.bits as f64 / send.rate_bps;
                    let due = start + Duration::from_secs_f64(elapsed_modelled * batch.wall_per_modelled);
                    tokio::time::sleep_until(due).await;
                }
            }
        }
        let marker = pb::OffloadUp { msg: Some(offload_up::Msg::EndOfSlot(pb::EndOfSlot { slot: batch.slot })) };
        for server in 0..self.streams.len() {
            if !self.is_stopped(server)
                && let Some(stream) = self.streams.get(server)
            {
                let _ = stream.send(marker.clone()).await;
            }
        }
    }

    async fn send_fragment(&mut self, server: usize, slot: u64, fragment: &Fragment) {
        let Some(stream) = self.streams.get(server) else { return };
        let len = payload_len(fragment.bits, self.payload_scale);
        // A cheap, non-constant pattern: real bytes, not a run of zeros.
        let payload: Vec<u8> = (0..len).map(|i| (fragment.task as usize).wrapping_add(i) as u8).collect();
        self.sent.payload_bytes += len as u64;
        let data = fragment_message(slot, fragment, payload);
        let _ = stream.send(pb::OffloadUp { msg: Some(offload_up::Msg::Fragment(data)) }).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn payload_is_scaled_and_bounded() {
        assert_eq!(super::payload_len(80_000, 1000.0), 10);
        assert_eq!(super::payload_len(8, 1000.0), 1);
        assert_eq!(super::payload_len(80_000, 1.0), 10_000);
        assert_eq!(super::payload_len(1 << 40, 1.0), super::MAX_PAYLOAD_BYTES);
    }
}
