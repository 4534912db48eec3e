//! Connections to providers: one pool per serving thread (core), so taking
//! and returning a connection needs no lock; TCP or TLS; connect errors
//! told apart by where they happened (resolver or connect) and the socket
//! error's kind, never by message text.

mod stream;
pub mod tls;

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arouter_core::exchange::ConnectError;
use arouter_core::gateway::Gateway;
use event_listener::Event;
use futures_lite::FutureExt;
use futures_rustls::rustls::pki_types::ServerName;

use crate::driver::runtime::Runtime;
use crate::metrics::{shift, ThreadCells};
pub use stream::Stream;
use tls::TlsClients;

/// The pool's limits (`Config::serving`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolLimits {
    /// Idle connections kept per provider, per thread.
    pub max_idle: usize,
    /// A pooled connection idle this long is closed: providers close idle
    /// keep-alive connections after tens of seconds, a socket they closed
    /// fails on first use, and an unused one holds a descriptor on both
    /// sides.
    pub max_idle_age: Duration,
    pub connect_timeout: Duration,
}

/// One provider's idle connections, each with when it went idle.
type Idle<S> = Vec<(Stream<S>, Instant)>;

/// A connection to one provider.
pub struct Upstream<S> {
    pub provider: usize,
    pub stream: Stream<S>,
    /// Counts it in the busy gauge while it is out of the pool.
    _busy: Busy,
}

/// One connection's share of its thread's busy gauge for its provider.
struct Busy {
    cells: Option<Arc<ThreadCells>>,
    provider: usize,
}

impl Busy {
    fn new(cells: &Option<Arc<ThreadCells>>, provider: usize) -> Busy {
        if let Some(cells) = cells {
            shift(&cells.provider(Some(provider)).pool_busy, 1);
        }
        Busy {
            cells: cells.clone(),
            provider,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(cells) = &self.cells {
            shift(&cells.provider(Some(self.provider)).pool_busy, -1);
        }
    }
}

pub struct Pool<R: Runtime> {
    rt: R,
    /// Per provider, oldest first: each connection with when it went idle.
    idle: RefCell<Vec<Idle<R::Tcp>>>,
    limits: PoolLimits,
    /// Notified when a connection goes back to the pool, so the reaper
    /// sleeps without a timer while the pool is empty.
    returned: Event,
    tls: Arc<TlsClients>,
    gateway: Arc<Gateway>,
    /// This thread's metrics: idle and busy connections per provider.
    cells: Option<Arc<ThreadCells>>,
}

impl<R: Runtime> Pool<R> {
    pub fn new(rt: R, gateway: Arc<Gateway>, tls: Arc<TlsClients>, limits: PoolLimits) -> Self {
        Pool {
            rt,
            idle: RefCell::new((0..gateway.providers().len()).map(|_| Vec::new()).collect()),
            limits,
            returned: Event::new(),
            tls,
            gateway,
            cells: None,
        }
    }

    /// Keeps the idle and busy gauges of `cells` up to date.
    pub fn with_metrics(mut self, cells: Arc<ThreadCells>) -> Self {
        self.cells = Some(cells);
        self
    }

    /// The idle gauge of `provider` after its slot changed.
    fn idle_now(&self, provider: usize, idle: usize) {
        if let Some(cells) = &self.cells {
            let gauge = &cells.provider(Some(provider)).pool_idle;
            gauge.store(i64::try_from(idle).unwrap_or(i64::MAX), Ordering::Relaxed);
        }
    }

    /// A pooled connection to `provider`, if one is idle and not expired.
    pub fn take(&self, provider: usize) -> Option<Upstream<R::Tcp>> {
        let mut idle = self.idle.borrow_mut();
        let slot = idle.get_mut(provider)?;
        // The reaper may not have run yet: drop the expired ones.
        let max_age = self.limits.max_idle_age;
        slot.retain(|(_, since)| since.elapsed() < max_age);
        let taken = slot.pop();
        let left = slot.len();
        drop(idle);
        self.idle_now(provider, left);
        let (stream, _) = taken?;
        Some(Upstream {
            provider,
            stream,
            _busy: Busy::new(&self.cells, provider),
        })
    }

    /// A new connection to `provider`, within the connect timeout.
    pub async fn connect(&self, provider: usize) -> Result<Upstream<R::Tcp>, ConnectError> {
        let deadline = Instant::now() + self.limits.connect_timeout;
        let timeout = async {
            self.rt.sleep_until(deadline).await;
            Err(ConnectError::Timeout)
        };
        let stream = self.open(provider).or(timeout).await?;
        Ok(Upstream {
            provider,
            stream,
            _busy: Busy::new(&self.cells, provider),
        })
    }

    async fn open(&self, provider: usize) -> Result<Stream<R::Tcp>, ConnectError> {
        let addr = &self
            .gateway
            .providers()
            .get(provider)
            .ok_or(ConnectError::Other)?
            .addr;
        let targets = match addr.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, addr.port)],
            // Any failure of the resolver is a name that did not resolve.
            Err(_) => self
                .rt
                .resolve(addr.host.clone(), addr.port)
                .await
                .map_err(|_| ConnectError::Dns)?,
        };
        let mut failure = ConnectError::Dns;
        let mut tcp = None;
        for target in targets {
            match self.rt.connect(target).await {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(e) => failure = connect_error(&e),
            }
        }
        let tcp = tcp.ok_or(failure)?;
        self.rt.set_nodelay(&tcp);
        if !addr.tls {
            return Ok(Stream::Plain(tcp));
        }
        let name = ServerName::try_from(addr.host.clone()).map_err(|_| ConnectError::Tls)?;
        let connector = self.tls.get(provider).ok_or(ConnectError::Other)?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|_| ConnectError::Tls)?;
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// Returns a healthy connection for reuse.
    pub fn put(&self, upstream: Upstream<R::Tcp>) {
        let provider = upstream.provider;
        let idle = self.idle.borrow_mut().get_mut(provider).map(|slot| {
            if slot.len() < self.limits.max_idle {
                slot.push((upstream.stream, Instant::now()));
            }
            slot.len()
        });
        if let Some(idle) = idle {
            self.idle_now(provider, idle);
        }
        self.returned.notify(1);
    }

    /// Closes pooled connections when their idle time runs out, whether or
    /// not another request comes: sleeps until the oldest one expires, or,
    /// with the pool empty, until a connection is returned. Runs until
    /// dropped.
    pub async fn reap_idle(&self) {
        loop {
            // Listening before looking: a connection returned in between
            // still wakes us.
            let returned = self.returned.listen();
            match self.reap(Instant::now()) {
                Some(next) => self.rt.sleep_until(next).await,
                None => returned.await,
            }
        }
    }

    /// Drops the connections idle for `max_idle_age` at `now`; returns when
    /// the next one expires. Connections are pushed as they go idle, so
    /// each provider's oldest is first.
    fn reap(&self, now: Instant) -> Option<Instant> {
        let max_age = self.limits.max_idle_age;
        let mut next: Option<Instant> = None;
        for (provider, slot) in self.idle.borrow_mut().iter_mut().enumerate() {
            slot.retain(|(_, since)| now.saturating_duration_since(*since) < max_age);
            self.idle_now(provider, slot.len());
            if let Some((_, oldest)) = slot.first() {
                let expiry = *oldest + max_age;
                next = Some(next.map_or(expiry, |n| n.min(expiry)));
            }
        }
        next
    }
}

/// What a failed TCP connect means for the caller.
fn connect_error(e: &io::Error) -> ConnectError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ConnectError::Refused,
        io::ErrorKind::TimedOut => ConnectError::Timeout,
        _ => ConnectError::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_are_told_apart_by_kind() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(connect_error(&refused), ConnectError::Refused);
        let timed_out = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(connect_error(&timed_out), ConnectError::Timeout);
        // Message text does not matter.
        let lookalike = io::Error::other("failed to lookup address information");
        assert_eq!(connect_error(&lookalike), ConnectError::Other);
    }
}
