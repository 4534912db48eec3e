//! The connection loop: replay, faults, control API, client-gone watch.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use smol::future;
use smol::{Async, Timer};

use crate::conn::Conn;

use crate::fault::{dialect_for_path, error_body, Fault, FaultQueue, FaultRule};
use crate::http::{self, ReadError, Request, Written};
use crate::log::RequestRecord;
use crate::matching::{find_best, miss_hint, request_model};
use crate::paced::{PacedBody, Pacing};
use crate::transcript::{ResponseBody, Transcript};

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

    pub fn ms_since_start(&self, at: std::time::Instant) -> u64 {
        at.saturating_duration_since(self.start).as_millis() as u64
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
    let conn = Conn::new(stream);
    loop {
        let req = match http::read_request(&conn).await {
            Ok(Some(r)) => r,
            Ok(None) | Err(ReadError::Closed) => return,
            Err(ReadError::Bad(status, msg)) => {
                let plan = json_plan(
                    status,
                    &json!({"error": {"message": format!("replay: {msg}"), "type": "replay_bad_request"}}),
                );
                let _ = http::send(
                    &conn,
                    outgoing("GET", &plan, &Pacing::default(), false, None),
                    |_| {},
                )
                .await;
                conn.shutdown();
                return;
            }
        };
        let keep_alive = req.keep_alive();
        let is_control = req.target == "/_replay" || req.target.starts_with("/_replay/");
        let keep_open = if is_control {
            let plan = control(&state, &req);
            let out = outgoing(&req.method, &plan, &Pacing::default(), keep_alive, None);
            http::send(&conn, out, |_| {}).await == Written::Complete && keep_alive
        } else {
            replay(&conn, &state, req, keep_alive).await
        };
        if !keep_open {
            conn.shutdown();
            return;
        }
    }
}

/// The response for `plan`, paced by `pacing`; `handed` counts the body
/// bytes given to the encoder.
fn outgoing(
    method: &str,
    plan: &Plan,
    pacing: &Pacing,
    keep_alive: bool,
    handed: Option<Arc<AtomicU64>>,
) -> http::Outgoing {
    let body = &plan.body;
    // Content-Length bodies go out in one piece unless a fault needs the
    // pieces.
    let pieces: Vec<Vec<u8>> =
        if body.is_chunked() || pacing.cut_at.is_some() || pacing.stall.is_some() {
            body.pieces().into_iter().map(<[u8]>::to_vec).collect()
        } else if body.bytes().is_empty() {
            Vec::new()
        } else {
            vec![body.bytes().to_vec()]
        };
    let max_piece = pieces.iter().map(Vec::len).max().unwrap_or(0);
    let len = (!body.is_chunked()).then(|| body.bytes().len());
    let paced = PacedBody::new(pieces, pacing.clone(), handed.unwrap_or_default());
    http::response(
        method,
        plan.status,
        &plan.headers,
        paced,
        len,
        max_piece,
        keep_alive,
    )
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
async fn replay(conn: &Conn, state: &State, req: Request, keep_alive: bool) -> bool {
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
        body_started_ms: req.body_started.map(|t| state.ms_since_start(t)),
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
        conn.shutdown();
        state.update(id, |r| r.finished_ms = Some(state.now_ms()));
        return false;
    }

    let progress = Progress::default();
    let send = async {
        Race::Sent(
            send_plan(
                conn,
                state,
                &req.method,
                &plan,
                &fault,
                keep_alive,
                &progress,
            )
            .await,
        )
    };
    let watch = async {
        conn.watch_closed().await;
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
        r.bytes_sent = progress.sent.get();
        r.status = progress.head_sent.get().then_some(plan.status);
        if closed_early {
            r.client_closed_early = true;
            r.client_closed_ms = Some(now);
        }
    });
    keep_open
}

/// What reached the client so far.
#[derive(Default)]
struct Progress {
    head_sent: Cell<bool>,
    /// Body bytes.
    sent: Cell<u64>,
}

/// Send `plan` with the fault's delays, stall and cut applied.
async fn send_plan(
    conn: &Conn,
    state: &State,
    method: &str,
    plan: &Plan,
    fault: &Fault,
    keep_alive: bool,
    progress: &Progress,
) -> SendEnd {
    if let Some(ms) = fault.delay_ms {
        Timer::after(Duration::from_millis(ms)).await;
    }
    let pacing = Pacing {
        chunk_delay: state.chunk_delay,
        first_byte_delay: fault.first_byte_delay_ms.map(Duration::from_millis),
        cut_at: fault.cut_after_events,
        stall: fault
            .stall_after_events
            .map(|at| (at, Duration::from_millis(fault.stall_ms.unwrap_or(0)))),
    };
    let handed = Arc::new(AtomicU64::new(0));
    let out = outgoing(method, plan, &pacing, keep_alive, Some(handed.clone()));
    // Each write carries what the encoder was handed since the last one.
    let written = http::send(conn, out, |head| {
        progress.head_sent.set(progress.head_sent.get() || head);
        progress.sent.set(handed.load(Ordering::Relaxed));
    })
    .await;
    match written {
        http::Written::Complete => {
            // A Content-Length body ends when its length is reached, before
            // the cut's gate after the last piece: cut there now.
            let pieces = plan.body.pieces().len();
            if !plan.body.is_chunked() && fault.cut_after_events.is_some_and(|n| n >= pieces) {
                conn.shutdown();
                return SendEnd::Cut;
            }
            SendEnd::Complete
        }
        http::Written::BodyFailed => {
            conn.shutdown();
            SendEnd::Cut
        }
        http::Written::WriteFailed => SendEnd::WriteFailed,
    }
}
