//! Health, model listing, credentials and route errors, over real TCP.

use arouter_e2e::{Server, MASTER_KEY};

#[test]
fn healthz_needs_no_key() {
    let s = Server::start();
    let r = s.get("/healthz", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["status"], "ok");
}

#[test]
fn models_with_each_credential_form() {
    let s = Server::start();
    let forms = [
        (
            "/v1/models".to_string(),
            format!("Authorization: Bearer {MASTER_KEY}\r\n"),
        ),
        (
            "/v1/models".to_string(),
            format!("X-Api-Key: {MASTER_KEY}\r\n"),
        ),
        (
            "/v1/models".to_string(),
            format!("x-goog-api-key: {MASTER_KEY}\r\n"),
        ),
        (format!("/v1/models?key={MASTER_KEY}"), String::new()),
    ];
    for (target, headers) in forms {
        let r = s.get(&target, &headers);
        assert_eq!(
            r.status,
            200,
            "{target} {headers}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        let v = r.json();
        assert_eq!(v["object"], "list");
        let data = v["data"].as_array().expect("data array");
        assert!(data.iter().any(|m| m["id"] == "openai/gpt-4o-mini"), "{v}");
        for m in data {
            let id = m["id"].as_str().expect("id");
            assert!(
                id.split_once('/')
                    .is_some_and(|(p, m)| !p.is_empty() && !m.is_empty()),
                "{id}"
            );
            assert_eq!(m["object"], "model");
            assert!(m["created"].is_u64());
            assert!(m["owned_by"].is_string());
        }
    }
}

#[test]
fn models_lists_every_configured_provider() {
    let s = Server::start_with(arouter_e2e::Options {
        env: vec![
            ("ANTHROPIC_API_KEY".into(), "sk-a".into()),
            ("GEMINI_API_KEY".into(), "sk-g".into()),
        ],
        config_toml: Some(
            "[providers.local]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:11434/v1\"\nmodels = [\"llama3.2\"]\n".into(),
        ),
    });
    let v = s
        .get(
            "/v1/models",
            &format!("Authorization: Bearer {MASTER_KEY}\r\n"),
        )
        .json();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for prefix in ["openai/", "anthropic/", "gemini/", "local/llama3.2"] {
        assert!(
            ids.iter().any(|id| id.starts_with(prefix)),
            "{prefix} missing in {ids:?}"
        );
    }
}

#[test]
fn missing_and_wrong_keys_are_401_in_the_route_dialect() {
    let s = Server::start();
    // OpenAI routes.
    for headers in [
        "",
        "Authorization: Bearer sk-wrong\r\n",
        "Authorization: Basic Zm9vOmJhcg==\r\n",
    ] {
        let r = s.get("/v1/models", headers);
        assert_eq!(r.status, 401, "{headers}");
        let v = r.json();
        assert_eq!(v["error"]["type"], "authentication_error");
        assert!(v["error"]["message"].is_string());
        let text = String::from_utf8_lossy(&r.body);
        assert!(!text.contains("sk-wrong"), "key echoed: {text}");
    }
    // Anthropic route.
    let r = s.request(b"POST /v1/messages HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    assert_eq!(r.status, 401);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    // Gemini routes, both versions.
    for path in [
        "/v1beta/models/gemini-2.5-flash:generateContent",
        "/v1/models/gemini-2.5-flash:generateContent",
    ] {
        let r = s.request(format!("POST {path}?key=nope HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}").as_bytes());
        assert_eq!(r.status, 401, "{path}");
        let v = r.json();
        assert_eq!(v["error"]["code"], 401);
        assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
    }
}

#[test]
fn unknown_routes_are_404_after_auth() {
    let s = Server::start();
    let auth = format!("Authorization: Bearer {MASTER_KEY}\r\n");
    let r = s.get("/v1/nope", &auth);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
    let r = s.get(
        "/v1/messages/nope/deeper/still",
        &format!("x-api-key: {MASTER_KEY}\r\n"),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["type"], "error");
    let r = s.request(format!("POST /v1beta/models/x:frobnicate HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["status"], "NOT_FOUND");
    // Without a key, nothing about routes leaks: 401 first.
    assert_eq!(s.get("/v1/nope", "").status, 401);
}

#[test]
fn wrong_method_is_405_with_allow() {
    let s = Server::start();
    let auth = format!("Authorization: Bearer {MASTER_KEY}\r\n");
    let r = s.request(
        format!("DELETE /healthz HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = s.get("/v1/chat/completions", &auth);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.json()["error"]["code"], "method_not_allowed");
    // Without a key the route is not even confirmed.
    assert_eq!(s.get("/v1/chat/completions", "").status, 401);
}

#[test]
fn store_is_created_on_first_start() {
    let s = Server::start();
    assert!(s.data_dir.path().join("data/arouter.sqlite3").exists());
}

#[test]
fn keys_never_reach_the_logs() {
    let s = Server::start();
    let _ = s.get(&format!("/v1/models?key={MASTER_KEY}"), "");
    let _ = s.get("/v1/models?key=sk-wrong-secret-key", "");
    let _ = s.get("/v1/models", "Authorization: Bearer sk-other-secret\r\n");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = s.stderr();
    assert!(log.contains("/v1/models"), "access log expected:\n{log}");
    for secret in [
        MASTER_KEY,
        "sk-wrong-secret-key",
        "sk-other-secret",
        "sk-upstream-not-used",
    ] {
        assert!(!log.contains(secret), "{secret} leaked:\n{log}");
    }
}
