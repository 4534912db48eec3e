//! The endpoint table: every seed route, its dialect and scope.

use std::borrow::Cow;

use arouter_core::api::{classify, BatchOp, Dialect, Endpoint, GeminiMethod, Scope};
use http::Method;

fn providers(name: &str) -> bool {
    matches!(name, "openai" | "anthropic" | "gemini" | "local")
}

fn ok(method: Method, path: &str) -> Endpoint<'_> {
    classify(&method, path, &providers).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
}

#[test]
fn seed_routes() {
    let cases: Vec<(Method, &str, Endpoint<'_>, Dialect, Scope)> = vec![
        (
            Method::GET,
            "/healthz",
            Endpoint::Health,
            Dialect::OpenAi,
            Scope::Public,
        ),
        (
            Method::POST,
            "/v1/chat/completions",
            Endpoint::ChatCompletions,
            Dialect::OpenAi,
            Scope::Inference,
        ),
        (
            Method::POST,
            "/v1/embeddings",
            Endpoint::Embeddings,
            Dialect::OpenAi,
            Scope::Inference,
        ),
        (
            Method::GET,
            "/v1/models",
            Endpoint::ListModels,
            Dialect::OpenAi,
            Scope::Inference,
        ),
        (
            Method::POST,
            "/v1/messages",
            Endpoint::Messages,
            Dialect::Anthropic,
            Scope::Inference,
        ),
        (
            Method::POST,
            "/v1/messages/count_tokens",
            Endpoint::CountTokens,
            Dialect::Anthropic,
            Scope::Inference,
        ),
        (
            Method::POST,
            "/v1/messages/batches",
            Endpoint::MessageBatches(BatchOp::Create),
            Dialect::Anthropic,
            Scope::Inference,
        ),
        (
            Method::GET,
            "/v1/messages/batches",
            Endpoint::MessageBatches(BatchOp::List),
            Dialect::Anthropic,
            Scope::Inference,
        ),
        (
            Method::GET,
            "/v1/messages/batches/b1",
            Endpoint::MessageBatches(BatchOp::Get("b1")),
            Dialect::Anthropic,
            Scope::Inference,
        ),
        (
            Method::POST,
            "/v1/messages/batches/b1/cancel",
            Endpoint::MessageBatches(BatchOp::Cancel("b1")),
            Dialect::Anthropic,
            Scope::Inference,
        ),
        (
            Method::GET,
            "/v1/messages/batches/b1/results",
            Endpoint::MessageBatches(BatchOp::Results("b1")),
            Dialect::Anthropic,
            Scope::Inference,
        ),
        (
            Method::DELETE,
            "/v1/messages/batches/b1",
            Endpoint::MessageBatches(BatchOp::Delete("b1")),
            Dialect::Anthropic,
            Scope::Inference,
        ),
        (
            Method::GET,
            "/api/v1/keys",
            Endpoint::ListKeys,
            Dialect::OpenAi,
            Scope::Management,
        ),
        (
            Method::POST,
            "/api/v1/keys",
            Endpoint::CreateKey,
            Dialect::OpenAi,
            Scope::Management,
        ),
        (
            Method::GET,
            "/api/v1/keys/k1",
            Endpoint::GetKey("k1"),
            Dialect::OpenAi,
            Scope::Management,
        ),
        (
            Method::PATCH,
            "/api/v1/keys/k1",
            Endpoint::UpdateKey("k1"),
            Dialect::OpenAi,
            Scope::Management,
        ),
        (
            Method::DELETE,
            "/api/v1/keys/k1",
            Endpoint::DeleteKey("k1"),
            Dialect::OpenAi,
            Scope::Management,
        ),
        (
            Method::GET,
            "/api/v1/balance",
            Endpoint::Balance,
            Dialect::OpenAi,
            Scope::Management,
        ),
        (
            Method::GET,
            "/api/v1/transactions",
            Endpoint::Transactions,
            Dialect::OpenAi,
            Scope::Management,
        ),
        (
            Method::POST,
            "/openai/v1/files",
            Endpoint::ProviderProxy {
                provider: "openai",
                rest: "v1/files",
            },
            Dialect::OpenAi,
            Scope::Inference,
        ),
        (
            Method::GET,
            "/local/api/tags",
            Endpoint::ProviderProxy {
                provider: "local",
                rest: "api/tags",
            },
            Dialect::OpenAi,
            Scope::Inference,
        ),
    ];
    for (method, path, endpoint, dialect, scope) in cases {
        let got = ok(method.clone(), path);
        assert_eq!(got, endpoint, "{method} {path}");
        assert_eq!(
            (got.dialect(), got.scope()),
            (dialect, scope),
            "{method} {path}"
        );
    }
}

#[test]
fn gemini_routes_under_both_versions_with_provider_models() {
    let cases = [
        (
            "/v1beta/models/gemini-2.5-flash:generateContent",
            "v1beta",
            "gemini-2.5-flash",
            GeminiMethod::GenerateContent,
        ),
        (
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            "v1beta",
            "gemini-2.5-flash",
            GeminiMethod::StreamGenerateContent,
        ),
        (
            "/v1beta/models/gemini-2.5-flash:countTokens",
            "v1beta",
            "gemini-2.5-flash",
            GeminiMethod::CountTokens,
        ),
        (
            "/v1/models/gemini-2.5-flash:generateContent",
            "v1",
            "gemini-2.5-flash",
            GeminiMethod::GenerateContent,
        ),
        (
            "/v1/models/openai/gpt-4o:generateContent",
            "v1",
            "openai/gpt-4o",
            GeminiMethod::GenerateContent,
        ),
        (
            "/v1beta/models/anthropic%2Fclaude-sonnet-4-5:streamGenerateContent",
            "v1beta",
            "anthropic/claude-sonnet-4-5",
            GeminiMethod::StreamGenerateContent,
        ),
    ];
    for (path, version, model, method) in cases {
        let got = ok(Method::POST, path);
        assert_eq!(
            got,
            Endpoint::Gemini {
                version,
                model: Cow::Borrowed(model),
                method
            },
            "{path}"
        );
        assert_eq!(got.dialect(), Dialect::Google);
    }
}

#[test]
fn openai_models_path_is_not_gemini() {
    // `/v1/models/{id}` without a `:method` is not a Gemini route; with no
    // provider named `v1` it is simply unknown, in OpenAI's dialect.
    let err = classify(&Method::GET, "/v1/models/gpt-4o", &providers).unwrap_err();
    assert_eq!((err.status(), err.dialect), (404, Dialect::OpenAi));
}

#[test]
fn errors_pick_the_dialect_of_the_path() {
    let cases = [
        (Method::GET, "/v1/chat/completions", 405, Dialect::OpenAi),
        (Method::GET, "/v1/messages", 405, Dialect::Anthropic),
        (
            Method::GET,
            "/v1beta/models/x:generateContent",
            405,
            Dialect::Google,
        ),
        (
            Method::POST,
            "/v1beta/models/x:explode",
            404,
            Dialect::Google,
        ),
        (
            Method::POST,
            "/v1/messages/batches/b1/explode",
            404,
            Dialect::Anthropic,
        ),
        (Method::GET, "/nope", 404, Dialect::OpenAi),
        (Method::GET, "/", 404, Dialect::OpenAi),
        (
            Method::POST,
            "/v1beta/models/%zz:generateContent",
            400,
            Dialect::Google,
        ),
        (
            Method::POST,
            "/v1beta/models/:generateContent",
            400,
            Dialect::Google,
        ),
    ];
    for (method, path, status, dialect) in cases {
        let err = classify(&method, path, &providers).unwrap_err();
        assert_eq!(
            (err.status(), err.dialect),
            (status, dialect),
            "{method} {path}"
        );
    }
}

#[test]
fn model_names_that_could_escape_a_url_are_refused() {
    use arouter_core::route::valid_model_name;
    for ok in [
        "gpt-4o-mini",
        "claude-sonnet-4-5@20250929",
        "meta-llama/Llama-3.1-8B",
        "llama3:8b",
        "models/gemini-2.5-pro",
    ] {
        assert!(valid_model_name(ok), "{ok}");
    }
    for bad in [
        "gemini-2.5-flash HTTP/1.1\r\nX: y",
        "x\r\n",
        "x/../../v1beta/files",
        "..",
        "a?b",
        "a#b",
        "a%2F..",
        "a b",
        "",
    ] {
        assert!(!valid_model_name(bad), "{bad:?}");
    }
    assert!(!valid_model_name(&"a".repeat(257)));
}
