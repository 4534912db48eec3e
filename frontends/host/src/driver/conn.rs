//! One client connection: moves bytes between the sockets and the core's
//! `Exchange`, and carries out its outputs. No protocol decisions here.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use arouter_core::api::Scope;
use arouter_core::exchange::{ConnectError, Event, Exchange, Input, Output, ReserveRequest};
use futures_lite::{AsyncReadExt, FutureExt};

use super::io::{linger_close, unix_ms, write_within, Pending, READ_BUF, READ_START};
use super::record::{observe_usage, record, settle};
use super::runtime::{Runtime, Timer};
use super::side::{Client, MemorySide};
use super::tally::Tally;
use super::Worker;
use crate::accounts;
use crate::keys::Verdict;
use crate::ledger::Held;
use crate::metrics::{Gauge, Share};
use crate::shutdown;
use crate::store::Intent;
use crate::upstream::Upstream;

/// The output buffer keeps at most this much capacity between writes.
const KEEP_OUT_CAPACITY: usize = 1024 * 1024;

type Connecting<'a, S> = Pin<Box<dyn Future<Output = Result<Upstream<S>, ConnectError>> + 'a>>;

enum Wake<S> {
    Down(std::io::Result<usize>),
    Up(std::io::Result<usize>),
    Connected(Result<Upstream<S>, ConnectError>),
    Timeout,
    Shutdown,
    GraceOver,
}

/// What the dispatch of the core's outputs ended with.
enum Drained {
    /// The core waits for input or until this deadline.
    Wait(Option<arouter_core::Tick>),
    /// The client connection is closed.
    Closed,
}

struct Conn<'a, R: Runtime> {
    worker: &'a Worker<R>,
    exchange: Exchange,
    client: Option<Client<R::Tcp>>,
    /// The request in memory, when this connection serves a batch request.
    memory: Option<Rc<MemorySide>>,
    down: Pending,
    up: Pending,
    upstream: Option<Upstream<R::Tcp>>,
    /// A connect in progress: polled beside the client's socket, so a
    /// client that leaves meanwhile is noticed at once.
    connecting: Option<Connecting<'a, R::Tcp>>,
    /// The provider of the connect in progress, for messages.
    provider: Option<usize>,
    out: Vec<u8>,
    drain_sent: bool,
    grace_over_sent: bool,
    client_eof: bool,
    /// One timer, re-armed only when the core's deadline moves earlier: a
    /// timer that fires early is harmless (the core answers a premature
    /// `Timeout` with its current deadline).
    timer: R::Timer,
    armed: Option<Instant>,
    /// Kept across waits, so waiting allocates no listener per event.
    stop: shutdown::Waiter,
    /// The credit the request in progress holds (`Output::Reserve`):
    /// charged by its usage records, given back at its access record or
    /// when the connection ends (dropped with it).
    held: Held,
    /// The request in progress, for its access record.
    tally: Tally,
    /// The call-journal intents of the request in progress (one per
    /// attempt that went upstream): closed with its usage records.
    intents: Vec<String>,
    /// With intents open, the request's usage records wait for its end,
    /// to be handed to the recorder with them in one batch.
    settling: Vec<arouter_core::exchange::UsageRecord>,
    /// This connection's share of the in-flight requests gauge: one from
    /// a request's first bytes taken to its access record (pipelined
    /// requests read in one go count as one until the first is answered).
    in_flight: Share<'a>,
    /// Its share of the in-flight streams gauge: one while an event
    /// stream is relayed to the client.
    streaming: Share<'a>,
}

fn unix_secs() -> i64 {
    i64::try_from(unix_ms() / 1000).unwrap_or(i64::MAX)
}

/// Serves one client connection until it closes.
pub async fn serve<R: Runtime>(client: R::Tcp, worker: &Worker<R>) {
    worker.rt.set_nodelay(&client);
    run(Client::Socket(client), None, worker).await;
}

/// Serves one request given in memory (a batch request) until the
/// connection closes after its answer; the answer and usage are left on
/// `side`.
pub async fn serve_memory<R: Runtime>(side: Rc<MemorySide>, worker: &Worker<R>) {
    run(Client::Memory(side.clone()), Some(side), worker).await;
}

async fn run<R: Runtime>(
    client: Client<R::Tcp>,
    memory: Option<Rc<MemorySide>>,
    worker: &Worker<R>,
) {
    let shared = &worker.shared;
    let clock = shared.clock;
    let mut exchange = Exchange::new(shared.host.gateway.clone(), clock.now())
        .with_unix_origin(clock.unix_origin_ms())
        .with_request_id_prefix(&shared.host.request_id_prefix());
    // A batch request needs no journal (see `journal_attempt`).
    if worker.journal.is_some() && memory.is_none() {
        exchange = exchange.with_call_journal();
    }
    let mut conn = Conn {
        worker,
        exchange,
        client: Some(client),
        memory,
        // The client side starts at full size: on glommio, a request that
        // filled a smaller buffer delayed noticing the client leave by over
        // a second (client_disconnect_aborts_the_upstream_within_a_second);
        // pages of it no read touched are often not even resident.
        down: Pending::new(READ_BUF),
        up: Pending::new(READ_START),
        upstream: None,
        connecting: None,
        provider: None,
        // Grows (once) to the largest output the core writes at a time.
        out: Vec::with_capacity(READ_START),
        drain_sent: false,
        grace_over_sent: false,
        client_eof: false,
        timer: worker.rt.timer(),
        armed: None,
        stop: shutdown::Waiter::default(),
        held: Held::default(),
        tally: Tally::default(),
        intents: Vec::new(),
        settling: Vec::new(),
        in_flight: Share::new(&worker.metrics, Gauge::Requests),
        streaming: Share::new(&worker.metrics, Gauge::Streams),
    };
    conn.run().await;
}

impl<R: Runtime> Drop for Conn<'_, R> {
    /// A connection ended between a request's usage records and its end
    /// (a shutdown cutting it): the records are stored with the intents
    /// they close. Intents with no records stay open, to be billed as
    /// interrupted calls, since their provider may have charged.
    fn drop(&mut self) {
        if !self.settling.is_empty() {
            let intents = std::mem::take(&mut self.intents);
            settle(self.worker, self.settling.drain(..), intents);
        }
    }
}

impl<'a, R: Runtime> Conn<'a, R> {
    async fn run(&mut self) {
        loop {
            let deadline = match self.drain_outputs().await {
                Drained::Wait(deadline) => deadline,
                Drained::Closed => return,
            };
            match self.offer() {
                Some(true) => continue,
                Some(false) => {}
                None => return,
            }
            let wake = self.wait(deadline).await;
            if self.on_wake(wake).is_err() {
                return;
            }
        }
    }

    fn now(&self) -> arouter_core::Tick {
        self.worker.shared.clock.now()
    }

    fn input(&mut self, input: Input<'_>) {
        let _ = self.exchange.handle_input(input);
    }

    /// Carries out everything the core asks for, until it waits.
    async fn drain_outputs(&mut self) -> Drained {
        let shared = &self.worker.shared;
        loop {
            self.out.clear();
            if self.out.capacity() > KEEP_OUT_CAPACITY {
                // A large request or answer went through this buffer: give
                // the memory back rather than hold it for the connection's
                // life.
                self.out = Vec::with_capacity(READ_START);
            }
            match self.exchange.poll_output(&mut self.out) {
                Output::TransmitDownstream => {
                    self.tally.wrote();
                    if self.exchange.streaming() {
                        self.streaming.start();
                    }
                    let written = match self.client.as_mut() {
                        Some(client) => {
                            let stall = self.worker.settings.write_stall;
                            write_within(
                                &self.worker.rt,
                                client,
                                &self.out,
                                stall,
                                &shared.shutdown,
                            )
                            .await
                        }
                        None => false,
                    };
                    if !written {
                        // A client that stops reading is gone as far as the
                        // core is concerned: the upstream is aborted and
                        // the usage so far billed.
                        self.client_eof = true;
                        let now = self.now();
                        self.input(Input::DownstreamEof(now));
                    }
                }
                Output::TransmitUpstream => {
                    let written = match self.upstream.as_mut() {
                        Some(u) => {
                            let stall = self.worker.settings.write_stall;
                            let rt = &self.worker.rt;
                            write_within(rt, &mut u.stream, &self.out, stall, &shared.shutdown)
                                .await
                        }
                        None => false,
                    };
                    if !written {
                        let now = self.now();
                        self.input(Input::UpstreamEof(now));
                    }
                }
                Output::Admit(request) => {
                    let keys = &shared.host.keys;
                    let verdict = match &self.memory {
                        // A batch request is admitted as the key that made
                        // its batch (its secret is not stored).
                        Some(side) => keys.verdict_key_id(
                            &self.worker.keys,
                            side.key_id,
                            request.scope,
                            unix_ms(),
                        ),
                        None => keys.verdict_on(&self.worker.keys, &request, unix_ms()),
                    };
                    let admission = match (verdict, &shared.host.limiter) {
                        (Verdict::Done(admission), _) => admission,
                        // A limit shared through Redis: one round trip,
                        // off this thread.
                        (Verdict::Limit(pending), Some(limiter)) => {
                            let limiter = Arc::clone(limiter);
                            let now = unix_ms();
                            self.worker
                                .rt
                                .unblock(move || limiter.decide(pending, now))
                                .await
                        }
                        (Verdict::Limit(pending), None) => pending.check_locally(unix_ms()),
                    };
                    // Only calls: management answers from the store (or
                    // 503) itself, and /metrics must say the store is down.
                    // A batch's requests wait in the store for it anyway.
                    let admission = match (&self.memory, request.scope) {
                        (None, Scope::Inference) => shared.host.store_policy(admission),
                        _ => admission,
                    };
                    let now = self.now();
                    self.input(Input::Admission(now, admission));
                }
                Output::Manage(request) => {
                    let host = shared.host.clone();
                    let now_secs = i64::try_from(unix_ms() / 1000).unwrap_or(i64::MAX);
                    let result = self
                        .worker
                        .rt
                        .unblock(move || accounts::execute(&host, request, now_secs))
                        .await;
                    let now = self.now();
                    self.input(Input::Managed(now, result));
                }
                Output::Recall(recall) => {
                    let host = shared.host.clone();
                    let result = self
                        .worker
                        .rt
                        .unblock(move || crate::responses::recall(&host, &recall, unix_secs()))
                        .await;
                    let now = self.now();
                    self.input(Input::Recalled(now, result));
                }
                Output::Keep(kept) => {
                    // Before the answer's last bytes go out (see
                    // `Output::Keep`): the client cannot ask for it sooner.
                    let host = shared.host.clone();
                    self.worker
                        .rt
                        .unblock(move || crate::responses::keep(&host, &kept, unix_secs()))
                        .await;
                }
                Output::Reserve(request) => {
                    // What an earlier attempt held goes back first.
                    self.held = Held::default();
                    // A batch request's first attempt spends what its
                    // batch reserved for it at create time.
                    let before = self.memory.as_ref().and_then(|m| m.held.take());
                    let result = match before {
                        Some(held) => {
                            self.held = held;
                            Ok(())
                        }
                        None => self.reserve(&request).await,
                    };
                    if result.is_ok() {
                        self.journal_attempt(request.key_id, request.max.0).await;
                    }
                    let now = self.now();
                    self.input(Input::Reserved(now, result));
                }
                Output::ConnectUpstream { provider, fresh } => {
                    self.tally.upstream_connect();
                    self.connect(provider, fresh);
                }
                Output::ReleaseUpstream { reuse } => {
                    self.tally.upstream_release();
                    self.release(reuse);
                }
                Output::Event(event) => {
                    let host = &shared.host;
                    let ends_request = matches!(event, Event::Access(_));
                    if let Event::Usage(usage) = &event {
                        host.ledger.charge(
                            &host.keys,
                            &self.worker.keys,
                            &mut self.held,
                            usage,
                            unix_secs(),
                        );
                    }
                    match (event, &self.memory) {
                        (Event::Usage(usage), Some(side)) => {
                            self.tally.add(&usage);
                            side.usage.borrow_mut().push(usage);
                        }
                        (Event::Usage(usage), None) if !self.intents.is_empty() => {
                            observe_usage(self.worker, &usage, &mut self.tally);
                            self.settling.push(usage);
                        }
                        (event, _) => record(self.worker, event, &mut self.tally),
                    }
                    if ends_request {
                        if !self.intents.is_empty() {
                            let intents = std::mem::take(&mut self.intents);
                            settle(self.worker, self.settling.drain(..), intents);
                        }
                        let held = std::mem::take(&mut self.held);
                        match &self.memory {
                            // A batch request's credit goes back to its
                            // side: if the request is retried, its next run
                            // spends it again rather than reserving anew.
                            Some(side) => *side.held.borrow_mut() = Some(held),
                            None => drop(held),
                        }
                        self.in_flight.end();
                        self.streaming.end();
                    }
                }
                Output::Close => {
                    self.connecting = None;
                    drop(self.upstream.take());
                    if let Some(Client::Socket(client)) = self.client.take() {
                        let linger = self.worker.settings.linger;
                        linger_close(&self.worker.rt, client, linger).await;
                    }
                    return Drained::Closed;
                }
                Output::Wait(deadline) => return Drained::Wait(deadline),
            }
        }
    }

    /// Writes the attempt about to go upstream to the call journal, and
    /// waits until it is durable (one group commit; see `crate::journal`).
    /// A batch request needs none: its batch's row is its durable record,
    /// and its usage is stored with its result in one transaction.
    async fn journal_attempt(&mut self, key_id: Option<i64>, reserved_micros: u64) {
        let (Some(journal), None) = (&self.worker.journal, &self.memory) else {
            return;
        };
        let Some(call) = self.exchange.call_intent() else {
            return;
        };
        let host = &self.worker.shared.host;
        let provider = host
            .gateway
            .providers()
            .get(call.provider)
            .map_or_else(String::new, |p| p.name.clone());
        let id = journal.next_id();
        let ticket = journal.write(Intent {
            id: id.clone(),
            created_at: unix_secs(),
            key_id,
            request_id: call.request_id.to_string(),
            provider,
            model: call.model,
            reserved_micros,
            prompt_tokens: call.prompt_tokens,
            prompt_micros: call.prompt_cost.0,
            stream: call.stream,
        });
        self.intents.push(id);
        journal.durable(ticket).await;
    }

    /// Sets credit aside for an attempt. On a store that keeps leases, a
    /// refusal first asks the store for more of the refusing line (off
    /// this thread), then tries again; each line is asked once, so a call
    /// both lines refuse (a key with a limit on a prepaid gateway, neither
    /// leased yet) is not refused for the second after the first is met.
    async fn reserve(
        &mut self,
        request: &ReserveRequest,
    ) -> Result<(), arouter_core::exchange::Refusal> {
        let mut asked = Vec::new();
        loop {
            let host = &self.worker.shared.host;
            let refusal =
                match host
                    .ledger
                    .reserve(&host.keys, &self.worker.keys, request, unix_secs())
                {
                    Ok(held) => {
                        self.held = held;
                        return Ok(());
                    }
                    Err(refusal) => refusal,
                };
            if host.leases.is_none() || asked.contains(&refusal) {
                return Err(refusal);
            }
            asked.push(refusal);
            if !self.top_up(refusal, request).await? {
                return Err(refusal);
            }
        }
    }

    /// Asks the store for more of the line that refused `request`, off
    /// this thread; whether it granted any.
    async fn top_up(
        &self,
        refusal: arouter_core::exchange::Refusal,
        request: &ReserveRequest,
    ) -> Result<bool, arouter_core::exchange::Refusal> {
        let shared = self.worker.shared.host.clone();
        let (key_id, need) = (request.key_id, request.max.0);
        self.worker
            .rt
            .unblock(move || match shared.leases.as_ref() {
                Some(leases) => leases.top_up_refused(
                    &shared.ledger,
                    &shared.keys,
                    refusal,
                    key_id,
                    need,
                    unix_secs(),
                ),
                None => Ok(false),
            })
            .await
    }

    /// A pooled connection answers at once; a new one is connected while
    /// the connection keeps reading its client.
    fn connect(&mut self, provider: usize, fresh: bool) {
        self.up.clear();
        self.connecting = None;
        drop(self.upstream.take());
        if !fresh {
            if let Some(conn) = self.worker.pool.take(provider) {
                self.upstream = Some(conn);
                let now = self.now();
                self.input(Input::UpstreamConnected { now, reused: true });
                return;
            }
        }
        self.provider = Some(provider);
        self.connecting = Some(Box::pin(self.worker.pool.connect(provider)));
    }

    fn connected(&mut self, result: Result<Upstream<R::Tcp>, ConnectError>) {
        self.connecting = None;
        let now = self.now();
        match result {
            Ok(conn) => {
                self.upstream = Some(conn);
                self.input(Input::UpstreamConnected { now, reused: false });
            }
            Err(e) => {
                let host = &self.worker.shared.host;
                let name = self
                    .provider
                    .and_then(|p| host.gateway.providers().get(p))
                    .map_or("", |p| p.name.as_str());
                if let Some(line) = host.unreachable.report(name, e, Instant::now()) {
                    log::warn!("{line}");
                }
                self.input(Input::UpstreamFailed(now, e));
            }
        }
    }

    fn release(&mut self, reuse: bool) {
        // A connect still in progress is abandoned by dropping it.
        self.connecting = None;
        if let Some(conn) = self.upstream.take() {
            if reuse && self.up.is_empty() {
                self.worker.pool.put(conn);
            }
            // Otherwise dropping it closes the socket: that is how an
            // abandoned upstream request is aborted.
        }
        self.up.clear();
    }

    /// Tells the core about shutdown, and offers bytes it could not take
    /// before. `Some(true)`: there is output to carry out again; `None`:
    /// the exchange is over.
    fn offer(&mut self) -> Option<bool> {
        let shutdown = &self.worker.shared.shutdown;
        let now = self.now();
        if shutdown.is_set() && !self.drain_sent {
            self.drain_sent = true;
            self.input(Input::Drain(now));
            return Some(true);
        }
        if shutdown.is_expired() && !self.grace_over_sent {
            self.grace_over_sent = true;
            self.input(Input::GraceExpired(now));
            return Some(true);
        }
        if !self.up.is_empty() && self.upstream.is_some() {
            if let Ok(taken) = self
                .exchange
                .handle_input(Input::Upstream(now, self.up.data()))
            {
                self.up.start += taken;
                if taken > 0 {
                    return Some(true);
                }
            }
        }
        if !self.down.is_empty() {
            let taken = self
                .exchange
                .handle_input(Input::Downstream(now, self.down.data()))
                .ok()?;
            self.down.start += taken;
            if taken > 0 {
                self.in_flight.start();
                return Some(true);
            }
        }
        Some(false)
    }

    /// Waits for the first of: client bytes, provider bytes, a finished
    /// connect, the core's deadline, a shutdown step.
    async fn wait(&mut self, deadline: Option<arouter_core::Tick>) -> Wake<R::Tcp> {
        let read_down = !self.client_eof && self.down.is_empty() && self.client.is_some();
        let read_up = self.upstream.is_some() && self.up.is_empty();
        if read_down {
            self.down.clear();
        }
        if read_up {
            self.up.clear();
        }
        if let Some(tick) = deadline {
            let at = self.worker.shared.clock.instant(tick);
            if self.armed.is_none_or(|current| at < current) {
                self.timer.set_at(at);
                self.armed = Some(at);
            }
        }
        let shutdown = &self.worker.shared.shutdown;
        let waiter = &mut self.stop;
        let (drain_sent, grace_over_sent, armed) =
            (self.drain_sent, self.grace_over_sent, self.armed.is_some());
        let down_fut = async {
            match self.client.as_mut() {
                Some(client) if read_down => Wake::Down(client.read(self.down.space()).await),
                _ => std::future::pending().await,
            }
        };
        let up_fut = async {
            match self.upstream.as_mut() {
                Some(u) if read_up => Wake::Up(u.stream.read(self.up.space()).await),
                _ => std::future::pending().await,
            }
        };
        let connect_fut = async {
            match self.connecting.as_mut() {
                Some(connecting) => Wake::Connected(connecting.await),
                None => std::future::pending().await,
            }
        };
        let timer = &mut self.timer;
        let timer_fut = async {
            if !armed {
                std::future::pending::<()>().await;
            }
            timer.await;
            Wake::Timeout
        };
        let stop = async {
            if !drain_sent {
                shutdown.wait_with(waiter).await;
                return Wake::Shutdown;
            }
            if grace_over_sent {
                std::future::pending::<()>().await;
            }
            shutdown.wait_expired_with(waiter).await;
            Wake::GraceOver
        };
        up_fut
            .or(down_fut)
            .or(connect_fut)
            .or(timer_fut)
            .or(stop)
            .await
    }

    /// Hands what woke the connection to the core; `Err` when the exchange
    /// is over.
    fn on_wake(&mut self, wake: Wake<R::Tcp>) -> Result<(), ()> {
        let now = self.now();
        let result = match wake {
            Wake::Down(Ok(0)) | Wake::Down(Err(_)) => {
                self.client_eof = true;
                self.exchange.handle_input(Input::DownstreamEof(now))
            }
            Wake::Down(Ok(n)) => {
                self.down.read(n);
                return Ok(());
            }
            Wake::Up(Ok(0)) | Wake::Up(Err(_)) => {
                drop(self.upstream.take());
                self.exchange.handle_input(Input::UpstreamEof(now))
            }
            Wake::Up(Ok(n)) => {
                self.up.read(n);
                return Ok(());
            }
            Wake::Connected(result) => {
                self.connected(result);
                return Ok(());
            }
            Wake::Timeout => {
                self.armed = None;
                self.exchange.handle_input(Input::Timeout(now))
            }
            Wake::Shutdown | Wake::GraceOver => return Ok(()),
        };
        result.map(|_| ()).map_err(|_| ())
    }
}
