//! The driver's socket chores: read buffers, writes bounded in time, and
//! the lingering close.

use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};

use super::runtime::Runtime;
use crate::shutdown::Shutdown;

pub const READ_BUF: usize = 16 * 1024;
/// Once the shutdown grace is over, how long a write may still take: the
/// server stops waiting for connections shortly after, and a client that
/// does not read must not keep its call's usage from being recorded.
const FINAL_WRITE: Duration = Duration::from_secs(1);

/// Bytes read but not yet taken by the core (backpressure).
pub struct Pending {
    pub buf: Vec<u8>,
    pub start: usize,
    pub end: usize,
}

impl Pending {
    pub fn new() -> Pending {
        Pending {
            buf: vec![0u8; READ_BUF],
            start: 0,
            end: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

/// Writes everything, or gives up after `stall` (or `FINAL_WRITE` once
/// the shutdown grace is over) without the write finishing; false when the
/// peer failed or stalled. Almost every write completes at once, so the
/// timers (reactor registrations) are only set up for one that would block.
pub async fn write_within<R: Runtime, W: futures_lite::AsyncWrite + Unpin>(
    rt: &R,
    stream: &mut W,
    bytes: &[u8],
    stall: Duration,
    shutdown: &Shutdown,
) -> bool {
    let mut write = std::pin::pin!(stream.write_all(bytes));
    if let Some(result) = futures_lite::future::poll_once(&mut write).await {
        return result.is_ok();
    }
    let finish = async { write.await.is_ok() };
    let stalled = async {
        rt.sleep_until(Instant::now() + stall).await;
        false
    };
    let grace_over = async {
        shutdown.wait_expired().await;
        rt.sleep_until(Instant::now() + FINAL_WRITE).await;
        false
    };
    finish.or(stalled).or(grace_over).await
}

/// Closes our side, then drains what the client still sends for up to
/// `linger`, so the kernel does not answer unread bytes with a reset that
/// destroys the response in flight.
pub async fn linger_close<R: Runtime>(rt: &R, mut stream: R::Tcp, linger: Duration) {
    let _ = stream.flush().await;
    rt.shutdown_write(&mut stream).await;
    let mut sink = [0u8; 4096];
    let drain = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    drain.or(rt.sleep_until(Instant::now() + linger)).await;
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
