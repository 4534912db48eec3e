//! A TCP stream that waits for readiness before reading when the last read
//! said the socket is drained, instead of reading first.
//!
//! async-io's own stream always tries the read first: at a request's turn
//! (the client's next request, the provider's answer to what was just sent)
//! nothing is there yet, so every wait began with a read that failed with
//! `EAGAIN`; and the driver polls the client's socket again on each wake
//! while it waits for the provider, one more failed read each time. A read
//! that did not fill the buffer drained the socket (nginx keeps the same
//! `ready` flag), so the next one waits for the reactor's word first; one
//! that filled it reads again at once, since more is likely there.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use smol::Async;

pub struct Tcp {
    io: Async<TcpStream>,
    /// Whether a read may find bytes without waiting: the last read filled
    /// its buffer, or none was made yet.
    maybe_readable: bool,
}

impl Tcp {
    pub fn new(io: Async<TcpStream>) -> Tcp {
        Tcp {
            io,
            maybe_readable: true,
        }
    }

    pub async fn connect(addr: SocketAddr) -> io::Result<Tcp> {
        Async::<TcpStream>::connect(addr).await.map(Tcp::new)
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(on)
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }
}

impl AsyncRead for Tcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            if !self.maybe_readable {
                // Registers interest once; polled again before an event
                // arrives, it costs no syscall.
                ready!(self.io.poll_readable(cx))?;
            }
            match self.io.get_ref().read(buf) {
                Ok(n) => {
                    self.maybe_readable = n == buf.len() && n > 0;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.maybe_readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}
