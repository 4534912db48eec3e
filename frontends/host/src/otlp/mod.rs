//! Optional OTLP export (cargo feature `otlp`, on by default): each
//! request's access record becomes one span, posted as OTLP/HTTP JSON to
//! `--otlp-endpoint`. Serving threads only `try_send` into a bounded
//! channel (a full one drops the span and counts it, never blocks); one
//! std thread batches and posts, so a slow collector slows nobody.

mod span;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub use span::span;

use crate::config::OtlpEndpoint;

/// Spans waiting for the exporter; more are dropped.
const QUEUE: usize = 8192;
/// Most spans in one export request.
const BATCH: usize = 512;
/// A partial batch is sent after this long.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Connect, write and read timeout of one export request.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

enum Message {
    Span(Value),
    /// Send what is queued, then answer (shutdown).
    Flush(SyncSender<()>),
}

/// The serving threads' handle on the exporter thread.
pub struct Exporter {
    queue: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

impl Exporter {
    pub fn start(endpoint: OtlpEndpoint) -> Result<Exporter, std::io::Error> {
        let (queue, spans) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        std::thread::Builder::new()
            .name("arouter-otlp".into())
            .spawn(move || run(&endpoint, &spans, &counter))?;
        Ok(Exporter { queue, dropped })
    }

    /// Queues `span`; drops it (counted) when the queue is full.
    pub fn send(&self, span: Value) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(Message::Span(span))
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Spans dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Exports what is queued, waiting at most `limit` (shutdown).
    pub fn flush(&self, limit: Duration) {
        let (done, wait) = mpsc::sync_channel(1);
        if self.queue.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(limit);
        }
    }
}

/// The exporter thread: gathers spans until a batch is full or a second
/// has passed since its first, then posts it.
fn run(endpoint: &OtlpEndpoint, spans: &Receiver<Message>, dropped: &AtomicU64) {
    let mut batch = Vec::new();
    let mut due = Instant::now() + FLUSH_EVERY;
    let mut reported = 0;
    let mut failing = false;
    loop {
        let timeout = due.saturating_duration_since(Instant::now());
        let flush = match spans.recv_timeout(timeout) {
            Ok(Message::Span(span)) => {
                if batch.is_empty() {
                    due = Instant::now() + FLUSH_EVERY;
                }
                batch.push(span);
                batch.len() >= BATCH
            }
            Ok(Message::Flush(done)) => {
                export(endpoint, &mut batch, &mut failing);
                let _ = done.try_send(());
                false
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => {
                export(endpoint, &mut batch, &mut failing);
                return;
            }
        };
        if flush {
            export(endpoint, &mut batch, &mut failing);
            due = Instant::now() + FLUSH_EVERY;
            let now_dropped = dropped.load(Ordering::Relaxed);
            if now_dropped > reported {
                log::warn!(
                    "OTLP export: {} span(s) dropped, the queue was full (collector too slow?)",
                    now_dropped - reported
                );
                reported = now_dropped;
            }
        }
    }
}

/// Posts `batch` (emptying it); a failure is logged once until an export
/// succeeds again, and its spans are not retried.
fn export(endpoint: &OtlpEndpoint, batch: &mut Vec<Value>, failing: &mut bool) {
    if batch.is_empty() {
        return;
    }
    let body = json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "arouter"}},
            ]},
            "scopeSpans": [{
                "scope": {"name": "arouter", "version": env!("CARGO_PKG_VERSION")},
                "spans": std::mem::take(batch),
            }],
        }],
    })
    .to_string();
    match post(endpoint, &body) {
        Ok(()) => *failing = false,
        Err(error) if !*failing => {
            *failing = true;
            log::warn!(
                "OTLP export to {} failed: {error} (spans are dropped until it works)",
                endpoint.authority
            );
        }
        Err(_) => {}
    }
}

/// One HTTP/1.1 POST on a fresh connection; a 2xx status is success.
fn post(endpoint: &OtlpEndpoint, body: &str) -> Result<(), String> {
    let addr = endpoint
        .authority
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_read_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        endpoint.traces_path,
        endpoint.authority,
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| e.to_string())?;
    // The status line is enough; the rest is read (bounded) and ignored.
    let mut answer = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    let status = answer
        .split(|&b| b == b' ')
        .nth(1)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or("no HTTP answer")?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("the collector answered {status}"))
    }
}
