//! What a new user meets first: `serve --help` documents every setting
//! (and the README keeps up), start-up warns about a provider that will
//! send no credentials or a gateway nobody can use, and a request for a
//! provider that is missing or unreachable says which one and what to do.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use arouter_e2e::{master_bearer, Options, Response, Server};
use serde_json::{json, Value};

fn binary() -> PathBuf {
    std::env::var_os("AROUTER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/arouter")
        })
}

fn help() -> String {
    let out = Command::new(binary())
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .expect("run arouter");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every setting: (flag, environment variable, default shown in help).
const SETTINGS: &[(&str, &str, &str)] = &[
    ("--listen", "AROUTER_LISTEN", "127.0.0.1:8080"),
    ("--data-dir", "AROUTER_DATA_DIR", "./arouter-data"),
    ("--config", "AROUTER_CONFIG", ""),
    ("--shutdown-grace", "AROUTER_SHUTDOWN_GRACE", "10"),
    ("--master-key", "AROUTER_MASTER_KEY", ""),
    ("--default-model", "AROUTER_DEFAULT_MODEL", ""),
    ("--log-level", "RUST_LOG", "info"),
    ("--threads", "AROUTER_THREADS", ""),
    ("--runtime", "AROUTER_RUNTIME", "auto"),
    ("--openai-api-key", "OPENAI_API_KEY", ""),
    (
        "--openai-base-url",
        "OPENAI_BASE_URL",
        "https://api.openai.com/v1",
    ),
    ("--anthropic-api-key", "ANTHROPIC_API_KEY", ""),
    (
        "--anthropic-base-url",
        "ANTHROPIC_BASE_URL",
        "https://api.anthropic.com",
    ),
    ("--gemini-api-key", "GEMINI_API_KEY", ""),
    (
        "--gemini-base-url",
        "GEMINI_BASE_URL",
        "https://generativelanguage.googleapis.com",
    ),
    ("--max-body-bytes", "AROUTER_MAX_BODY_BYTES", "33554432"),
    (
        "--max-inflight-body-bytes",
        "AROUTER_MAX_INFLIGHT_BODY_BYTES",
        "268435456",
    ),
    ("--max-head-bytes", "AROUTER_MAX_HEAD_BYTES", "65536"),
    ("--max-headers", "AROUTER_MAX_HEADERS", "100"),
    (
        "--max-sse-line-bytes",
        "AROUTER_MAX_SSE_LINE_BYTES",
        "1048576",
    ),
    ("--header-timeout-ms", "AROUTER_HEADER_TIMEOUT_MS", "10000"),
    ("--idle-timeout-ms", "AROUTER_IDLE_TIMEOUT_MS", "60000"),
    ("--body-timeout-ms", "AROUTER_BODY_TIMEOUT_MS", "120000"),
    (
        "--upstream-pool-idle-ms",
        "AROUTER_UPSTREAM_POOL_IDLE_MS",
        "30000",
    ),
    (
        "--upstream-connect-timeout-ms",
        "AROUTER_UPSTREAM_CONNECT_TIMEOUT_MS",
        "10000",
    ),
    (
        "--upstream-first-byte-timeout-ms",
        "AROUTER_UPSTREAM_FIRST_BYTE_TIMEOUT_MS",
        "600000",
    ),
    (
        "--upstream-idle-timeout-ms",
        "AROUTER_UPSTREAM_IDLE_TIMEOUT_MS",
        "120000",
    ),
    (
        "--stream-keepalive-ms",
        "AROUTER_STREAM_KEEPALIVE_MS",
        "15000",
    ),
    ("--max-connections", "AROUTER_MAX_CONNECTIONS", "10000"),
    (
        "--write-stall-timeout-ms",
        "AROUTER_WRITE_STALL_TIMEOUT_MS",
        "60000",
    ),
    ("--linger-ms", "AROUTER_LINGER_MS", "500"),
    ("--always-include-usage", "AROUTER_ALWAYS_INCLUDE_USAGE", ""),
    (
        "--upstream-pool-max-idle",
        "AROUTER_UPSTREAM_POOL_MAX_IDLE",
        "64",
    ),
];

/// The help paragraph of one flag (from its line to the next flag's).
fn entry<'a>(help: &'a str, flag: &str) -> &'a str {
    let start = help
        .find(&format!("{flag} "))
        .or_else(|| help.find(&format!("{flag}\n")))
        .unwrap_or_else(|| panic!("{flag} missing from --help:\n{help}"));
    let rest = &help[start..];
    let end = rest[2..].find("\n  -").map_or(rest.len(), |i| i + 2);
    &rest[..end]
}

#[test]
fn help_lists_every_setting_with_its_environment_variable_and_default() {
    let help = help();
    for (flag, env, default) in SETTINGS {
        let text = entry(&help, flag);
        assert!(text.contains(&format!("[env: {env}")), "{flag}: {text}");
        if !default.is_empty() {
            assert!(
                text.contains(&format!("[default: {default}]")),
                "{flag} should show its default {default}: {text}"
            );
        }
    }
    // Secrets are never echoed back from the environment.
    let out = Command::new(binary())
        .args(["serve", "--help"])
        .env("AROUTER_MASTER_KEY", "sk-do-not-print-me")
        .env("OPENAI_API_KEY", "sk-do-not-print-me")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sk-do-not-print-me"));
}

#[test]
fn readme_documents_every_flag_and_variable_of_the_help() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let help = help();
    let mut seen = 0;
    for word in help.split(|c: char| c.is_whitespace() || c == '[' || c == ']' || c == ',') {
        let word = word.trim_end_matches([':', '.', '=']);
        let flag = word.starts_with("--") && word.len() > 2 && word != "--help";
        let env = word.len() > 3
            && word.contains('_')
            && word
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit());
        if flag || env {
            seen += 1;
            assert!(
                readme.contains(&format!("`{word}`")),
                "README.md does not document `{word}` from `arouter serve --help`"
            );
        }
    }
    assert!(
        seen >= 2 * SETTINGS.len(),
        "{seen} settings seen in:\n{help}"
    );
}

#[test]
fn every_limit_can_be_set_by_flag_and_environment() {
    // A bad value from either source is refused, naming the setting: so the
    // setting is read.
    let dir = tempfile::tempdir().unwrap();
    for (flag, env, _) in SETTINGS.iter().filter(|s| s.0.ends_with("-ms")) {
        let out = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args([flag, "0"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} 0 accepted");
        let name = flag.trim_start_matches("--").replace('-', "_");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&name),
            "{flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env(env, "0")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{env}=0 accepted");
    }
}

fn wait_for_log(server: &Server, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = server.stderr();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn startup_warns_about_providers_without_credentials_and_an_unusable_gateway() {
    let server = Server::start_with(Options {
        env: vec![
            ("ANTHROPIC_BASE_URL".into(), "http://127.0.0.1:9".into()),
            ("AROUTER_MASTER_KEY".into(), String::new()),
        ],
        config_toml: Some(
            "[providers.hosted]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"HOSTED_KEY_NOT_SET\"\n"
                .into(),
        ),
    });
    let log = wait_for_log(&server, "HOSTED_KEY_NOT_SET");
    let warns: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    let about = |needle: &str| {
        warns
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no warning about {needle}:\n{log}"))
            .to_string()
    };
    let anthropic = about("\"anthropic\"");
    assert!(anthropic.contains("ANTHROPIC_API_KEY"), "{anthropic}");
    assert!(anthropic.contains("local"), "{anthropic}");
    let hosted = about("\"hosted\"");
    assert!(hosted.contains("HOSTED_KEY_NOT_SET"), "{hosted}");
    let nobody = about("AROUTER_MASTER_KEY");
    assert!(nobody.contains("no keys"), "{nobody}");
    // A provider that has its key gets no warning.
    assert!(!warns.iter().any(|l| l.contains("\"openai\"")), "{log}");
}

fn post(server: &Server, path: &str, body: &Value) -> Response {
    let headers = format!("{}anthropic-version: 2023-06-01\r\n", master_bearer());
    server.post_json(path, &headers, body)
}

/// The error message of a response in any of the three dialects.
fn message(r: &Response) -> String {
    r.json()["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {:?}", r.json()))
        .to_string()
}

#[test]
fn a_missing_provider_is_named_with_how_to_configure_it_on_every_route() {
    // Only `openai` (from the harness) is configured.
    let server = Server::start();
    let anthropic = json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let chat =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let anthropic_hint =
        "no provider \"anthropic\" is configured: set ANTHROPIC_API_KEY or add [providers.anthropic]";
    let gemini_hint =
        "no provider \"gemini\" is configured: set GEMINI_API_KEY or add [providers.gemini]";
    let cases: Vec<(Response, &str, &str)> = vec![
        (
            post(&server, "/v1/messages", &anthropic),
            anthropic_hint,
            "/type",
        ),
        (
            post(&server, "/v1/messages/count_tokens", &anthropic),
            anthropic_hint,
            "/type",
        ),
        (
            post(
                &server,
                "/v1beta/models/gemini-2.5-flash:generateContent",
                &gemini,
            ),
            gemini_hint,
            "/error/status",
        ),
        (
            post(
                &server,
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                &gemini,
            ),
            gemini_hint,
            "/error/status",
        ),
        (
            post(&server, "/v1/models/gemini-2.5-flash:countTokens", &gemini),
            gemini_hint,
            "/error/status",
        ),
        (
            post(
                &server,
                "/v1/chat/completions",
                &chat("anthropic/claude-sonnet-4-5"),
            ),
            anthropic_hint,
            "/error/type",
        ),
        (
            post(&server, "/v1/chat/completions", &chat("acme/some-model")),
            "no provider \"acme\" is configured: add [providers.acme]",
            "/error/type",
        ),
    ];
    for (r, hint, shape) in &cases {
        // 404, as the providers answer a model they do not have.
        assert_eq!(r.status, 404, "{:?}", r.json());
        assert!(r.json().pointer(shape).is_some(), "{:?}", r.json());
        let text = message(r);
        assert!(text.contains(hint), "{text:?} lacks {hint:?}");
    }
}

#[test]
fn an_unreachable_provider_is_named_and_logged_once_in_a_while() {
    // The harness points `openai` at a closed port.
    let server = Server::start();
    let chat =
        json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..4 {
        let r = post(&server, "/v1/chat/completions", &chat);
        assert_eq!(r.status, 502);
        let text = message(&r);
        assert!(text.contains("provider \"openai\""), "{text}");
        assert!(
            !text.contains("127.0.0.1") && !text.contains("sk-"),
            "{text}"
        );
    }
    let messages = json!({"model": "openai/gpt-4o-mini", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    let r = post(&server, "/v1/messages", &messages);
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["type"], "error");
    assert!(message(&r).contains("provider \"openai\""));
    let log = wait_for_log(&server, "unreachable");
    let warns: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("unreachable"))
        .collect();
    assert_eq!(warns.len(), 1, "rate-limited to one line:\n{log}");
    assert!(warns[0].contains("\"openai\""), "{}", warns[0]);
    assert!(
        !log.contains("sk-upstream-not-used"),
        "a key reached the log"
    );
}
