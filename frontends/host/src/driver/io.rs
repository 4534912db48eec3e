//! The driver's socket chores: read buffers, writes bounded in time, and
//! the lingering close.

use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};

use super::runtime::Runtime;
use crate::shutdown::Shutdown;

/// The most a read buffer grows to.
pub const READ_BUF: usize = 16 * 1024;
/// What the provider-side read buffer starts at: the few SSE events a
/// provider sends at once fit. Thousands of streams each hold one for their
/// whole life, so it starts small and grows only where reads fill it.
pub const READ_START: usize = 2 * 1024;
/// Once the shutdown grace is over, how long a write may still take: the
/// server stops waiting for connections shortly after, and a client that
/// does not read must not keep its call's usage from being recorded.
const FINAL_WRITE: Duration = Duration::from_secs(1);

/// Bytes read but not yet taken by the core (backpressure).
pub struct Pending {
    buf: Vec<u8>,
    pub start: usize,
    pub end: usize,
}

impl Pending {
    /// A buffer of `size` bytes, grown by `read` up to `READ_BUF`.
    pub fn new(size: usize) -> Pending {
        Pending {
            buf: vec![0u8; size],
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

    /// Where the next read goes; only called when empty.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// `n` bytes were read into `space()`. A read that filled the buffer
    /// doubles it (up to `READ_BUF`) for the next one, so a large body
    /// moves in few reads; bytes not yet taken are kept.
    pub fn read(&mut self, n: usize) {
        self.start = 0;
        self.end = n;
        if n == self.buf.len() && n < READ_BUF {
            self.buf.resize((self.buf.len() * 2).min(READ_BUF), 0);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(pending: &mut Pending) -> usize {
        let n = pending.space().len();
        pending.space().fill(b'x');
        pending.read(n);
        n
    }

    #[test]
    fn a_read_buffer_grows_while_reads_fill_it_up_to_its_bound() {
        let mut pending = Pending::new(READ_START);
        assert_eq!(pending.space().len(), READ_START);
        let mut sizes = Vec::new();
        for _ in 0..6 {
            let n = fill(&mut pending);
            // What was read is kept across the growth.
            assert_eq!(pending.data(), vec![b'x'; n].as_slice());
            pending.clear();
            sizes.push(pending.space().len());
        }
        assert_eq!(sizes, [4096, 8192, READ_BUF, READ_BUF, READ_BUF, READ_BUF]);
    }
}
