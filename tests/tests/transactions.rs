//! Transactions and generations end to end: the real binary, the replay
//! server playing OpenAI. Every call is listed with the id its answer
//! showed, its tokens, cost and attribution; the list's filters and its
//! cursor (stable while rows are added between pages); a generation is
//! found by that id, by the key that made it and by managers only.

use arouter_conformance::{spawn, ReplayConfig, ReplayHandle};
use arouter_e2e::{Options, Response, Server, MASTER_KEY};
use serde_json::{json, Value};

const STREAMED: &str = "openai/chat_stream_text_after_tool_include_usage.json";
const WHOLE: &str = "openai/chat_nonstream_user_id.json";

fn setup() -> (ReplayHandle, Server) {
    let replay = spawn(ReplayConfig::default());
    let url = replay.url();
    let server = Server::start_with(Options {
        env: vec![
            ("OPENAI_BASE_URL".into(), format!("{url}/v1")),
            ("OPENAI_API_KEY".into(), "sk-provider".into()),
        ],
        config_toml: None,
    });
    (replay, server)
}

fn get(server: &Server, target: &str, key: &str) -> Response {
    server.get(target, &format!("Authorization: Bearer {key}\r\n"))
}

/// Creates a key with the master key: its secret and hash.
fn create(server: &Server, body: Value) -> (String, String) {
    let r = server.post_json(
        "/api/v1/keys",
        &format!("Authorization: Bearer {MASTER_KEY}\r\n"),
        &body,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    (
        v["key"].as_str().unwrap().to_string(),
        v["data"]["hash"].as_str().unwrap().to_string(),
    )
}

fn recorded_body(replay: &ReplayHandle, name: &str) -> Value {
    let mut body = replay
        .transcript(name)
        .expect("transcript")
        .request
        .body
        .clone();
    let model = body["model"].as_str().unwrap().to_string();
    body["model"] = json!(format!("openai/{model}"));
    body
}

/// What a completion showed its client.
struct Answer {
    id: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    cost: f64,
}

/// Calls the replayed `transcript` with `key` and extra header lines.
fn complete(
    server: &Server,
    replay: &ReplayHandle,
    transcript: &str,
    key: &str,
    headers: &str,
) -> Answer {
    let body = recorded_body(replay, transcript);
    let r = server.post_json(
        "/v1/chat/completions",
        &format!("Authorization: Bearer {key}\r\n{headers}"),
        &body,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let whole = if body["stream"] == json!(true) {
        // The stream's chunks: the id each carries, the usage of the last.
        let text = String::from_utf8_lossy(&r.body).to_string();
        let chunks: Vec<Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect();
        let usage = chunks
            .iter()
            .map(|c| c["usage"].clone())
            .rfind(Value::is_object)
            .expect("a usage chunk");
        json!({"id": chunks[0]["id"], "usage": usage})
    } else {
        r.json()
    };
    Answer {
        id: whole["id"].as_str().expect("an id").to_string(),
        prompt_tokens: whole["usage"]["prompt_tokens"].as_u64().unwrap(),
        completion_tokens: whole["usage"]["completion_tokens"].as_u64().unwrap(),
        cost: whole["usage"]["cost"].as_f64().unwrap(),
    }
}

/// Waits until the store holds `n` transactions (the recorder writes in
/// the background).
fn wait_recorded(server: &Server, n: usize) {
    server.wait_for_rows("select id from transactions", n);
}

fn list(server: &Server, query: &str) -> Value {
    let r = get(server, &format!("/api/v1/transactions{query}"), MASTER_KEY);
    assert_eq!(
        r.status,
        200,
        "{query}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

#[test]
fn every_call_is_listed_with_the_id_its_answer_showed() {
    let (replay, s) = setup();
    let (a, a_hash) = create(&s, json!({"name": "a"}));
    let (b, _) = create(&s, json!({"name": "b"}));
    let whole = complete(
        &s,
        &replay,
        WHOLE,
        &a,
        "HTTP-Referer: https://app.example/\r\nX-Title: Old name\r\nX-OpenRouter-Title: My App\r\n",
    );
    let streamed = complete(&s, &replay, STREAMED, &b, "X-Title: Stream\ter\r\n");
    wait_recorded(&s, 2);
    let page = list(&s, "");
    assert_eq!(page["next_cursor"], Value::Null);
    let rows = page["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{page}");
    // Newest first.
    let (second, first) = (&rows[0], &rows[1]);
    assert_eq!(first["id"], json!(whole.id));
    assert_eq!(first["type"], json!("usage"));
    assert_eq!(first["key_id"], json!(a_hash));
    assert_eq!(first["provider"], json!("openai"));
    assert!(first["model"]
        .as_str()
        .unwrap()
        .starts_with("openai/gpt-4o"));
    assert_eq!(first["prompt_tokens"], json!(whole.prompt_tokens));
    assert_eq!(first["completion_tokens"], json!(whole.completion_tokens));
    assert_eq!(first["cost"].as_f64().unwrap(), whole.cost);
    assert_eq!(first["app_referer"], json!("https://app.example/"));
    // X-OpenRouter-Title wins over X-Title.
    assert_eq!(first["app_title"], json!("My App"));
    assert_eq!(first["status"], json!("complete"));
    assert_eq!(first["upstream_status"], json!(200));
    assert_eq!(first["stream"], json!(false));
    assert!(first["latency_ms"].is_u64(), "{first}");
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(second["id"], json!(streamed.id));
    assert_eq!(second["stream"], json!(true));
    assert_eq!(second["prompt_tokens"], json!(streamed.prompt_tokens));
    assert_eq!(second["cost"].as_f64().unwrap(), streamed.cost);
    // Control characters are dropped from attribution.
    assert_eq!(second["app_title"], json!("Streamer"));
    assert_eq!(second["app_referer"], Value::Null);
}

#[test]
fn an_inference_key_lists_only_its_own_calls() {
    let (replay, s) = setup();
    let (a, a_hash) = create(&s, json!({"name": "a"}));
    let (b, b_hash) = create(&s, json!({"name": "b"}));
    let (manager, _) = create(&s, json!({"name": "m", "management": true}));
    let mine = complete(&s, &replay, WHOLE, &a, "X-Title: Mine\r\n");
    complete(&s, &replay, STREAMED, &b, "X-Title: Theirs\r\n");
    wait_recorded(&s, 2);
    let own = |query: &str| {
        let r = get(&s, &format!("/api/v1/transactions{query}"), &a);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    };
    let page = own("");
    let rows = page["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{page}");
    assert_eq!(rows[0]["id"], json!(mine.id));
    assert_eq!(rows[0]["key_id"], json!(a_hash));
    // Its own hash as a filter is the same list; another key's selects
    // nothing (the filters are ANDed with its own key), nor does another
    // key's app.
    assert_eq!(own(&format!("?key_id={a_hash}"))["data"], page["data"]);
    assert_eq!(own(&format!("?key_id={b_hash}"))["data"], json!([]));
    assert_eq!(own("?app=Theirs")["data"], json!([]));
    // A management key and the master key still see both.
    for key in [manager.as_str(), MASTER_KEY] {
        let r = get(&s, "/api/v1/transactions", key);
        assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn a_generation_is_found_by_its_id_by_its_key_and_managers_only() {
    let (replay, s) = setup();
    let (a, _) = create(&s, json!({"name": "a"}));
    let (b, _) = create(&s, json!({"name": "b"}));
    let (manager, _) = create(&s, json!({"name": "m", "management": true}));
    let answer = complete(&s, &replay, STREAMED, &a, "");
    wait_recorded(&s, 1);
    let target = format!("/api/v1/generation?id={}", answer.id);
    for key in [a.as_str(), manager.as_str(), MASTER_KEY] {
        let r = get(&s, &target, key);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let d = &r.json()["data"];
        assert_eq!(d["id"], json!(answer.id));
        assert_eq!(d["tokens_prompt"], json!(answer.prompt_tokens));
        assert_eq!(d["tokens_completion"], json!(answer.completion_tokens));
        assert_eq!(d["total_cost"].as_f64().unwrap(), answer.cost);
        assert_eq!(d["streamed"], json!(true));
        assert_eq!(d["provider_name"], json!("openai"));
    }
    // Another key's call is not there for b, as an unknown id is not.
    let other = get(&s, &target, &b);
    assert_eq!(other.status, 404);
    let unknown = get(&s, "/api/v1/generation?id=chatcmpl-none", MASTER_KEY);
    assert_eq!(unknown.status, 404);
    assert_eq!(other.json(), unknown.json());
    let missing = get(&s, "/api/v1/generation", MASTER_KEY);
    assert_eq!(missing.status, 400);
    assert!(missing.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`id`"));
}

#[test]
fn filters_select_rows_and_bad_ones_are_400s() {
    let (replay, s) = setup();
    let (a, a_hash) = create(&s, json!({"name": "a"}));
    complete(
        &s,
        &replay,
        WHOLE,
        &a,
        "HTTP-Referer: https://one.example/\r\n",
    );
    complete(&s, &replay, STREAMED, MASTER_KEY, "X-Title: Two\r\n");
    wait_recorded(&s, 2);
    let count = |query: &str| list(&s, query)["data"].as_array().unwrap().len();
    assert_eq!(count(""), 2);
    assert_eq!(count(&format!("?key_id={a_hash}")), 1);
    assert_eq!(count(&format!("?key_id={}", "0".repeat(64))), 0);
    let model = list(&s, "")["data"][0]["model"]
        .as_str()
        .unwrap()
        .to_string();
    let bare = model.strip_prefix("openai/").unwrap().to_string();
    assert!(count(&format!("?model={model}")) >= 1);
    assert_eq!(
        count(&format!("?model={model}")),
        count(&format!("?model={bare}"))
    );
    assert_eq!(count("?model=nope"), 0);
    assert_eq!(count("?app=https://one.example/"), 1);
    assert_eq!(count("?app=Two"), 1);
    assert_eq!(count("?app=Three"), 0);
    assert_eq!(count("?status=complete"), 2);
    assert_eq!(count("?status=failed"), 0);
    assert_eq!(count("?since=0"), 2);
    assert_eq!(count("?until=1970-01-02T00:00:00Z"), 0);
    assert_eq!(count("?since=10&until=5"), 0);
    assert_eq!(
        count("?since=2000-01-01T00:00:00%2B02:00&until=99999999999"),
        2
    );
    for (query, names) in [
        ("?limit=0", "`limit`"),
        ("?limit=1001", "`limit`"),
        ("?since=yesterday", "`since`"),
        ("?status=done", "`status`"),
        ("?key_id=xyz", "`key_id`"),
        ("?cursor=abc", "`cursor`"),
    ] {
        let r = get(&s, &format!("/api/v1/transactions{query}"), MASTER_KEY);
        assert_eq!(r.status, 400, "{query}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(names), "{query}: {message}");
    }
}

#[test]
fn the_cursor_pages_without_repeats_or_gaps_while_rows_are_added() {
    let (replay, s) = setup();
    for _ in 0..5 {
        complete(&s, &replay, WHOLE, MASTER_KEY, "");
    }
    wait_recorded(&s, 5);
    // The replayed answers share their id: rows are told apart by their
    // request id, which the list shows too.
    let before = request_ids(&list(&s, ""));
    assert_eq!(before.len(), 5);
    let first = list(&s, "?limit=2");
    let mut paged = request_ids(&first);
    assert_eq!(paged, before[..2]);
    // Rows added between pages are newer than the cursor: they neither
    // shift the next pages nor show up in them.
    for _ in 0..2 {
        complete(&s, &replay, WHOLE, MASTER_KEY, "");
    }
    wait_recorded(&s, 7);
    let mut cursor = first["next_cursor"].as_str().unwrap().to_string();
    loop {
        let page = list(&s, &format!("?limit=2&cursor={cursor}"));
        paged.extend(request_ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(paged, before);
    // A fresh first page starts with the new rows.
    let now = request_ids(&list(&s, ""));
    assert_eq!(now.len(), 7);
    assert_eq!(now[2..], before[..]);
}

fn request_ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["request_id"].as_str().unwrap().to_string())
        .collect()
}
