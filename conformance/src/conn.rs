//! The socket as async-h1 sees it: a cloneable reader/writer over one TCP
//! connection, with a buffer of received bytes that nobody has consumed
//! yet.
//!
//! async-h1 parses each request through a fresh `BufReader` and drops it
//! afterwards, so whatever that reader had buffered past the request (a
//! pipelined request) would be lost. Two rules keep every byte:
//! - reads hand out at most one line (up to and including `\n`): a request
//!   head and a chunked body both end with a line, so no reader ever holds
//!   bytes past them;
//! - a Content-Length body can end mid-line, so while it is read, reads hand
//!   out at most the bytes left of it ([`Conn::expect_body`], with the
//!   length async-h1 parsed).
//!
//! While a response is being sent, [`Conn::watch_closed`] reads the socket
//! too: bytes that arrive (a pipelined request) go to the same buffer, and
//! EOF or a reset tells that the client has gone.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use std::time::Instant;

use smol::future;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use smol::Async;

/// Bytes of pipelined input kept while watching for the client to go.
const MAX_PIPELINED: usize = 1024 * 1024;
/// One socket read.
const READ_BYTES: usize = 16 * 1024;

#[derive(Clone)]
pub struct Conn(Arc<Inner>);

struct Inner {
    stream: Async<TcpStream>,
    input: Mutex<Input>,
}

#[derive(Default)]
struct Input {
    /// Received and not yet consumed, in order.
    pending: Vec<u8>,
    /// Bytes left of a Content-Length body being read.
    body_left: usize,
    /// A copy of what reads hand out, while a head is read.
    recording: Option<Vec<u8>>,
    /// When the first byte of the current Content-Length body was read.
    body_started: Option<Instant>,
}

impl Conn {
    pub fn new(stream: Async<TcpStream>) -> Conn {
        let _ = stream.get_ref().set_nodelay(true);
        Conn(Arc::new(Inner {
            stream,
            input: Mutex::new(Input::default()),
        }))
    }

    fn input(&self) -> MutexGuard<'_, Input> {
        self.0.input.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `len` bytes are a Content-Length body: hand them out
    /// regardless of line ends, and no byte past them.
    pub fn expect_body(&self, len: usize) {
        let mut input = self.input();
        input.body_left = len;
        input.body_started = None;
    }

    /// When the first byte of the body announced by `expect_body` arrived.
    pub fn body_started(&self) -> Option<Instant> {
        self.input().body_started
    }

    /// Keep a copy of the bytes handed out from now on.
    pub fn record(&self) {
        self.input().recording = Some(Vec::new());
    }

    /// The bytes handed out since [`Conn::record`]; stops recording.
    pub fn take_recorded(&self) -> Vec<u8> {
        self.input().recording.take().unwrap_or_default()
    }

    /// Close both directions.
    pub fn shutdown(&self) {
        let _ = self.0.stream.get_ref().shutdown(Shutdown::Both);
    }

    /// Resolve when the client closes (EOF) or resets the connection. Bytes
    /// it sends meanwhile are kept for the next request.
    pub async fn watch_closed(&self) {
        let mut tmp = [0u8; 4096];
        loop {
            match (&self.0.stream).read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let held = {
                        let mut input = self.input();
                        input.pending.extend_from_slice(&tmp[..n]);
                        input.pending.len()
                    };
                    if held > MAX_PIPELINED {
                        // Stop reading; a close then shows as a write error.
                        future::pending::<()>().await;
                    }
                }
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut input = self.input();
        if input.pending.is_empty() {
            let mut tmp = [0u8; READ_BYTES];
            let n = ready!(Pin::new(&mut &self.0.stream).poll_read(cx, &mut tmp))?;
            input.pending.extend_from_slice(&tmp[..n]);
        }
        let Input {
            pending,
            body_left,
            recording,
            body_started,
        } = &mut *input;
        if *body_left > 0 && !pending.is_empty() && body_started.is_none() {
            *body_started = Some(Instant::now());
        }
        let end = if *body_left > 0 {
            (*body_left).min(pending.len())
        } else {
            pending
                .iter()
                .position(|&b| b == b'\n')
                .map_or(pending.len(), |i| i + 1)
        };
        let n = end.min(buf.len());
        buf[..n].copy_from_slice(&pending[..n]);
        if let Some(copy) = recording {
            copy.extend_from_slice(&pending[..n]);
        }
        pending.drain(..n);
        *body_left = body_left.saturating_sub(n);
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &self.0.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &self.0.stream).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &self.0.stream).poll_close(cx)
    }
}
