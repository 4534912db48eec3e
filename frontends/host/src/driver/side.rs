//! The client side of a connection: a socket, or a request in memory (a
//! message batch's request, served by the same driver and core as any
//! other, so it is routed, translated, limited and billed the same way).

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use arouter_core::exchange::UsageRecord;
use futures_lite::{AsyncRead, AsyncWrite};

use crate::ledger::Held;

pub enum Client<T> {
    Socket(T),
    Memory(Rc<MemorySide>),
}

/// A request given whole, and what the connection writes back.
pub struct MemorySide {
    request: Vec<u8>,
    read: RefCell<usize>,
    answer: RefCell<Vec<u8>>,
    /// The most the answer may take; a bigger one fails the write, as a
    /// client that stops reading would.
    max_answer: usize,
    /// The key the request is admitted as (`None`: the master key).
    pub key_id: Option<i64>,
    /// Credit reserved for the request beforehand, spent by its first
    /// attempt instead of a new reservation; what is left of it when the
    /// request ends comes back here.
    pub held: RefCell<Option<Held>>,
    /// The request's usage records: stored with its result, not by the
    /// recorder, so the two are written in one transaction.
    pub usage: RefCell<Vec<UsageRecord>>,
}

impl MemorySide {
    pub fn new(
        request: Vec<u8>,
        max_answer: usize,
        key_id: Option<i64>,
        held: Option<Held>,
    ) -> MemorySide {
        MemorySide {
            request,
            read: RefCell::new(0),
            answer: RefCell::default(),
            max_answer,
            key_id,
            held: RefCell::new(held),
            usage: RefCell::default(),
        }
    }

    pub fn take_answer(&self) -> Vec<u8> {
        std::mem::take(&mut self.answer.borrow_mut())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Client<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Client::Socket(socket) => Pin::new(socket).poll_read(cx, buf),
            Client::Memory(side) => {
                let mut read = side.read.borrow_mut();
                let rest = &side.request[*read..];
                if rest.is_empty() {
                    // The request is all there is; the side never ends
                    // (an end would abort the call) and the connection
                    // closes after its answer (`Connection: close`).
                    return Poll::Pending;
                }
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                *read += n;
                Poll::Ready(Ok(n))
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Client<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Client::Socket(socket) => Pin::new(socket).poll_write(cx, buf),
            Client::Memory(side) => {
                let mut answer = side.answer.borrow_mut();
                if answer.len() + buf.len() > side.max_answer {
                    return Poll::Ready(Err(io::ErrorKind::OutOfMemory.into()));
                }
                answer.extend_from_slice(buf);
                Poll::Ready(Ok(buf.len()))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Client::Socket(socket) => Pin::new(socket).poll_flush(cx),
            Client::Memory(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Client::Socket(socket) => Pin::new(socket).poll_close(cx),
            Client::Memory(_) => Poll::Ready(Ok(())),
        }
    }
}
