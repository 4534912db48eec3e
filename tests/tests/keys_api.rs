//! The keys API end to end: real binary, raw HTTP. A key made through the
//! API works (or stops working) on the very next request; expired,
//! disabled, management-only and model-restricted keys are refused in the
//! route's dialect; the secret is shown once and appears nowhere else.

use arouter_conformance::{spawn, ReplayConfig, ReplayHandle};
use arouter_e2e::{Options, Response, Server, MASTER_KEY};
use serde_json::{json, Value};

fn setup() -> (ReplayHandle, Server) {
    let replay = spawn(ReplayConfig::default());
    let url = replay.url();
    let server = Server::start_with(Options {
        env: vec![
            ("OPENAI_BASE_URL".into(), format!("{url}/v1")),
            ("OPENAI_API_KEY".into(), "sk-provider-key".into()),
        ],
        config_toml: None,
    });
    (replay, server)
}

/// Creates a key with the master key; its secret and hash.
fn create(server: &Server, body: Value) -> (String, String) {
    let r = server.call("POST", "/api/v1/keys", MASTER_KEY, Some(&body));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let secret = v["key"].as_str().unwrap().to_string();
    let hash = v["data"]["hash"].as_str().unwrap().to_string();
    (secret, hash)
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn code(r: &Response) -> Value {
    r.json()["error"]["code"].clone()
}

#[test]
fn a_change_through_the_api_holds_on_the_next_request() {
    let (_replay, s) = setup();
    let (secret, hash) = create(&s, json!({"name": "ci"}));
    // Usable at once, on another connection.
    let me = s.call("GET", "/api/v1/key", &secret, None);
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["data"]["is_management_key"], json!(false));
    let off = s.call(
        "PATCH",
        &format!("/api/v1/keys/{hash}"),
        MASTER_KEY,
        Some(&json!({"disabled": true})),
    );
    assert_eq!(off.status, 200);
    assert_eq!(off.json()["data"]["disabled"], json!(true));
    assert_eq!(s.call("GET", "/api/v1/key", &secret, None).status, 401);
    s.call(
        "PATCH",
        &format!("/api/v1/keys/{hash}"),
        MASTER_KEY,
        Some(&json!({"disabled": false})),
    );
    assert_eq!(s.call("GET", "/api/v1/key", &secret, None).status, 200);
    let gone = s.call("DELETE", &format!("/api/v1/keys/{hash}"), MASTER_KEY, None);
    assert_eq!(gone.json(), json!({"deleted": true}));
    assert_eq!(s.call("GET", "/api/v1/key", &secret, None).status, 401);
    let again = s.call("GET", &format!("/api/v1/keys/{hash}"), MASTER_KEY, None);
    assert_eq!(again.status, 404);
}

#[test]
fn an_expired_key_is_a_401() {
    let (_replay, s) = setup();
    let (secret, _) = create(
        &s,
        json!({"name": "old", "expires_at": "2020-01-01T00:00:00Z"}),
    );
    let r = s.call(
        "POST",
        "/v1/chat/completions",
        &secret,
        Some(&chat("openai/gpt-4o-mini")),
    );
    assert_eq!(r.status, 401);
    assert_eq!(code(&r), json!("expired_api_key"));
    // Listed only when asked for.
    let listed = s.call("GET", "/api/v1/keys", MASTER_KEY, None).json();
    assert_eq!(listed["data"], json!([]));
    let all = s
        .call("GET", "/api/v1/keys?include_expired=true", MASTER_KEY, None)
        .json();
    assert_eq!(all["data"][0]["expires_at"], json!("2020-01-01T00:00:00Z"));
}

#[test]
fn allowed_models_refuse_others_in_each_dialect() {
    let (replay, s) = setup();
    let (secret, _) = create(
        &s,
        json!({"name": "narrow", "allowed_models": ["openai/gpt-4o"]}),
    );
    let refused = s.call(
        "POST",
        "/v1/chat/completions",
        &secret,
        Some(&chat("openai/gpt-4o-mini")),
    );
    assert_eq!(refused.status, 403);
    assert_eq!(code(&refused), json!("model_not_allowed"));

    let anthropic = s.call(
        "POST",
        "/v1/messages",
        &secret,
        Some(&json!({"model": "openai/gpt-4o-mini", "max_tokens": 5,
                     "messages": [{"role": "user", "content": "hi"}]})),
    );
    assert_eq!(anthropic.status, 403);
    assert_eq!(anthropic.json()["type"], json!("error"));
    assert_eq!(anthropic.json()["error"]["type"], json!("permission_error"));

    let gemini = s.call(
        "POST",
        "/v1beta/models/openai%2Fgpt-4o-mini:generateContent",
        &secret,
        Some(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})),
    );
    assert_eq!(gemini.status, 403);
    assert_eq!(gemini.json()["error"]["status"], json!("PERMISSION_DENIED"));

    // The allowed model goes through to the provider.
    let t = replay
        .transcript("openai/chat_nonstream_user_id.json")
        .unwrap();
    let mut body = t.request.body.clone();
    let model = body["model"].as_str().unwrap().to_string();
    assert_eq!(model, "gpt-4o");
    body["model"] = json!(format!("openai/{model}"));
    let ok = s.call("POST", "/v1/chat/completions", &secret, Some(&body));
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
}

#[test]
fn management_keys_only_manage_and_inference_keys_never_do() {
    let (_replay, s) = setup();
    let (admin, _) = create(&s, json!({"name": "admin", "management": true}));
    let (user, _) = create(&s, json!({"name": "user"}));
    let r = s.call(
        "POST",
        "/v1/chat/completions",
        &admin,
        Some(&chat("openai/gpt-4o-mini")),
    );
    assert_eq!(r.status, 403);
    assert_eq!(code(&r), json!("management_key"));
    let listed = s.call("GET", "/api/v1/keys", &admin, None);
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["data"].as_array().unwrap().len(), 2);
    let made = s.call(
        "POST",
        "/api/v1/keys",
        &admin,
        Some(&json!({"name": "by-admin"})),
    );
    assert_eq!(made.status, 201);
    let me = s.call("GET", "/api/v1/key", &admin, None).json();
    assert_eq!(me["data"]["is_management_key"], json!(true));

    // Regression: a management key minted management keys of its own (or
    // promoted an inference key), copying its power into keys the owner
    // never saw. Only the master key grants the scope.
    let (_, user_hash) = create(&s, json!({"name": "promote-me"}));
    let minted = s.call(
        "POST",
        "/api/v1/keys",
        &admin,
        Some(&json!({"name": "sub-admin", "management": true})),
    );
    assert_eq!(
        minted.status,
        403,
        "{}",
        String::from_utf8_lossy(&minted.body)
    );
    // The management API answers in OpenRouter's shape: the status as
    // `error.code`, ours in `metadata`.
    assert_eq!(
        minted.json()["error"]["metadata"]["code"],
        json!("forbidden"),
        "{}",
        String::from_utf8_lossy(&minted.body)
    );
    let path = format!("/api/v1/keys/{user_hash}");
    let promoted = s.call("PATCH", &path, &admin, Some(&json!({"management": true})));
    assert_eq!(promoted.status, 403);
    let still = s.call("GET", &path, MASTER_KEY, None).json();
    assert_eq!(still["data"]["management"], json!(false));
    // A management key may still edit other fields, and the master key may promote.
    let renamed = s.call(
        "PATCH",
        &path,
        &admin,
        Some(&json!({"name": "renamed", "management": false})),
    );
    assert_eq!(renamed.status, 200);
    let promoted = s.call(
        "PATCH",
        &path,
        MASTER_KEY,
        Some(&json!({"management": true})),
    );
    assert_eq!(promoted.status, 200);
    assert_eq!(promoted.json()["data"]["management"], json!(true));

    let r = s.call("GET", "/api/v1/keys", &user, None);
    assert_eq!(r.status, 403);
    let r = s.call("POST", "/api/v1/keys", &user, Some(&json!({"name": "x"})));
    assert_eq!(r.status, 403);
}

#[test]
fn the_secret_is_shown_once_and_logged_nowhere() {
    let (_replay, s) = setup();
    let (secret, hash) = create(
        &s,
        json!({"name": "quiet", "rate_limit": {"requests": 50, "interval": "60s"}}),
    );
    assert!(secret.starts_with("sk-ar-v1-"));
    // Use it, list it, get it, change it.
    assert_eq!(s.call("GET", "/api/v1/key", &secret, None).status, 200);
    let bodies = [
        s.call("GET", "/api/v1/keys", MASTER_KEY, None),
        s.call("GET", &format!("/api/v1/keys/{hash}"), MASTER_KEY, None),
        s.call(
            "PATCH",
            &format!("/api/v1/keys/{hash}"),
            MASTER_KEY,
            Some(&json!({"name": "q"})),
        ),
        s.call("GET", "/api/v1/key", &secret, None),
    ];
    let tail = &secret[secret.len() - 20..];
    for r in &bodies {
        assert_eq!(r.status, 200);
        let text = String::from_utf8_lossy(&r.body);
        assert!(!text.contains(tail), "secret in a body: {text}");
    }
    let label = bodies[1].json()["data"]["label"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(label.contains("..."), "{label}");
    assert_eq!(
        bodies[1].json()["data"]["rate_limit"],
        json!({"requests": 50, "interval": "60s"})
    );
    let log = s.stderr();
    assert!(
        log.contains("/api/v1/keys"),
        "the log has the calls:\n{log}"
    );
    assert!(!log.contains(tail), "secret in the server's log");
    assert!(!log.contains(MASTER_KEY), "master key in the server's log");
}
