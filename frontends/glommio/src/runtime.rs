//! glommio's sockets, timers and executor behind the host driver's
//! `Runtime`: io_uring underneath, one executor per core.

use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use arouter_host::driver::runtime::{Runtime, Timer};
use glommio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy)]
pub struct Glommio;

/// glommio's timer, created when first set (a glommio timer needs a
/// deadline).
#[derive(Default)]
pub struct GlommioTimer(Option<glommio::timer::Timer>);

impl Future for GlommioTimer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.0.as_mut() {
            Some(timer) => Pin::new(timer).poll(cx).map(|_| ()),
            None => Poll::Pending,
        }
    }
}

impl Timer for GlommioTimer {
    fn set_at(&mut self, at: Instant) {
        let after = at.saturating_duration_since(Instant::now());
        match self.0.as_mut() {
            Some(timer) => timer.reset(after),
            None => self.0 = Some(glommio::timer::Timer::new(after)),
        }
    }
}

impl Runtime for Glommio {
    type Tcp = TcpStream;
    type Listener = TcpListener;
    type Timer = GlommioTimer;

    fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        glommio::spawn_local(task).detach();
    }

    async fn accept(&self, listener: &TcpListener) -> io::Result<TcpStream> {
        listener.accept().await.map_err(io::Error::from)
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect(addr).await.map_err(io::Error::from)
    }

    fn resolve(
        &self,
        host: String,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + 'static {
        glommio::executor().spawn_blocking(move || {
            std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port)).map(Iterator::collect)
        })
    }

    async fn sleep_until(&self, at: Instant) {
        glommio::timer::sleep(at.saturating_duration_since(Instant::now())).await;
    }

    fn unblock<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + 'static {
        glommio::executor().spawn_blocking(work)
    }

    fn set_nodelay(&self, stream: &TcpStream) {
        let _ = stream.set_nodelay(true);
    }

    async fn shutdown_write(&self, stream: &mut TcpStream) {
        let _ = stream.shutdown(Shutdown::Write).await;
    }

    fn timer(&self) -> GlommioTimer {
        GlommioTimer::default()
    }
}
