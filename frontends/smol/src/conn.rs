//! One client connection: moves bytes between the sockets and the core's
//! `Exchange`, and carries out its outputs. No protocol decisions here.

use std::net::Shutdown as SocketShutdown;
use std::sync::Arc;
use std::time::Duration;

use arouter_core::exchange::{Event, Exchange, Input, Output};
use arouter_host::Host;
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use smol::net::TcpStream;
use smol::Timer;

use crate::clock::Clock;
use crate::shutdown::Shutdown;
use crate::upstream::{Pool, Upstream};

const READ_BUF: usize = 16 * 1024;
/// The output buffer keeps at most this much capacity between writes.
const KEEP_OUT_CAPACITY: usize = 1024 * 1024;
/// After our side closes, how long unread client bytes are drained so the
/// kernel does not answer them with a reset that destroys our response.
const LINGER: Duration = Duration::from_millis(500);
/// Once the shutdown grace is over, how long a write may still take: the
/// server stops waiting for connections shortly after, and a client that
/// does not read must not keep its call's usage from being recorded.
const FINAL_WRITE: Duration = Duration::from_secs(1);

enum Wake {
    Down(std::io::Result<usize>),
    Up(std::io::Result<usize>),
    Timeout,
    Shutdown,
    GraceOver,
}

/// Bytes read but not yet taken by the core (backpressure).
struct Pending {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Pending {
    fn new() -> Pending {
        Pending {
            buf: vec![0u8; READ_BUF],
            start: 0,
            end: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

pub struct Shared {
    pub host: Arc<Host>,
    pub pool: Pool,
    pub clock: Clock,
    pub shutdown: Arc<Shutdown>,
}

pub async fn serve(mut client: TcpStream, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let clock = shared.clock;
    let mut exchange = Exchange::new(shared.host.gateway.clone(), clock.now())
        .with_unix_origin(clock.unix_origin_ms())
        .with_request_id_prefix(&shared.host.request_id_prefix());
    let mut down = Pending::new();
    let mut up = Pending::new();
    let mut upstream: Option<Upstream> = None;
    let mut out = Vec::with_capacity(READ_BUF);
    let mut drain_sent = false;
    let mut grace_over_sent = false;
    let mut client_eof = false;
    let write_timeout = Duration::from_millis(shared.host.gateway.limits().idle_timeout_ms);
    // One timer, re-armed only when the core's deadline moves earlier:
    // registering a new timer with the reactor on every wake-up costs a
    // cross-thread notification. A timer that fires early is harmless (the
    // core answers a premature `Timeout` with its current deadline).
    let mut timer = Timer::never();
    let mut armed: Option<std::time::Instant> = None;
    loop {
        // Carry out everything the core asks for, until it waits.
        let deadline = loop {
            out.clear();
            if out.capacity() > KEEP_OUT_CAPACITY {
                // A large request or answer went through this buffer: give
                // the memory back rather than hold it for the connection's
                // life.
                out = Vec::with_capacity(READ_BUF);
            }
            match exchange.poll_output(&mut out) {
                Output::TransmitDownstream => {
                    let written =
                        write_within(&mut client, &out, write_timeout, &shared.shutdown).await;
                    if !written {
                        // A client that stops reading is gone as far as the
                        // core is concerned: the upstream is aborted and
                        // the usage so far billed.
                        client_eof = true;
                        let _ = exchange.handle_input(Input::DownstreamEof(clock.now()));
                    }
                }
                Output::TransmitUpstream => {
                    let failed = match upstream.as_mut() {
                        Some(u) => {
                            !write_within(&mut u.stream, &out, write_timeout, &shared.shutdown)
                                .await
                        }
                        None => true,
                    };
                    if failed {
                        let _ = exchange.handle_input(Input::UpstreamEof(clock.now()));
                    }
                }
                Output::Admit(request) => {
                    let admission = shared.host.keys.admit(&request, unix_ms());
                    let _ = exchange.handle_input(Input::Admission(clock.now(), admission));
                }
                Output::ConnectUpstream { provider, fresh } => {
                    up.start = 0;
                    up.end = 0;
                    let input = match shared.pool.get(provider, fresh).await {
                        Ok((conn, reused)) => {
                            upstream = Some(conn);
                            Input::UpstreamConnected {
                                now: clock.now(),
                                reused,
                            }
                        }
                        Err(e) => {
                            let name = shared
                                .host
                                .gateway
                                .providers()
                                .get(provider)
                                .map_or("", |p| p.name.as_str());
                            let now = std::time::Instant::now();
                            if let Some(line) = shared.host.unreachable.report(name, e, now) {
                                log::warn!("{line}");
                            }
                            Input::UpstreamFailed(clock.now(), e)
                        }
                    };
                    let _ = exchange.handle_input(input);
                }
                Output::ReleaseUpstream { reuse } => {
                    if let Some(conn) = upstream.take() {
                        if reuse && up.is_empty() {
                            shared.pool.put(conn);
                        }
                        // Otherwise dropping it closes the socket: that is
                        // how an abandoned upstream request is aborted.
                    }
                    up.start = 0;
                    up.end = 0;
                }
                Output::Event(event) => record(&shared.host, event),
                Output::Close => {
                    drop(upstream.take());
                    linger_close(client).await;
                    return;
                }
                Output::Wait(deadline) => break deadline,
            }
        };
        if shared.shutdown.is_set() && !drain_sent {
            drain_sent = true;
            let _ = exchange.handle_input(Input::Drain(clock.now()));
            continue;
        }
        if shared.shutdown.is_expired() && !grace_over_sent {
            grace_over_sent = true;
            let _ = exchange.handle_input(Input::GraceExpired(clock.now()));
            continue;
        }
        // Offer bytes the core could not take before.
        if !up.is_empty() && upstream.is_some() {
            if let Ok(taken) = exchange.handle_input(Input::Upstream(clock.now(), up.data())) {
                up.start += taken;
                if taken > 0 {
                    continue;
                }
            }
        }
        if !down.is_empty() {
            match exchange.handle_input(Input::Downstream(clock.now(), down.data())) {
                Ok(taken) => {
                    down.start += taken;
                    if taken > 0 {
                        continue;
                    }
                }
                Err(_) => return,
            }
        }
        let read_down = !client_eof && down.is_empty();
        let read_up = upstream.is_some() && up.is_empty();
        if read_down {
            down.start = 0;
            down.end = 0;
        }
        if read_up {
            up.start = 0;
            up.end = 0;
        }
        let wake = {
            let down_fut = async {
                if !read_down {
                    std::future::pending::<()>().await;
                }
                Wake::Down(client.read(&mut down.buf).await)
            };
            let up_fut = async {
                match upstream.as_mut() {
                    Some(u) if read_up => Wake::Up(u.stream.read(&mut up.buf).await),
                    _ => std::future::pending().await,
                }
            };
            if let Some(tick) = deadline {
                let at = clock.instant(tick);
                if armed.is_none_or(|current| at < current) {
                    timer.set_at(at);
                    armed = Some(at);
                }
            }
            let timer_fut = async {
                if armed.is_none() {
                    std::future::pending::<()>().await;
                }
                (&mut timer).await;
                Wake::Timeout
            };
            let stop = async {
                if !drain_sent {
                    shared.shutdown.wait().await;
                    return Wake::Shutdown;
                }
                if grace_over_sent {
                    std::future::pending::<()>().await;
                }
                shared.shutdown.wait_expired().await;
                Wake::GraceOver
            };
            up_fut.or(down_fut).or(timer_fut).or(stop).await
        };
        let now = clock.now();
        let result = match wake {
            Wake::Down(Ok(0)) | Wake::Down(Err(_)) => {
                client_eof = true;
                exchange.handle_input(Input::DownstreamEof(now))
            }
            Wake::Down(Ok(n)) => {
                down.end = n;
                continue;
            }
            Wake::Up(Ok(0)) | Wake::Up(Err(_)) => {
                drop(upstream.take());
                exchange.handle_input(Input::UpstreamEof(now))
            }
            Wake::Up(Ok(n)) => {
                up.end = n;
                continue;
            }
            Wake::Timeout => {
                armed = None;
                exchange.handle_input(Input::Timeout(now))
            }
            Wake::Shutdown | Wake::GraceOver => continue,
        };
        if result.is_err() {
            return;
        }
    }
}

fn record(host: &Host, event: Event) {
    match event {
        Event::Access(log) => log::debug!(
            target: "access",
            "{} {} {} {} key={} id={} model={} {}ms",
            log.method,
            log.path,
            log.status,
            log.endpoint,
            log.caller,
            log.request_id,
            log.model.as_deref().unwrap_or("-"),
            log.finished.since(log.started)
        ),
        Event::Usage(usage) => {
            log::debug!(
                target: "usage",
                "{}/{} prompt={} completion={} complete={}",
                usage.provider,
                usage.model,
                usage.usage.map_or(0, |u| u.prompt_tokens),
                usage.usage.map_or(0, |u| u.completion_tokens),
                usage.complete
            );
            host.recorder.record(usage, (unix_ms() / 1000) as i64);
        }
    }
}

/// Writes everything, or gives up after `timeout` (or `FINAL_WRITE` once
/// the shutdown grace is over) without the write finishing; false when the
/// peer failed or stalled. Almost every write completes at once, so the
/// timers (reactor registrations) are only set up for one that would block.
async fn write_within<W: futures_lite::AsyncWrite + Unpin>(
    stream: &mut W,
    bytes: &[u8],
    timeout: Duration,
    shutdown: &Shutdown,
) -> bool {
    let mut write = std::pin::pin!(stream.write_all(bytes));
    if let Some(result) = futures_lite::future::poll_once(&mut write).await {
        return result.is_ok();
    }
    let finish = async { write.await.is_ok() };
    let stall = async {
        Timer::after(timeout).await;
        false
    };
    let grace_over = async {
        shutdown.wait_expired().await;
        Timer::after(FINAL_WRITE).await;
        false
    };
    finish.or(stall).or(grace_over).await
}

async fn linger_close(mut stream: TcpStream) {
    let _ = stream.flush().await;
    let _ = stream.shutdown(SocketShutdown::Write);
    let mut sink = [0u8; 4096];
    let drain = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    drain
        .or(async {
            Timer::after(LINGER).await;
        })
        .await;
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
