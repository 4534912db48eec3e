//! The connection loop: replay, faults, control API, client-gone watch.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use smol::future;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, Timer};

use crate::fault::{dialect_for_path, error_body, Fault, FaultQueue, FaultRule};
use crate::http::{self, BodyFraming, ReadError, Request};
use crate::log::RequestRecord;
use crate::matching::{find_best, miss_hint, request_model};
use crate::transcript::{ResponseBody, Transcript};

/// Bytes of pipelined input kept while watching for the client to go.
const MAX_PIPELINED: usize = 1024 * 1024;

pub(crate) struct State {
    pub start: Instant,
    pub transcripts: Vec<Transcript>,
    pub chunk_delay: Duration,
    pub verbose: bool,
    pub faults: Mutex<FaultQueue>,
    pub log: Mutex<Vec<RequestRecord>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    pub fn new(transcripts: Vec<Transcript>, chunk_delay: Duration, verbose: bool) -> Self {
        State {
            start: Instant::now(),
            transcripts,
            chunk_delay,
            verbose,
            faults: Mutex::new(FaultQueue::default()),
            log: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn push_fault(&self, rule: FaultRule) {
        lock(&self.faults).push(rule);
    }
    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }
    pub fn fault_rules(&self) -> Vec<FaultRule> {
        lock(&self.faults).rules().to_vec()
    }
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.log).clone()
    }
    pub fn clear_requests(&self) {
        lock(&self.log).clear();
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut RequestRecord)) {
        let mut log = lock(&self.log);
        if let Some(r) = log.iter_mut().rev().find(|r| r.id == id) {
            f(r);
        }
    }
}

/// What the replay decided to send.
struct Plan {
    status: u16,
    headers: Vec<(String, String)>,
    body: ResponseBody,
}

fn json_plan(status: u16, body: &Value) -> Plan {
    Plan {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: ResponseBody::Json(serde_json::to_vec(body).unwrap_or_default()),
    }
}

fn parse_body(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn header_map(req: &Request) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &req.headers {
        m.entry(k.clone())
            .and_modify(|old| {
                old.push_str(", ");
                old.push_str(v);
            })
            .or_insert_with(|| v.clone());
    }
    m
}

/// Serve one accepted connection until it closes.
pub(crate) async fn serve_conn(stream: Async<TcpStream>, state: std::sync::Arc<State>) {
    let _ = stream.get_ref().set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let req = match http::read_request(&stream, &mut buf).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(ReadError::Bad(status, msg)) => {
                let plan = json_plan(
                    status,
                    &json!({"error": {"message": format!("replay: {msg}"), "type": "replay_bad_request"}}),
                );
                let _ = write_simple(&stream, &plan, false).await;
                return;
            }
            Err(ReadError::Io(_) | ReadError::Truncated) => return,
        };
        let keep_alive = req.keep_alive();
        let is_control = req.target == "/_replay" || req.target.starts_with("/_replay/");
        let keep_open = if is_control {
            let plan = control(&state, &req);
            write_simple(&stream, &plan, keep_alive).await.is_ok() && keep_alive
        } else {
            replay(&stream, &state, req, keep_alive, &mut buf).await
        };
        if !keep_open {
            let _ = stream.get_ref().shutdown(Shutdown::Both);
            return;
        }
    }
}

async fn write_simple(
    stream: &Async<TcpStream>,
    plan: &Plan,
    keep_alive: bool,
) -> std::io::Result<()> {
    let body = plan.body.bytes();
    let mut out = http::response_head(
        plan.status,
        &plan.headers,
        BodyFraming::Length(body.len()),
        keep_alive,
    );
    out.extend_from_slice(body);
    (&*stream).write_all(&out).await?;
    (&*stream).flush().await
}

fn control(state: &State, req: &Request) -> Plan {
    let path = req.target.split('?').next().unwrap_or("");
    let ok = json!({"ok": true});
    match (req.method.as_str(), path) {
        ("GET", "/_replay/requests") => json_plan(200, &json!(state.requests())),
        ("DELETE", "/_replay/requests") => {
            state.clear_requests();
            json_plan(200, &ok)
        }
        ("GET", "/_replay/faults") => json_plan(200, &json!(state.fault_rules())),
        ("DELETE", "/_replay/faults") => {
            state.clear_faults();
            json_plan(200, &ok)
        }
        ("POST", "/_replay/faults") => {
            // One rule, or an array of rules.
            let parsed: Result<Vec<FaultRule>, _> = match serde_json::from_slice::<Value>(&req.body)
            {
                Ok(Value::Array(items)) => items.into_iter().map(serde_json::from_value).collect(),
                Ok(v) => serde_json::from_value(v).map(|r| vec![r]),
                Err(e) => Err(e),
            };
            match parsed {
                Ok(rules) => {
                    let n = rules.len();
                    for r in rules {
                        state.push_fault(r);
                    }
                    json_plan(200, &json!({"ok": true, "queued": n}))
                }
                Err(e) => json_plan(
                    400,
                    &json!({"error": {"message": format!("replay: bad fault rule: {e}"), "type": "replay_bad_request"}}),
                ),
            }
        }
        ("POST", "/_replay/reset") => {
            state.clear_faults();
            state.clear_requests();
            json_plan(200, &ok)
        }
        ("GET", "/_replay/transcripts") => {
            let names: Vec<&str> = state.transcripts.iter().map(|t| t.name.as_str()).collect();
            json_plan(200, &json!(names))
        }
        ("GET", "/_replay/health") => json_plan(200, &ok),
        _ => json_plan(
            404,
            &json!({"error": {"message": format!("replay: unknown control endpoint {} {}", req.method, path), "type": "replay_no_control"}}),
        ),
    }
}

/// How sending a response ended.
enum SendEnd {
    Complete,
    /// A fault made us close the connection.
    Cut,
    /// A write failed: the client is gone.
    WriteFailed,
}

enum Race {
    Sent(SendEnd),
    ClientGone,
}

/// Replay one request. Returns whether the connection stays open.
async fn replay(
    stream: &Async<TcpStream>,
    state: &State,
    req: Request,
    keep_alive: bool,
    buf: &mut Vec<u8>,
) -> bool {
    let body = parse_body(&req.body);
    let model = request_model(&req.target, &body);
    let fault = lock(&state.faults).take(&req.target, model.as_deref());
    let idx = find_best(&state.transcripts, &req.method, &req.target, &body);
    let transcript = idx.map(|i| &state.transcripts[i]);
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let model_txt = model.clone().unwrap_or_else(|| "-".to_string());

    let plan = if let Some(status) = fault.as_ref().and_then(|f| f.status) {
        let f = fault.as_ref().expect("fault with status");
        let body = f
            .body
            .clone()
            .unwrap_or_else(|| error_body(dialect_for_path(&req.target), status));
        let mut plan = json_plan(status, &body);
        let retry_after = f
            .retry_after
            .clone()
            .or_else(|| (status == 429).then(|| "1".to_string()));
        if let Some(ra) = retry_after {
            plan.headers.push(("retry-after".into(), ra));
        }
        plan
    } else if let Some(t) = transcript {
        let mut headers = t.response.headers.clone();
        headers.push(("x-replay-transcript".into(), t.name.clone()));
        Plan {
            status: t.response.status,
            headers,
            body: t.response.body.clone(),
        }
    } else {
        let hint = miss_hint(&state.transcripts, &req.method, &req.target, &body);
        eprintln!(
            "replay: no match: {} {} model={model_txt} ({hint})",
            req.method, req.target
        );
        json_plan(
            404,
            &json!({"error": {
                "message": format!("replay: no transcript matches {} {} model={model_txt}", req.method, req.target),
                "type": "replay_no_match",
                "hint": hint,
            }}),
        )
    };
    if state.verbose {
        eprintln!(
            "replay: #{id} {} {} model={model_txt} -> {} {}{}",
            req.method,
            req.target,
            plan.status,
            transcript.map_or("(no transcript)", |t| t.name.as_str()),
            fault
                .as_ref()
                .map(|f| format!(" fault={}", json!(f)))
                .unwrap_or_default()
        );
    }

    lock(&state.log).push(RequestRecord {
        id,
        method: req.method.clone(),
        path: req.target.clone(),
        headers: header_map(&req),
        body,
        transcript: transcript.map(|t| t.name.clone()),
        fault: fault.clone(),
        started_ms: state.now_ms(),
        finished_ms: None,
        client_closed_early: false,
        client_closed_ms: None,
        status: None,
        bytes_sent: 0,
    });

    let fault = fault.unwrap_or_default();
    if fault.close_without_response {
        if let Some(ms) = fault.delay_ms {
            Timer::after(Duration::from_millis(ms)).await;
        }
        let _ = stream.get_ref().shutdown(Shutdown::Both);
        state.update(id, |r| r.finished_ms = Some(state.now_ms()));
        return false;
    }

    let sent = Cell::new(0u64);
    let head_sent = Cell::new(false);
    let send = async {
        Race::Sent(send_plan(stream, state, &plan, &fault, keep_alive, &sent, &head_sent).await)
    };
    let watch = async {
        watch_client(stream, buf).await;
        Race::ClientGone
    };
    let outcome = future::or(send, watch).await;

    let now = state.now_ms();
    let (closed_early, keep_open) = match outcome {
        Race::Sent(SendEnd::Complete) => (false, keep_alive),
        Race::Sent(SendEnd::Cut) => (false, false),
        Race::Sent(SendEnd::WriteFailed) | Race::ClientGone => (true, false),
    };
    if closed_early && state.verbose {
        eprintln!("replay: #{id} client closed the connection early at {now} ms");
    }
    state.update(id, |r| {
        r.finished_ms = Some(now);
        r.bytes_sent = sent.get();
        r.status = head_sent.get().then_some(plan.status);
        if closed_early {
            r.client_closed_early = true;
            r.client_closed_ms = Some(now);
        }
    });
    keep_open
}

/// Resolve when the client closes (EOF) or resets the connection. Bytes it
/// sends meanwhile (a pipelined request) are kept in `buf`.
async fn watch_client(stream: &Async<TcpStream>, buf: &mut Vec<u8>) {
    let mut tmp = [0u8; 4096];
    loop {
        match (&*stream).read(&mut tmp).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                if buf.len() > MAX_PIPELINED {
                    // Stop reading; rely on write errors to notice a close.
                    future::pending::<()>().await;
                }
            }
        }
    }
}

async fn send_plan(
    stream: &Async<TcpStream>,
    state: &State,
    plan: &Plan,
    fault: &Fault,
    keep_alive: bool,
    sent: &Cell<u64>,
    head_sent: &Cell<bool>,
) -> SendEnd {
    let mut w = stream;
    if let Some(ms) = fault.delay_ms {
        Timer::after(Duration::from_millis(ms)).await;
    }
    let body = &plan.body;
    let chunked = body.is_chunked();
    let framing = if chunked {
        BodyFraming::Chunked
    } else {
        BodyFraming::Length(body.bytes().len())
    };
    let head = http::response_head(plan.status, &plan.headers, framing, keep_alive);
    if w.write_all(&head).await.is_err() {
        return SendEnd::WriteFailed;
    }
    head_sent.set(true);
    if let Some(ms) = fault.first_byte_delay_ms {
        Timer::after(Duration::from_millis(ms)).await;
    }
    // Content-Length bodies go out in one write unless a fault needs the
    // pieces.
    let pieces: Vec<&[u8]> =
        if chunked || fault.cut_after_events.is_some() || fault.stall_after_events.is_some() {
            body.pieces()
        } else if body.bytes().is_empty() {
            Vec::new()
        } else {
            vec![body.bytes()]
        };
    let n = pieces.len();
    for i in 0..=n {
        if fault.cut_after_events == Some(i) {
            let _ = w.flush().await;
            let _ = stream.get_ref().shutdown(Shutdown::Both);
            return SendEnd::Cut;
        }
        if fault.stall_after_events == Some(i) {
            Timer::after(Duration::from_millis(fault.stall_ms.unwrap_or(0))).await;
        } else if chunked && i > 0 && i < n && !state.chunk_delay.is_zero() {
            Timer::after(state.chunk_delay).await;
        }
        let Some(&piece) = pieces.get(i) else {
            break;
        };
        let out = if chunked {
            http::chunk(piece)
        } else {
            piece.to_vec()
        };
        if w.write_all(&out).await.is_err() {
            return SendEnd::WriteFailed;
        }
        sent.set(sent.get() + piece.len() as u64);
    }
    if chunked && w.write_all(http::LAST_CHUNK).await.is_err() {
        return SendEnd::WriteFailed;
    }
    if w.flush().await.is_err() {
        return SendEnd::WriteFailed;
    }
    SendEnd::Complete
}
