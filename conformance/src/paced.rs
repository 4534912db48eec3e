//! A response body that hands out its pieces one read at a time, pausing
//! where the replay wants: the chunk delay between streamed events and the
//! faults' first-byte delay, stall and cut. async-h1's encoder makes one
//! chunk of each read, so each piece (one SSE event) is one chunk.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use smol::io::{AsyncBufRead, AsyncRead};
use smol::Timer;

/// Where the pauses and the cut go. Gate `i` comes before piece `i`; gate
/// `n` (after the last piece) comes before the end of the body.
#[derive(Debug, Clone, Default)]
pub struct Pacing {
    /// Between two pieces of a chunked body.
    pub chunk_delay: Duration,
    /// Before the first piece.
    pub first_byte_delay: Option<Duration>,
    /// Fail the body (the connection is then cut) at this gate.
    pub cut_at: Option<usize>,
    /// Pause at this gate instead of the chunk delay.
    pub stall: Option<(usize, Duration)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    FirstByte,
    Cut,
    Pause,
    Open,
}

pub struct PacedBody {
    pieces: Vec<Vec<u8>>,
    pacing: Pacing,
    /// Index of the piece being handed out and the offset into it.
    next: usize,
    offset: usize,
    stage: Stage,
    timer: Option<Timer>,
    /// Body bytes handed to the encoder so far.
    handed: Arc<AtomicU64>,
}

/// The error a cut fault fails the body with.
#[derive(Debug)]
pub struct CutFault;

impl std::fmt::Display for CutFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("replay fault: cut")
    }
}

impl std::error::Error for CutFault {}

impl PacedBody {
    pub fn new(pieces: Vec<Vec<u8>>, pacing: Pacing, handed: Arc<AtomicU64>) -> PacedBody {
        PacedBody {
            pieces,
            pacing,
            next: 0,
            offset: 0,
            stage: Stage::FirstByte,
            timer: None,
            handed,
        }
    }

    fn pause_before(&self, i: usize) -> Option<Duration> {
        match self.pacing.stall {
            Some((at, d)) if at == i => Some(d),
            _ if i > 0 && i < self.pieces.len() && !self.pacing.chunk_delay.is_zero() => {
                Some(self.pacing.chunk_delay)
            }
            _ => None,
        }
    }

    /// Pass gate `self.next`: first-byte delay, cut, pause.
    fn poll_gate(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(timer) = &mut self.timer {
                ready!(Pin::new(timer).poll(cx));
                self.timer = None;
            }
            let wait = match self.stage {
                Stage::FirstByte => {
                    self.stage = Stage::Cut;
                    self.pacing.first_byte_delay.filter(|_| self.next == 0)
                }
                Stage::Cut => {
                    if self.pacing.cut_at == Some(self.next) {
                        return Poll::Ready(Err(io::Error::other(CutFault)));
                    }
                    self.stage = Stage::Pause;
                    self.pause_before(self.next)
                }
                Stage::Pause => {
                    self.stage = Stage::Open;
                    None
                }
                Stage::Open => return Poll::Ready(Ok(())),
            };
            self.timer = wait.map(Timer::after);
        }
    }
}

impl AsyncBufRead for PacedBody {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        ready!(this.poll_gate(cx))?;
        let rest = match this.pieces.get(this.next) {
            Some(piece) => &piece[this.offset..],
            None => &[],
        };
        Poll::Ready(Ok(rest))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.offset += amt;
        this.handed.fetch_add(amt as u64, Ordering::Relaxed);
        if this
            .pieces
            .get(this.next)
            .is_some_and(|p| this.offset >= p.len())
        {
            this.next += 1;
            this.offset = 0;
            this.stage = Stage::FirstByte;
        }
    }
}

impl AsyncRead for PacedBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let rest = ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.consume(n);
        Poll::Ready(Ok(n))
    }
}
