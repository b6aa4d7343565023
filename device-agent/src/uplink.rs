//! The device's side of the offload streams. One stream per server carries
//! fragments up (real payload bytes) and results down; one sender task per
//! device transmits each slot's fragments server after server (one radio),
//! paced so that b bits to server s take b / r_ms modelled seconds, scaled
//! to wall time, and then marks the end of the slot on every stream.

use qmec_model::task::Fragment;
use qmec_proto::backoff::Backoff;
use qmec_proto::pb::{self, offload_client::OffloadClient, offload_down, offload_up};
use qmec_proto::validate::{self, MAX_PAYLOAD_BYTES};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// How many connection attempts to a server before giving up on it.
pub const CONNECT_ATTEMPTS: u32 = 40;
/// Fragments queued on one stream before the sender waits.
pub const STREAM_CAPACITY: usize = 256;

/// What comes back from the servers.
#[derive(Debug, Clone, Copy)]
pub enum Downlink {
    Result { server: usize, result: validate::FragmentResult },
    Done { server: usize, slot: u64 },
    /// The stream to this server broke (the server is gone): its results
    /// will not come back.
    Lost { server: usize },
}

/// Per server, whether its offload stream broke; set by the stream's
/// reader, read by the sender so that it never waits on a dead stream.
pub type LostFlags = std::sync::Arc<Vec<std::sync::atomic::AtomicBool>>;

pub fn lost_flags(servers: usize) -> LostFlags {
    std::sync::Arc::new((0..servers).map(|_| std::sync::atomic::AtomicBool::new(false)).collect())
}

fn is_lost(lost: &LostFlags, server: usize) -> bool {
    lost.get(server).is_some_and(|flag| flag.load(std::sync::atomic::Ordering::Relaxed))
}

/// One slot's transmission: per server, its fragments and the rate r_ms.
#[derive(Debug)]
pub struct Batch {
    pub slot: u64,
    pub sends: Vec<(usize, Vec<Fragment>, f64)>,
    /// Wall seconds per modelled second of transmission.
    pub wall_per_modelled: f64,
}

/// Opens the offload stream to one server (with backoff) and spawns its reader.
pub async fn open(
    channel: crate::agent::AgentChannel,
    device: usize,
    server: usize,
    downlink: mpsc::Sender<Downlink>,
    lost: LostFlags,
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
                let mut inbound = response.into_inner();
                let lost = lost.clone();
                tokio::spawn(async move {
                    loop {
                        let item = match inbound.message().await {
                            Ok(Some(pb::OffloadDown { msg: Some(offload_down::Msg::Result(result)) })) => {
                                match validate::fragment_result(&result) {
                                    Ok(result) => Downlink::Result { server, result },
                                    Err(invalid) => {
                                        tracing::warn!(device, server, %invalid, "invalid result ignored");
                                        continue;
                                    }
                                }
                            }
                            Ok(Some(pb::OffloadDown { msg: Some(offload_down::Msg::ResultsDone(done)) })) => {
                                Downlink::Done { server, slot: done.slot }
                            }
                            Ok(Some(_)) => continue,
                            Ok(None) => break,
                            Err(status) => {
                                tracing::debug!(device, server, %status, "offload stream ended");
                                break;
                            }
                        };
                        if downlink.send(item).await.is_err() {
                            return;
                        }
                    }
                    // Whatever this server still held will not come back.
                    if let Some(flag) = lost.get(server) {
                        flag.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    let _ = downlink.send(Downlink::Lost { server }).await;
                });
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

/// Payload bytes for a fragment: bits / 8 / scale, at least 1, never more
/// than the bits stand for nor than the protocol's limit.
pub fn payload_len(bits: u64, payload_scale: f64) -> usize {
    let bytes = (bits as f64 / 8.0 / payload_scale).ceil().max(1.0) as u64;
    bytes.min(bits.div_ceil(8)).min(MAX_PAYLOAD_BYTES as u64) as usize
}

/// What the sender did by the time `batches` closed.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    pub payload_bytes: u64,
    /// Per server, bits of fragments not sent because the server was lost.
    pub unsent_bits: Vec<u64>,
}

/// Sends every batch, paced, then the end-of-slot markers; returns the
/// payload bytes sent (and the bits skipped) once `batches` closes.
pub async fn sender(
    streams: Vec<Option<mpsc::Sender<pb::OffloadUp>>>,
    mut batches: mpsc::Receiver<Batch>,
    payload_scale: f64,
    lost: LostFlags,
) -> Sent {
    let mut sent_bytes = 0u64;
    let mut unsent_bits = vec![0u64; streams.len()];
    while let Some(batch) = batches.recv().await {
        let start = tokio::time::Instant::now();
        let mut elapsed_modelled = 0.0;
        for (server, fragments, rate) in batch.sends {
            let Some(Some(stream)) = streams.get(server) else { continue };
            for fragment in fragments {
                // A lost server's fragments are requeued by the device.
                if is_lost(&lost, server) {
                    unsent_bits[server] += fragment.bits;
                    continue;
                }
                let len = payload_len(fragment.bits, payload_scale);
                // A cheap, non-constant pattern: real bytes, not a run of zeros.
                let payload: Vec<u8> = (0..len).map(|i| (fragment.task as usize).wrapping_add(i) as u8).collect();
                sent_bytes += len as u64;
                let message = pb::OffloadUp {
                    msg: Some(offload_up::Msg::Fragment(pb::FragmentData {
                        slot: batch.slot,
                        task: fragment.task,
                        bits: fragment.bits,
                        payload,
                    })),
                };
                let _ = stream.send(message).await;
                if rate > 0.0 {
                    elapsed_modelled += fragment.bits as f64 / rate;
                    let due = start + Duration::from_secs_f64(elapsed_modelled * batch.wall_per_modelled);
                    tokio::time::sleep_until(due).await;
                }
            }
        }
        let marker = pb::OffloadUp { msg: Some(offload_up::Msg::EndOfSlot(pb::EndOfSlot { slot: batch.slot })) };
        for (server, stream) in streams.iter().enumerate() {
            let Some(stream) = stream else { continue };
            if !is_lost(&lost, server) {
                let _ = stream.send(marker.clone()).await;
            }
        }
    }
    Sent { payload_bytes: sent_bytes, unsent_bits }
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
