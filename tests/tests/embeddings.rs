//! Embeddings end to end: Gemini's `batchEmbedContents` passed through and
//! translated both ways (OpenAI's route to a Gemini provider, Gemini's
//! route to an OpenAI one), each billed like `/v1/embeddings`.

use arouter_conformance::{spawn, ReplayConfig, ReplayHandle};
use arouter_e2e::{Options, Response, Server, MASTER_KEY};
use serde_json::{json, Value};

fn setup() -> (ReplayHandle, Server) {
    let replay = spawn(ReplayConfig::default());
    let url = replay.url();
    let server = Server::start_with(Options {
        env: vec![
            ("OPENAI_BASE_URL".into(), format!("{url}/v1")),
            ("OPENAI_API_KEY".into(), "sk-provider-openai".into()),
            ("GEMINI_BASE_URL".into(), url.clone()),
            ("GEMINI_API_KEY".into(), "sk-provider-gemini".into()),
            ("ANTHROPIC_BASE_URL".into(), url),
            ("ANTHROPIC_API_KEY".into(), "sk-provider-anthropic".into()),
        ],
        config_toml: None,
    });
    (replay, server)
}

fn post(server: &Server, path: &str, auth: &str, body: &Value) -> Response {
    server.post_json(path, &format!("{auth}{MASTER_KEY}\r\n"), body)
}

fn recorded(replay: &ReplayHandle, name: &str) -> (Value, Value) {
    let t = replay.transcript(name).expect("transcript");
    let answer = serde_json::from_slice(t.response.body.bytes()).expect("json body");
    (t.request.body.clone(), answer)
}

const BILLED: &str = "select provider, model, prompt_tokens, completion_tokens, complete from transactions order by id";

#[test]
fn gemini_batch_embeddings_pass_through_and_are_billed() {
    let (replay, server) = setup();
    let (request, answer) = recorded(&replay, "gemini/embeddings_batch.json");
    let r = post(
        &server,
        "/v1beta/models/gemini-embedding-2:batchEmbedContents",
        "x-goog-api-key: ",
        &request,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json(), answer);
    let tokens = &answer["usageMetadata"]["promptTokenCount"];
    assert_eq!(
        server.wait_for_rows(BILLED, 1),
        [format!("gemini, gemini-embedding-2, {tokens}, 0, 1")]
    );
}

#[test]
fn translated_embeddings_are_billed_with_the_providers_count() {
    let (replay, server) = setup();
    // OpenAI's route, a Gemini provider.
    let (_, gemini) = recorded(&replay, "gemini/embeddings_batch.json");
    let r = post(
        &server,
        "/v1/embeddings",
        "Authorization: Bearer ",
        &json!({"model": "gemini/gemini-embedding-2", "input": ["First text", "Second text"], "dimensions": 768}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        body["data"][1]["embedding"],
        gemini["embeddings"][1]["values"]
    );
    assert_eq!(
        body["usage"]["prompt_tokens"],
        gemini["usageMetadata"]["promptTokenCount"]
    );
    // Gemini's route, an OpenAI provider.
    let (_, openai) = recorded(&replay, "openai/embeddings_documents.json");
    let texts = ["hello", "world"].map(|t| json!({"content": {"parts": [{"text": t}]}}));
    let r = post(
        &server,
        "/v1beta/models/openai%2Ftext-embedding-3-small:batchEmbedContents",
        "x-goog-api-key: ",
        &json!({ "requests": texts }),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["embeddings"].as_array().map(Vec::len), Some(2));
    // By provider, not by id: the two rows are written by the connections'
    // threads, and on a loaded machine the second request's may be queued
    // first (seen: 1 run in 10 under load).
    let by_provider = BILLED.replace("order by id", "order by provider");
    assert_eq!(
        server.wait_for_rows(&by_provider, 2),
        [
            format!(
                "gemini, gemini-embedding-2, {}, 0, 1",
                gemini["usageMetadata"]["promptTokenCount"]
            ),
            format!(
                "openai, text-embedding-3-small, {}, 0, 1",
                openai["usage"]["prompt_tokens"]
            ),
        ]
    );
}

#[test]
fn an_anthropic_provider_has_no_embeddings() {
    let (_replay, server) = setup();
    let r = post(
        &server,
        "/v1beta/models/anthropic%2Fclaude-sonnet-4-5:embedContent",
        "x-goog-api-key: ",
        &json!({"content": {"parts": [{"text": "hi"}]}}),
    );
    assert_eq!(r.status, 404);
    let err = r.json();
    assert_eq!(err["error"]["status"], "NOT_FOUND");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic"),
        "{err}"
    );
}
