//! Prometheus metrics for every process: the text exposition format and a
//! tiny HTTP responder on a port of its own (one GET, one answer, close).
//! Each process keeps its figures however suits it and renders them only
//! when scraped; the figures change at most a few times per slot, so a
//! mutex around them is plenty.

use std::fmt::{Display, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How a metric behaves, in Prometheus' terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only ever grows.
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// Modelled bits in bytes, the base unit Prometheus names data in
/// (`promtool check metrics` refuses `bits`).
pub fn bytes(bits: u64) -> f64 {
    bits as f64 / 8.0
}

/// A page of metrics in the text exposition format, one family at a time.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// A family with one sample.
    pub fn metric(&mut self, name: &str, kind: Kind, help: &str, value: impl Display) {
        self.header(name, kind, help);
        let _ = writeln!(self.text, "{name} {value}");
    }

    /// A family with one sample per value of `label` (label values here
    /// are agent ids and drop reasons, which need no escaping).
    pub fn labelled<L: Display, V: Display>(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        label: &str,
        samples: impl IntoIterator<Item = (L, V)>,
    ) {
        self.header(name, kind, help);
        for (key, value) in samples {
            let _ = writeln!(self.text, "{name}{{{label}=\"{key}\"}} {value}");
        }
    }

    fn header(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = write!(self.text, "# HELP {name} {help}\n# TYPE {name} {}\n", kind.as_str());
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// A process's metrics, rendered each time they are scraped.
pub trait Page: Send + Sync + 'static {
    fn render(&self) -> String;
}

/// Binds `addr` and answers every connection with `page` until
/// `shutdown`; returns the bound address (port 0 picks one).
pub async fn serve(addr: &str, page: Arc<dyn Page>, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "metrics");
    tokio::spawn(answer(listener, page, shutdown));
    Ok(bound)
}

async fn answer(listener: TcpListener, page: Arc<dyn Page>, shutdown: CancellationToken) {
    loop {
        let (mut socket, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "metrics accept failed");
                    continue;
                }
            },
        };
        let page = page.clone();
        tokio::spawn(async move {
            // The request line is enough; requests larger than this are not ours.
            let mut request = [0u8; 2048];
            let read = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut request)).await;
            let Ok(Ok(_)) = read else { return };
            let body = page.render();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_type_and_samples() {
        let mut page = Exposition::new();
        page.metric("qmec_slots_total", Kind::Counter, "Slots run.", 7);
        page.labelled("qmec_queue_bytes", Kind::Gauge, "Queue.", "device", [(0, 10), (3, 0)]);
        let text = page.finish();
        assert_eq!(
            text,
            "# HELP qmec_slots_total Slots run.\n# TYPE qmec_slots_total counter\nqmec_slots_total 7\n\
             # HELP qmec_queue_bytes Queue.\n# TYPE qmec_queue_bytes gauge\n\
             qmec_queue_bytes{device=\"0\"} 10\nqmec_queue_bytes{device=\"3\"} 0\n"
        );
    }

    /// Counts its scrapes.
    #[derive(Default)]
    struct Scrapes(std::sync::atomic::AtomicU64);

    impl Page for Scrapes {
        fn render(&self) -> String {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let mut page = Exposition::new();
            page.metric("scrapes_total", Kind::Counter, "Scrapes.", n);
            page.finish()
        }
    }

    #[tokio::test]
    async fn a_scrape_gets_the_page_rendered_then() {
        let stop = CancellationToken::new();
        let addr = serve("127.0.0.1:0", Arc::new(Scrapes::default()), stop.clone()).await.unwrap();
        for expected in ["scrapes_total 1", "scrapes_total 2"] {
            let body = scrape(addr).await;
            assert!(body.starts_with("HTTP/1.1 200 OK") && body.contains(expected), "{body}");
        }
        stop.cancel();
    }

    /// One GET of `/metrics`; the whole response.
    async fn scrape(addr: SocketAddr) -> String {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut body = String::new();
        socket.read_to_string(&mut body).await.unwrap();
        body
    }
}
