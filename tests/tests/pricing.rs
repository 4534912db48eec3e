//! Pricing end to end: the real binary, the replay server playing OpenAI.
//! The `usage.cost` an answer shows is the cost its transaction stores,
//! to the micro-dollar, stream and not; config prices override the
//! shipped ones; an unpriced model is billed 0 with one warning, or
//! refused when the config says so.

use arouter_conformance::{spawn, ReplayConfig, ReplayHandle};
use arouter_e2e::{master_bearer, Options, Response, Server};
use serde_json::{json, Value};

fn setup(extra_toml: &str) -> (ReplayHandle, Server) {
    let replay = spawn(ReplayConfig::default());
    let url = replay.url();
    let server = Server::start_with(Options {
        env: vec![
            ("OPENAI_BASE_URL".into(), format!("{url}/v1")),
            ("OPENAI_API_KEY".into(), "sk-provider".into()),
        ],
        // `backup` is another server of the same kind: no shipped prices.
        config_toml: Some(format!(
            "{extra_toml}\n[providers.backup]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\napi_key_env = \"OPENAI_API_KEY\"\n"
        )),
    });
    (replay, server)
}

fn post(server: &Server, body: &Value) -> Response {
    server.post_json("/v1/chat/completions", &master_bearer(), body)
}

/// A transcript's request, sent to `provider`.
fn recorded_body(replay: &ReplayHandle, name: &str, provider: &str) -> Value {
    let t = replay.transcript(name).expect("transcript");
    let mut body = t.request.body.clone();
    let model = body["model"].as_str().unwrap().to_string();
    body["model"] = json!(format!("{provider}/{model}"));
    body
}

/// The stored cost (micro-USD) of the transaction of `request_id`.
fn stored_cost(server: &Server, request_id: &str) -> u64 {
    let rows = server.wait_for_rows(
        &format!("select cost_micros from transactions where request_id = '{request_id}'"),
        1,
    );
    rows[0].parse().expect("an integer cost")
}

/// USD as the answer shows it, in micro-USD.
fn micro(usd: &Value) -> u64 {
    let usd = usd.as_f64().expect("usage.cost is a number");
    (usd * 1e6).round() as u64
}

#[test]
fn the_answers_cost_is_the_stored_transactions_cost() {
    let (replay, server) = setup("");
    let body = recorded_body(&replay, "openai/chat_nonstream_user_id.json", "openai");
    let r = post(&server, &body);
    assert_eq!(r.status, 200);
    let answer = r.json();
    let shown = micro(&answer["usage"]["cost"]);
    assert!(shown > 0, "a shipped price applies: {answer}");
    let id = r.header("x-request-id").expect("request id");
    assert_eq!(stored_cost(&server, id), shown);
}

#[test]
fn a_streams_usage_chunk_cost_is_the_stored_transactions_cost() {
    let (replay, server) = setup("");
    let body = recorded_body(
        &replay,
        "openai/chat_stream_text_after_tool_include_usage.json",
        "openai",
    );
    let r = post(&server, &body);
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).to_string();
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    let usage: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["usage"])
        .filter(|u| u.is_object())
        .collect();
    assert_eq!(usage.len(), 1, "one usage chunk: {text}");
    let shown = micro(&usage[0]["cost"]);
    assert!(shown > 0);
    let id = r.header("x-request-id").expect("request id");
    assert_eq!(stored_cost(&server, id), shown);
}

#[test]
fn config_prices_override_the_shipped_ones_and_price_other_servers() {
    // $1 and $2 per million tokens: 1 and 2 micro-USD a token.
    let (replay, server) = setup(
        "[pricing.\"backup/gpt-4o\"]\ninput = 1.0\noutput = 2.0\n\n\
         [pricing.\"openai/gpt-4o\"]\noutput = 20.0\ninput = 10.0\n",
    );
    let body = recorded_body(&replay, "openai/chat_nonstream_user_id.json", "backup");
    assert_eq!(body["model"], "backup/gpt-4o", "the transcript's model");
    for (provider, per_in, per_out) in [("backup", 1, 2), ("openai", 10, 20)] {
        let mut body = body.clone();
        body["model"] = json!(format!("{provider}/gpt-4o"));
        let r = post(&server, &body);
        assert_eq!(r.status, 200);
        let usage = r.json()["usage"].clone();
        let (p, c) = (
            usage["prompt_tokens"].as_u64().unwrap(),
            usage["completion_tokens"].as_u64().unwrap(),
        );
        assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);
        let expect = per_in * p + per_out * c;
        assert_eq!(micro(&usage["cost"]), expect, "{provider}: {usage}");
        let id = r.header("x-request-id").expect("request id");
        assert_eq!(stored_cost(&server, id), expect);
    }
}

#[test]
fn an_unpriced_model_is_free_with_one_warning_per_model() {
    let (replay, server) = setup("");
    let body = recorded_body(&replay, "openai/chat_nonstream_user_id.json", "backup");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = post(&server, &body);
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["usage"]["cost"], json!(0.0));
        ids.push(r.header("x-request-id").expect("id").to_string());
    }
    for id in &ids {
        assert_eq!(stored_cost(&server, id), 0);
    }
    let log = server.stderr();
    let warnings = log
        .lines()
        .filter(|l| l.contains("`backup/gpt-4o` has no price"))
        .count();
    assert_eq!(warnings, 1, "{log}");
}

#[test]
fn refuse_unpriced_models_answers_404_and_still_serves_priced_ones() {
    let (replay, server) = setup("refuse_unpriced_models = true\n");
    let body = recorded_body(&replay, "openai/chat_nonstream_user_id.json", "backup");
    let r = post(&server, &body);
    assert_eq!(r.status, 404);
    let err = r.json();
    assert_eq!(err["error"]["code"], "model_unpriced", "{err}");
    assert!(err["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("backup/gpt-4o")));
    let mut priced = body.clone();
    priced["model"] = json!("openai/gpt-4o");
    assert_eq!(post(&server, &priced).status, 200);
}
