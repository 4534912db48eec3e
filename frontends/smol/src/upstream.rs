//! Connections to providers: TCP, TLS (rustls with the webpki roots) for
//! `https` base URLs, and a bounded keep-alive pool per provider.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arouter_core::exchange::ConnectError;
use arouter_core::gateway::Gateway;
use arouter_core::upstream::UpstreamAddr;
use event_listener::Event;
use futures_lite::{AsyncRead, AsyncWrite, FutureExt};
use futures_rustls::client::TlsStream;
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, ServerName};
use futures_rustls::rustls::{ClientConfig, RootCertStore};
use futures_rustls::TlsConnector;
use smol::net::TcpStream;
use smol::Timer;

/// Idle connections kept per provider.
const MAX_IDLE_PER_PROVIDER: usize = 64;

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// A connection to one provider.
pub struct Upstream {
    pub provider: usize,
    pub stream: Stream,
}

pub struct Pool {
    /// Per provider, oldest first: each connection with when it went idle.
    idle: Vec<Mutex<Vec<(Stream, Instant)>>>,
    /// A pooled connection idle this long is closed
    /// (`Limits::upstream_pool_idle_ms`): providers close idle keep-alive
    /// connections after tens of seconds, a socket they closed fails on
    /// first use, and an unused one holds a descriptor on both sides.
    max_idle_age: Duration,
    /// Notified when a connection goes back to the pool, so the reaper
    /// sleeps without a timer while the pool is empty.
    returned: Event,
    /// One TLS client per provider: the public roots, plus the provider's
    /// own CA file when it names one.
    tls: Vec<TlsConnector>,
    connect_timeout: Duration,
    gateway: Arc<Gateway>,
}

impl Pool {
    /// `ca_files[i]` is provider `i`'s extra trusted CA file, if any.
    pub fn new(gateway: Arc<Gateway>, ca_files: &[Option<PathBuf>]) -> Result<Pool, String> {
        let mut tls = Vec::with_capacity(gateway.providers().len());
        for (i, provider) in gateway.providers().iter().enumerate() {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(path) = ca_files.get(i).and_then(Option::as_ref) {
                let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                    format!(
                        "provider `{}`: cannot read ca_file {}: {e}",
                        provider.name,
                        path.display()
                    )
                })?;
                for cert in certs {
                    let cert = cert.map_err(|e| {
                        format!(
                            "provider `{}`: bad certificate in {}: {e}",
                            provider.name,
                            path.display()
                        )
                    })?;
                    roots.add(cert).map_err(|e| {
                        format!(
                            "provider `{}`: unusable certificate in {}: {e}",
                            provider.name,
                            path.display()
                        )
                    })?;
                }
            }
            // Built with only rustls's `ring` feature, so `builder()` picks ring.
            let config = ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            tls.push(TlsConnector::from(Arc::new(config)));
        }
        Ok(Pool {
            idle: (0..gateway.providers().len())
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
            max_idle_age: Duration::from_millis(gateway.limits().upstream_pool_idle_ms),
            returned: Event::new(),
            tls,
            connect_timeout: Duration::from_millis(gateway.limits().upstream_connect_timeout_ms),
            gateway,
        })
    }

    /// A connection to `provider`: pooled unless `fresh`. The bool says
    /// whether it came from the pool.
    pub async fn get(
        &self,
        provider: usize,
        fresh: bool,
    ) -> Result<(Upstream, bool), ConnectError> {
        if !fresh {
            let pooled = self.idle.get(provider).and_then(|slot| {
                let mut idle = slot.lock().ok()?;
                // The reaper may not have run yet: drop the expired ones.
                idle.retain(|(_, since)| since.elapsed() < self.max_idle_age);
                idle.pop().map(|(stream, _)| stream)
            });
            if let Some(stream) = pooled {
                return Ok((Upstream { provider, stream }, true));
            }
        }
        let addr = &self
            .gateway
            .providers()
            .get(provider)
            .ok_or(ConnectError::Other)?
            .addr;
        let connect = self.connect(provider, addr);
        let timeout = async {
            Timer::after(self.connect_timeout).await;
            Err(ConnectError::Timeout)
        };
        let stream = connect.or(timeout).await?;
        Ok((Upstream { provider, stream }, false))
    }

    async fn connect(&self, provider: usize, addr: &UpstreamAddr) -> Result<Stream, ConnectError> {
        let tcp = TcpStream::connect((addr.host.as_str(), addr.port))
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::ConnectionRefused => ConnectError::Refused,
                io::ErrorKind::NotFound | io::ErrorKind::InvalidInput => ConnectError::Dns,
                _ if e.to_string().contains("lookup") => ConnectError::Dns,
                _ => ConnectError::Other,
            })?;
        let _ = tcp.set_nodelay(true);
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
    pub fn put(&self, upstream: Upstream) {
        if let Some(slot) = self.idle.get(upstream.provider) {
            if let Ok(mut idle) = slot.lock() {
                if idle.len() < MAX_IDLE_PER_PROVIDER {
                    idle.push((upstream.stream, Instant::now()));
                }
            }
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
                Some(next) => {
                    Timer::at(next).await;
                }
                None => returned.await,
            }
        }
    }

    /// Drops the connections idle for `max_idle_age` at `now`; returns when
    /// the next one expires. Connections are pushed as they go idle, so
    /// each provider's oldest is first.
    fn reap(&self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for slot in &self.idle {
            let Ok(mut idle) = slot.lock() else {
                continue;
            };
            idle.retain(|(_, since)| now.saturating_duration_since(*since) < self.max_idle_age);
            if let Some((_, oldest)) = idle.first() {
                let expiry = *oldest + self.max_idle_age;
                next = Some(next.map_or(expiry, |n| n.min(expiry)));
            }
        }
        next
    }
}
