//! Allocation budget of a passed-through SSE event on the real serving
//! path: the binary's own runtime selection and serving code (`select.rs`,
//! `server.rs`, the glommio frontend, the host driver and upstream pool)
//! run in-process on loopback, in front of a provider streaming an OpenAI
//! chat completion of `FEW` or `MANY` events. A counting allocator records
//! a backtrace for every allocation the serving thread makes during a
//! request; the gateway's allocations for the long stream minus those for
//! the short one, same request otherwise, per extra event, must be zero:
//! relaying an event allocates nothing in the gateway (core, host driver,
//! upstream pool), on either runtime.
//!
//! What the runtime's reactor allocates is counted apart and printed, not
//! asserted: it depends on how often the thread sleeps and wakes (timing),
//! and both reactors allocate on every wake-up (async-io: the wakers list
//! and a timer-map split; glommio 0.9: preemption-timer and read sources,
//! its timer map), which no change in the gateway can remove.
//!
//! Counts, not times. The only waiting is for the serving thread to finish
//! a request's tail (usage record, pool release) before its count is read.
//! `ALLOC_TRACE=1` prints the backtrace of each gateway allocation made
//! while the long stream is relayed.
#![cfg(target_os = "linux")]

#[allow(dead_code)]
#[path = "../src/select.rs"]
mod select;
#[allow(dead_code)]
#[path = "../src/server.rs"]
mod server;
#[path = "../src/tcp.rs"]
mod tcp;

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arouter_host::cli::{Cli, Command, RuntimeChoice};
use arouter_host::driver::Shared;
use arouter_host::shutdown::Shutdown;
use arouter_host::{Config, Host};
use clap::Parser;

// ---- a counting allocator, per thread, readable from another thread ----

const SLOTS: usize = 512;
static TIDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
static COUNTS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
/// The thread whose allocations get a backtrace (0: none), and the traces.
static TRACED: AtomicI32 = AtomicI32::new(0);
static TRACES: Mutex<Vec<Backtrace>> = Mutex::new(Vec::new());

thread_local! {
    // Const-initialized, no destructor: reading them never allocates.
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
}

fn tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

fn count_one() {
    let _ = SLOT.try_with(|slot| {
        let mut i = slot.get();
        if i == usize::MAX {
            i = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
            slot.set(i);
            if i < SLOTS {
                TIDS[i].store(tid(), Ordering::Release);
            }
        }
        if i < SLOTS {
            COUNTS[i].fetch_add(1, Ordering::Relaxed);
        }
    });
    let traced = TRACED.load(Ordering::Relaxed);
    if traced != 0 && traced == tid() {
        let _ = IN_TRACE.try_with(|busy| {
            // The capture's own allocations are not traced.
            if !busy.replace(true) {
                // Symbolized after the request, not here: that would slow
                // the thread enough to change what it does.
                let trace = Backtrace::force_capture();
                if let Ok(mut traces) = TRACES.lock() {
                    traces.push(trace);
                }
                busy.set(false);
            }
        });
    }
}

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarding the caller's layout to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations so far by the thread `tid`.
fn allocs_of(tid: i32) -> u64 {
    let used = NEXT_SLOT.load(Ordering::Relaxed).min(SLOTS);
    (0..used)
        .find(|&i| TIDS[i].load(Ordering::Acquire) == tid)
        .map_or(0, |i| COUNTS[i].load(Ordering::Relaxed))
}

// ---- the upstream: an OpenAI-style provider streaming FEW or MANY events ----

const FEW: usize = 8;
const MANY: usize = 200;
const MODEL: &str = "gpt-4o-mini";

/// The user message that asks for a stream of `events` content events;
/// both have the same length, so the requests differ in no size.
fn prompt(events: usize) -> String {
    format!("stream {events:04} events")
}

/// The SSE events of a chat completion with `events` content deltas, as
/// OpenAI sends them (role first, then content, finish, usage, `[DONE]`).
fn sse_events(events: usize) -> Vec<String> {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        format!(
            "data: {}\n\n",
            serde_json::json!({
                "id": "chatcmpl-alloc", "object": "chat.completion.chunk",
                "created": 1, "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
                "usage": null
            })
        )
    };
    let null = serde_json::Value::Null;
    let mut sse = vec![chunk(
        serde_json::json!({"role": "assistant", "content": ""}),
        null.clone(),
    )];
    for i in 0..events {
        sse.push(chunk(
            serde_json::json!({"content": format!(" w{:03}", i % 1000)}),
            null.clone(),
        ));
    }
    sse.push(chunk(serde_json::json!({}), serde_json::json!("stop")));
    let usage = serde_json::json!({
        "id": "chatcmpl-alloc", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": events, "total_tokens": 9 + events}
    });
    sse.push(format!("data: {usage}\n\n"));
    sse.push("data: [DONE]\n\n".into());
    sse
}

/// The provider, on plain threads with blocking sockets. Not the replay
/// server: that one paces its events with async-io timers, and async-io's
/// reactor is one per process, so the smol serving thread would do (and be
/// counted for) the upstream's timer bookkeeping, about one allocation per
/// event that is not the gateway's. Events are paced (1 ms apart), so each
/// arrives in its own read and leaves in its own write: the per-event
/// path, not one batch.
fn provider() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind provider");
    let addr = listener.local_addr().expect("provider addr");
    std::thread::Builder::new()
        .name("provider".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || serve_provider(conn));
            }
        })
        .expect("provider thread");
    addr
}

fn serve_provider(mut conn: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let Some(body) = read_request(&mut conn, &mut buf) else {
            return;
        };
        let events = [FEW, MANY]
            .into_iter()
            .find(|&n| body.contains(&prompt(n)))
            .expect("a request for one of the two streams");
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
                    transfer-encoding: chunked\r\n\r\n";
        if conn.write_all(head.as_bytes()).is_err() {
            return;
        }
        let events = sse_events(events);
        let last = events.len() - 1;
        for (i, event) in events.iter().enumerate() {
            std::thread::sleep(Duration::from_millis(1));
            let mut chunk = format!("{:x}\r\n{event}\r\n", event.len());
            // The body's end goes with the last event, as one write: the
            // gateway then sees the connection clean, and pools it, as
            // soon as the stream ends (else whether it is reused depends
            // on timing).
            if i == last {
                chunk += "0\r\n\r\n";
            }
            if conn.write_all(chunk.as_bytes()).is_err() {
                return;
            }
        }
    }
}

/// One request's body (`None` when the gateway closed the connection).
fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("the gateway sends a content-length");
            if buf.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned();
                buf.drain(..end + 4 + length);
                return Some(body);
            }
        }
        match conn.read(&mut chunk) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

// ---- the gateway, in-process, as the binary starts it ----

const MASTER: &str = "sk-alloc-master-0123456789abcdef";

struct Gateway {
    addr: SocketAddr,
    shutdown: Arc<Shutdown>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Gateway {
    /// Serves on a thread named `serve-{name}` (with smol, the serving thread).
    fn start(runtime: RuntimeChoice, name: &str, data: &Path, upstream: &str) -> Gateway {
        let cli = Cli::parse_from([
            "arouter",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--data-dir",
            data.to_str().expect("utf-8 temp dir"),
            "--master-key",
            MASTER,
            "--openai-api-key",
            "sk-upstream",
            "--openai-base-url",
            &format!("{upstream}/v1"),
        ]);
        let Command::Serve(args) = &cli.command else {
            panic!("the arguments above name `serve`");
        };
        let config = Config::from_sources(args, &|_| None).expect("config");
        let chosen = select::choose(runtime).expect("runtime usable here");
        let host = Arc::new(Host::start(config).expect("host"));
        let listening = select::Listening::bind(chosen, &host.config).expect("bind");
        let addr = listening.local_addr().expect("local addr");
        let shutdown = Arc::new(Shutdown::default());
        let shared = Arc::new(Shared::new(host.clone(), shutdown.clone()).expect("shared"));
        let thread = std::thread::Builder::new()
            .name(format!("serve-{name}"))
            .spawn(move || {
                let served = listening.serve(shared);
                host.shutdown();
                served
            })
            .expect("serving thread");
        Gateway {
            addr,
            shutdown,
            thread: Some(thread),
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread of this process named `name` (as `/proc` shows it: the
/// kernel keeps 15 bytes of a thread's name).
fn thread_named(name: &str) -> Option<i32> {
    let name = &name[..name.len().min(15)];
    std::fs::read_dir("/proc/self/task").ok()?.find_map(|task| {
        let task = task.ok()?;
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        (comm.trim_end() == name).then(|| task.file_name().to_str()?.parse().ok())?
    })
}

/// Waits for the serving thread to be started and named.
fn wait_for_thread(name: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(tid) = thread_named(name) {
            return tid;
        }
        assert!(Instant::now() < deadline, "no thread named {name}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `tid` is asleep (blocked waiting for work), from its `stat`.
fn asleep(tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(state == 'S')
        })
        .unwrap_or(false)
}

/// The serving thread's count once it is done with what it was given: asleep
/// and not allocating over several looks. (Waiting for it, not timing it.)
fn settled_allocs(tid: i32) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = allocs_of(tid);
    let mut quiet = 0;
    while quiet < 5 {
        assert!(Instant::now() < deadline, "serving thread never settled");
        std::thread::sleep(Duration::from_millis(20));
        let now = allocs_of(tid);
        quiet = if now == last && asleep(tid) {
            quiet + 1
        } else {
            0
        };
        last = now;
    }
    last
}

/// One streamed chat completion on `client`; returns the content events
/// the client received.
fn stream(client: &mut TcpStream, events: usize) -> usize {
    let body = serde_json::json!({
        "model": format!("openai/{MODEL}"),
        "stream": true,
        "messages": [{"role": "user", "content": prompt(events)}]
    })
    .to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {MASTER}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    client.write_all(request.as_bytes()).expect("send request");
    let mut response = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while !response.ends_with(b"\r\n0\r\n\r\n") {
        // glommio's executor in this process uses signals: a blocking read
        // on another thread can see EINTR, which only means "try again".
        let n = match client.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            result => result.expect("read response"),
        };
        assert!(
            n > 0,
            "gateway closed the connection mid-response: {}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "unexpected response: {text}"
    );
    assert!(
        text.contains("data: [DONE]"),
        "stream did not finish: {text}"
    );
    text.matches("\"content\":\" w").count()
}

/// Allocations of one request on the serving thread, by who made them.
#[derive(Debug, Default)]
struct Allocations {
    /// The gateway's: core, host driver, upstream pool, the libraries
    /// they call.
    gateway: u64,
    /// The runtime's reactor and executor bookkeeping.
    runtime: u64,
    /// The gateway's, by their innermost gateway frames, for the message
    /// when two requests differ.
    sites: std::collections::BTreeMap<String, u64>,
}

/// Where two requests' gateway allocations differ.
fn sites_differing(a: &Allocations, b: &Allocations) -> String {
    let mut out = String::new();
    for site in a.sites.keys().chain(b.sites.keys()) {
        let (x, y) = (
            a.sites.get(site).unwrap_or(&0),
            b.sites.get(site).unwrap_or(&0),
        );
        if x != y && !out.contains(site.as_str()) {
            out += &format!("\n  {x} vs {y}: {site}");
        }
    }
    out
}

/// The innermost three gateway frames of a trace.
fn gateway_site(trace: &str) -> String {
    trace
        .lines()
        .filter_map(|line| line.trim_start().split_once(": ").map(|(_, frame)| frame))
        .filter(|frame| {
            GATEWAY_CRATES
                .iter()
                .any(|c| frame.trim_start_matches('<').starts_with(c))
        })
        .filter(|frame| !frame.contains("count_one") && !frame.contains("Counting"))
        .take(3)
        .collect::<Vec<_>>()
        .join(" <- ")
}

/// Crates of the runtimes themselves.
const RUNTIME_CRATES: [&str; 7] = [
    "glommio::",
    "async_io::",
    "async_net::",
    "async_executor::",
    "async_task::",
    "polling::",
    "scoped_tls::",
];

/// The gateway's code: the core, the host, the frontends (this file's
/// copies of `select.rs` and `server.rs` included).
const GATEWAY_CRATES: [&str; 4] = [
    "arouter_core::",
    "arouter_host::",
    "arouter_glommio::",
    "alloc_per_event::",
];

/// Whether an allocation is the runtime's: walking out from the
/// allocation, a runtime frame comes before any of the gateway's (the
/// libraries in between, collections, queues, slabs, are whoever called
/// them). This file's allocator frames are skipped.
fn is_runtimes(trace: &str) -> bool {
    let frames = trace
        .lines()
        .filter_map(|line| line.trim_start().split_once(": ").map(|(_, frame)| frame))
        .map(|frame| frame.trim_start_matches('<'))
        .filter(|frame| !frame.starts_with("alloc_per_event::count_one"))
        .filter(|frame| !frame.starts_with("alloc_per_event::Counting"));
    for frame in frames {
        if RUNTIME_CRATES.iter().any(|c| frame.starts_with(c)) {
            return true;
        }
        if GATEWAY_CRATES.iter().any(|c| frame.starts_with(c)) {
            return false;
        }
    }
    false
}

/// Serving-thread allocations of one whole streamed request of `events`.
fn allocs_for(client: &mut TcpStream, serving: i32, events: usize) -> Allocations {
    settled_allocs(serving);
    TRACED.store(serving, Ordering::SeqCst);
    assert_eq!(stream(client, events), events, "events relayed");
    settled_allocs(serving);
    TRACED.store(0, Ordering::SeqCst);
    let traces = std::mem::take(&mut *TRACES.lock().expect("traces"));
    let print = std::env::var_os("ALLOC_TRACE").is_some();
    let mut counted = Allocations::default();
    for trace in traces {
        let trace = trace.to_string();
        if is_runtimes(&trace) {
            counted.runtime += 1;
        } else {
            counted.gateway += 1;
            *counted.sites.entry(gateway_site(&trace)).or_default() += 1;
            if print {
                eprintln!("gateway allocation on the serving thread ({events} events):\n{trace}");
            }
        }
    }
    counted
}

/// One test at a time: the traced thread and its traces are process-wide.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn zero_allocations_per_event(runtime: RuntimeChoice, name: &str, serving_thread: &str) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("temp dir");
    let upstream = format!("http://{}", provider());
    let gateway = Gateway::start(runtime, name, &dir.path().join("data"), &upstream);
    let serving = wait_for_thread(serving_thread);
    let mut client = TcpStream::connect(gateway.addr).expect("connect to gateway");
    client
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    // Warm up: the upstream connection, the key cache, first-use buffers.
    for events in [FEW, MANY, FEW] {
        stream(&mut client, events);
    }
    let few = allocs_for(&mut client, serving, FEW);
    let many = allocs_for(&mut client, serving, MANY);
    let few_again = allocs_for(&mut client, serving, FEW);
    eprintln!(
        "{name}: gateway allocations {} for {FEW} events, {} for {MANY}, {} for {FEW} again; \
         runtime's {} / {} / {}",
        few.gateway, many.gateway, few_again.gateway, few.runtime, many.runtime, few_again.runtime
    );
    // Per event, not per request: the connection's output buffer grows
    // when a slow moment lets more events than ever arrive in one read, a
    // doubling from 2 KiB to at most the 1 MiB it keeps, so at most
    // `GROWTH` times in a connection's life, at moments that depend on
    // timing. An allocation made for every event, or nearly, would add
    // about `MANY - FEW`. The sites that differ are printed either way.
    const GROWTH: u64 = 9;
    let extra = many
        .gateway
        .saturating_sub(few.gateway.min(few_again.gateway));
    if extra > 0 {
        eprintln!("{name}: sites that differ:{}", sites_differing(&few, &many));
    }
    assert!(
        extra <= GROWTH,
        "{} extra events cost {extra} allocations in the gateway on the serving thread:{}",
        MANY - FEW,
        sites_differing(&few, &many)
    );
    drop(client);
    drop(gateway);
}

#[test]
fn glommio_relays_an_sse_event_without_allocating() {
    if let Err(why) = arouter_glommio::usable() {
        // The e2e suite runs glommio where it can; here there is no
        // io_uring to test with.
        eprintln!("skipped: glommio cannot run here: {why}");
        return;
    }
    zero_allocations_per_event(RuntimeChoice::Glommio, "glommio", "arouter-glommio-0");
}

#[test]
fn smol_relays_an_sse_event_without_allocating() {
    zero_allocations_per_event(RuntimeChoice::Smol, "smol", "serve-smol");
}
