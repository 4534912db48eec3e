//! Credit end to end: the real binary, the replay server playing OpenAI.
//! Calls reserve their maximum cost before going upstream and settle to
//! the real cost; under 200 parallel streams on a key limit (and on a
//! prepaid balance) the credit is spent exactly, never past zero, and the
//! transactions add up to the drop to the micro-dollar. A client leaving
//! mid-stream pays the tokens seen; a provider failing before the first
//! token costs nothing; balances, keys and transactions survive restarts,
//! and a `kill -9` charges nothing twice.

use std::io::{Read, Write};
use std::time::Duration;

use arouter_conformance::{spawn, Fault, FaultRule, ReplayConfig, ReplayHandle};
use arouter_e2e::{Options, Response, Server, MASTER_KEY};
use serde_json::{json, Value};

/// The transcript the tests stream: 13 prompt tokens, 11 completion.
const TRANSCRIPT: &str = "openai/chat_stream_text_moderation_include_usage.json";
/// gpt-5 priced at $1/Mtok in (1 micro-USD a token), $2 out, every kind.
const PRICES: &str = "[pricing.\"openai/gpt-5\"]\ninput = 1.0\noutput = 2.0\ncached_input = 1.0\ncache_write = 1.0\nreasoning = 2.0\n";
/// 13 in + 11 out at those prices.
const COST: u64 = 13 + 2 * 11;

fn options(url: &str, extra_toml: &str) -> Options {
    Options {
        env: vec![
            ("OPENAI_BASE_URL".into(), format!("{url}/v1")),
            ("OPENAI_API_KEY".into(), "sk-provider".into()),
        ],
        config_toml: Some(format!("{PRICES}{extra_toml}")),
    }
}

fn setup(extra_toml: &str) -> (ReplayHandle, Server) {
    let replay = spawn(ReplayConfig::default());
    let server = Server::start_with(options(&replay.url(), extra_toml));
    (replay, server)
}

/// The recorded streamed request, capped at the tokens it produces.
fn stream_body(replay: &ReplayHandle) -> Value {
    let mut body = replay
        .transcript(TRANSCRIPT)
        .expect("transcript")
        .request
        .body
        .clone();
    body["model"] = json!("openai/gpt-5");
    body["max_tokens"] = json!(11);
    body
}

fn create_key(server: &Server, limit_usd: f64) -> (String, String) {
    let r = server.call(
        "POST",
        "/api/v1/keys",
        MASTER_KEY,
        Some(&json!({"name": "metered", "limit": limit_usd})),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    (
        v["key"].as_str().unwrap().to_string(),
        v["data"]["hash"].as_str().unwrap().to_string(),
    )
}

fn micro(usd: &Value) -> u64 {
    (usd.as_f64().expect("a USD number") * 1e6).round() as u64
}

/// The key's usage and what is left of its limit, micro-USD, as the keys
/// API reports them.
fn key_spend(server: &Server, hash: &str) -> (u64, u64) {
    let r = server.call("GET", &format!("/api/v1/keys/{hash}"), MASTER_KEY, None);
    assert_eq!(r.status, 200);
    let data = &r.json()["data"];
    (micro(&data["usage"]), micro(&data["limit_remaining"]))
}

/// Sum and count of the stored transactions' costs once `n` are stored.
fn stored_costs(server: &Server, n: usize) -> (u64, usize) {
    let rows = server.wait_for_rows("select cost_micros from transactions", n);
    let costs: Vec<u64> = rows.iter().map(|r| r.parse().unwrap()).collect();
    (costs.iter().sum(), costs.len())
}

/// The most a refused call could have cost, from its 402's message.
fn reservation_of(refused: &Response) -> u64 {
    let v = refused.json();
    let message = v["error"]["message"].as_str().unwrap().to_string();
    let usd = message
        .split("up to $")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no amount in {message}"));
    (usd.parse::<f64>().unwrap() * 1e6).round() as u64
}

/// Streams `body` on `n` parallel connections; the responses.
fn parallel(server: &Server, key: &str, body: &Value, n: usize) -> Vec<Response> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| s.spawn(|| server.call("POST", "/v1/chat/completions", key, Some(body))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Served and refused counts; every other status fails the test.
fn tally(responses: &[Response]) -> (usize, Vec<&Response>) {
    let mut served = 0;
    let mut refused = Vec::new();
    for r in responses {
        match r.status {
            200 => {
                let text = String::from_utf8_lossy(&r.body);
                assert!(text.contains("[DONE]"), "a whole stream: {text}");
                served += 1;
            }
            402 => {
                assert_eq!(r.json()["error"]["code"], "insufficient_credits");
                refused.push(r);
            }
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    (served, refused)
}

#[test]
fn parallel_streams_spend_a_key_limit_exactly_and_never_past_it() {
    let (replay, server) = setup("");
    // Room for 100 calls and a bit: not enough for a 101st.
    let limit = 100 * COST + COST / 2;
    let (secret, hash) = create_key(&server, limit as f64 / 1e6);
    let responses = parallel(&server, &secret, &stream_body(&replay), 200);
    let (served, refused) = tally(&responses);
    let reservation = reservation_of(refused[0]);
    assert_eq!(reservation, COST, "the prompt counted as the provider does");
    let (sum, rows) = stored_costs(&server, served);
    assert_eq!(rows, served, "one transaction per served call");
    assert_eq!(sum, served as u64 * COST);
    let (usage, remaining) = key_spend(&server, &hash);
    // The drop in the limit is the sum of the transactions, exactly; it
    // never went past the limit; what is left cannot pay one more call.
    assert_eq!(usage, sum);
    assert_eq!(remaining, limit - sum);
    assert!(remaining < reservation, "{served} served, {remaining} left");
    assert_eq!(served, 100);
    // The next call is refused before anything goes upstream.
    let upstream_before = replay.requests().len();
    let r = server.call(
        "POST",
        "/v1/chat/completions",
        &secret,
        Some(&stream_body(&replay)),
    );
    assert_eq!(r.status, 402);
    assert_eq!(replay.requests().len(), upstream_before);
}

#[test]
fn parallel_streams_spend_a_prepaid_balance_exactly_and_never_below_zero() {
    let (replay, server) = setup("[billing]\nprepaid = true\n");
    // Nothing is served before credit is added.
    let r = server.call(
        "POST",
        "/v1/chat/completions",
        MASTER_KEY,
        Some(&stream_body(&replay)),
    );
    assert_eq!(r.status, 402);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("balance"));
    let credit = 100 * COST + COST / 2;
    let r = server.call(
        "POST",
        "/api/v1/balance",
        MASTER_KEY,
        Some(&json!({"amount": credit as f64 / 1e6, "note": "test credit"})),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(micro(&r.json()["data"]["balance"]), credit);
    let responses = parallel(&server, MASTER_KEY, &stream_body(&replay), 200);
    let (served, refused) = tally(&responses);
    assert!(!refused.is_empty());
    let (sum, rows) = stored_costs(&server, served);
    assert_eq!(rows, served);
    let r = server.call("GET", "/api/v1/balance", MASTER_KEY, None);
    let data = r.json()["data"].clone();
    assert_eq!(data["currency"], "USD");
    assert_eq!(micro(&data["total_usage"]), sum);
    assert_eq!(micro(&data["total_credits"]), credit);
    let balance = data["balance"].as_f64().unwrap();
    assert!(balance >= 0.0, "{data}");
    assert_eq!((balance * 1e6).round() as u64, credit - sum);
    assert!(credit - sum < COST);
    assert_eq!(served, 100);
    let credits = server
        .call("GET", "/api/v1/credits", MASTER_KEY, None)
        .json();
    assert_eq!(micro(&credits["data"]["total_usage"]), sum);
}

#[test]
fn without_prepaid_calls_need_no_credit_and_credits_are_reported() {
    let (replay, server) = setup("");
    let r = server.call(
        "POST",
        "/v1/chat/completions",
        MASTER_KEY,
        Some(&stream_body(&replay)),
    );
    assert_eq!(r.status, 200);
    let (sum, _) = stored_costs(&server, 1);
    assert_eq!(sum, COST);
    let v = server
        .call("GET", "/api/v1/credits", MASTER_KEY, None)
        .json();
    assert_eq!(
        v,
        json!({"data": {"total_credits": 0.0, "total_usage": COST as f64 / 1e6}})
    );
    // Only a management key (or the master key) adds credit; bad amounts
    // are a 400.
    let (secret, _) = create_key(&server, 1.0);
    let r = server.call(
        "POST",
        "/api/v1/balance",
        &secret,
        Some(&json!({"amount": 5})),
    );
    assert_eq!(r.status, 403);
    for bad in [json!({"amount": -1}), json!({"amount": "5"}), json!({})] {
        let r = server.call("POST", "/api/v1/balance", MASTER_KEY, Some(&bad));
        assert_eq!(r.status, 400, "{bad}");
    }
    let r = server.call(
        "POST",
        "/api/v1/balance",
        MASTER_KEY,
        Some(&json!({"amount": 2.5})),
    );
    assert_eq!(r.json()["data"]["total_credits"], 2.5);
    assert_eq!(
        server.wait_for_rows("select amount_micros, note from credits", 1),
        vec!["2500000, None"]
    );
    // The credit is itself a transaction: listed with the calls as a row
    // of type credit whose cost is the amount. (Both rows fall in the same
    // second, so their order between them is not asserted.)
    let list = server
        .call("GET", "/api/v1/transactions", MASTER_KEY, None)
        .json();
    let rows = list["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{list}");
    let of_type = |kind: &str| -> Vec<u64> {
        rows.iter()
            .filter(|r| r["type"] == kind)
            .map(|r| micro(&r["cost"]))
            .collect()
    };
    assert_eq!(of_type("credit"), [2_500_000], "{list}");
    assert_eq!(of_type("usage"), [COST], "{list}");
}

fn open_stream(server: &Server, key: &str, body: &Value) -> std::net::TcpStream {
    let body = serde_json::to_vec(body).unwrap();
    let mut c = server.connect();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&body).unwrap();
    c
}

fn read_until(c: &mut std::net::TcpStream, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while std::time::Instant::now() < deadline && !String::from_utf8_lossy(&got).contains(needle) {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn a_client_leaving_mid_stream_pays_the_tokens_seen() {
    let (replay, server) = setup("");
    let limit = 1_000_000;
    let (secret, hash) = create_key(&server, 1.0);
    replay.push_fault(FaultRule::once(Fault::stall(3, 10_000)).path("/v1/chat/completions"));
    let mut c = open_stream(&server, &secret, &stream_body(&replay));
    let got = read_until(&mut c, "chat.completion.chunk");
    assert!(got.contains("chat.completion.chunk"), "{got}");
    drop(c);
    let rows = server.wait_for_rows(
        "select prompt_tokens, completion_tokens, cost_micros, estimated from transactions",
        1,
    );
    let row: Vec<u64> = rows[0].split(", ").map(|v| v.parse().unwrap()).collect();
    // The prompt counted and the tokens relayed, no more than the whole.
    assert_eq!(row[0], 13, "{rows:?}");
    assert!(row[1] >= 1 && row[1] < 11, "{rows:?}");
    assert_eq!(row[2], row[0] + 2 * row[1]);
    assert_eq!(row[3], 1, "estimated");
    let (usage, remaining) = key_spend(&server, &hash);
    assert_eq!(usage, row[2]);
    assert_eq!(remaining, limit - row[2]);
}

#[test]
fn a_provider_failing_before_the_first_token_costs_nothing() {
    let (replay, server) = setup("");
    let (secret, hash) = create_key(&server, 1.0);
    // A 500, and a connection closed with no answer (twice: a pooled
    // connection that closes is first retried on a fresh one).
    let closed = Fault {
        close_without_response: true,
        ..Fault::default()
    };
    for (fault, times) in [(Fault::status(500), 1), (closed, 2)] {
        let mut rule = FaultRule::once(fault).path("/v1/chat/completions");
        rule.times = times;
        replay.push_fault(rule);
        let r = server.call(
            "POST",
            "/v1/chat/completions",
            &secret,
            Some(&stream_body(&replay)),
        );
        assert!(r.status >= 500, "{}", r.status);
    }
    // A second closing rule left unused (the first close was on a fresh
    // connection) must not hit the next call.
    replay.clear_faults();
    // The reservation went back: the whole limit is left, nothing billed.
    assert_eq!(key_spend(&server, &hash), (0, 1_000_000));
    let r = server.call(
        "POST",
        "/v1/chat/completions",
        &secret,
        Some(&stream_body(&replay)),
    );
    assert_eq!(r.status, 200);
    let (sum, rows) = stored_costs(&server, 1);
    let (usage, _) = key_spend(&server, &hash);
    assert_eq!((usage, sum), (COST, COST), "{rows} rows");
}

/// Restarts `server` on the same data directory (and provider).
fn restart(server: &mut Server, replay: &ReplayHandle, kill: bool) -> Server {
    if kill {
        let pid = server.pid().expect("running");
        let status = std::process::Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
    server.terminate();
    let dir = std::mem::replace(&mut server.data_dir, tempfile::tempdir().unwrap());
    Server::start_in(options(&replay.url(), "[billing]\nprepaid = true\n"), dir)
}

#[test]
fn credit_keys_and_transactions_survive_restarts_and_kill_9_charges_nothing_twice() {
    let (replay, mut server) = setup("[billing]\nprepaid = true\n");
    let (secret, hash) = create_key(&server, 0.01);
    let r = server.call(
        "POST",
        "/api/v1/balance",
        MASTER_KEY,
        Some(&json!({"amount": 1.0})),
    );
    assert_eq!(r.status, 200);
    for _ in 0..3 {
        let r = server.call(
            "POST",
            "/v1/chat/completions",
            &secret,
            Some(&stream_body(&replay)),
        );
        assert_eq!(r.status, 200);
    }
    // A call is charged in memory just after its last byte is written, and
    // recorded after that: once the rows are stored, all three are charged.
    assert_eq!(stored_costs(&server, 3), (3 * COST, 3));
    let before = server
        .call("GET", "/api/v1/balance", MASTER_KEY, None)
        .json();
    let spend = key_spend(&server, &hash);
    assert_eq!(spend.0, 3 * COST);
    // A graceful restart flushes everything: the same figures after.
    let mut server = restart(&mut server, &replay, false);
    assert_eq!(
        server
            .call("GET", "/api/v1/balance", MASTER_KEY, None)
            .json(),
        before
    );
    assert_eq!(key_spend(&server, &hash), spend);
    assert_eq!(stored_costs(&server, 3), (3 * COST, 3));
    // Two more calls, then kill -9 once they are stored: the restarted
    // gateway loads the store's sums, and nothing is counted twice.
    for _ in 0..2 {
        let r = server.call(
            "POST",
            "/v1/chat/completions",
            &secret,
            Some(&stream_body(&replay)),
        );
        assert_eq!(r.status, 200);
    }
    assert_eq!(stored_costs(&server, 5), (5 * COST, 5));
    let server = restart(&mut server, &replay, true);
    let after = server
        .call("GET", "/api/v1/balance", MASTER_KEY, None)
        .json();
    assert_eq!(micro(&after["data"]["total_usage"]), 5 * COST);
    assert_eq!(micro(&after["data"]["balance"]), 1_000_000 - 5 * COST);
    assert_eq!(key_spend(&server, &hash), (5 * COST, 10_000 - 5 * COST));
    assert_eq!(
        server.wait_for_rows(
            "select count(distinct record_id), count(*) from transactions",
            1
        ),
        vec!["5, 5"]
    );
}
