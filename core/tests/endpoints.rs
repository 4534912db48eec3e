//! The endpoint table: every seed route, its dialect and scope.

use std::borrow::Cow;

use arouter_core::api::{classify, dashboard, BatchOp, Dialect, Endpoint, GeminiMethod, Scope};
use http::Method;

fn providers(name: &str) -> Option<Dialect> {
    match name {
        "openai" | "local" => Some(Dialect::OpenAi),
        "anthropic" => Some(Dialect::Anthropic),
        "gemini" => Some(Dialect::Google),
        _ => None,
    }
}

fn ok(method: Method, path: &str) -> Endpoint<'_> {
    classify(&method, path, Dialect::OpenAi, &providers)
        .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
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
            Method::GET,
            "/openapi.yaml",
            Endpoint::OpenApi,
            Dialect::OpenAi,
            Scope::Public,
        ),
        (
            Method::GET,
            "/dashboard",
            Endpoint::Dashboard(dashboard::find("")),
            Dialect::OpenAi,
            Scope::Public,
        ),
        (
            Method::GET,
            "/dashboard/vendor/chart.umd.min.js",
            Endpoint::Dashboard(dashboard::find("/vendor/chart.umd.min.js")),
            Dialect::OpenAi,
            Scope::Public,
        ),
        (
            Method::GET,
            "/dashboard/missing.js",
            Endpoint::Dashboard(None),
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
            Method::POST,
            "/v1/responses",
            Endpoint::Responses,
            Dialect::Responses,
            Scope::Inference,
        ),
        (
            Method::GET,
            "/v1/models",
            Endpoint::ListModels(Dialect::OpenAi),
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
            "/api/v1/key",
            Endpoint::CurrentKey,
            Dialect::OpenAi,
            Scope::Key,
        ),
        (
            Method::GET,
            "/api/v1/balance",
            Endpoint::Balance,
            Dialect::OpenAi,
            Scope::Management,
        ),
        (
            Method::POST,
            "/api/v1/balance",
            Endpoint::AddCredits,
            Dialect::OpenAi,
            Scope::Management,
        ),
        (
            Method::GET,
            "/api/v1/credits",
            Endpoint::Credits,
            Dialect::OpenAi,
            Scope::Management,
        ),
        (
            Method::GET,
            "/metrics",
            Endpoint::Metrics,
            Dialect::OpenAi,
            Scope::Management,
        ),
        (
            Method::GET,
            "/api/v1/transactions",
            Endpoint::Transactions,
            Dialect::OpenAi,
            Scope::Key,
        ),
        (
            Method::POST,
            "/openai/v1/files",
            Endpoint::ProviderProxy {
                provider: "openai",
                rest: "v1/files",
                dialect: Dialect::OpenAi,
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
                dialect: Dialect::OpenAi,
            },
            Dialect::OpenAi,
            Scope::Inference,
        ),
        (
            Method::POST,
            "/anthropic/v1/messages",
            Endpoint::ProviderProxy {
                provider: "anthropic",
                rest: "v1/messages",
                dialect: Dialect::Anthropic,
            },
            Dialect::Anthropic,
            Scope::Inference,
        ),
        (
            Method::POST,
            "/gemini/v1beta/models/gemini-2.5-flash:generateContent",
            Endpoint::ProviderProxy {
                provider: "gemini",
                rest: "v1beta/models/gemini-2.5-flash:generateContent",
                dialect: Dialect::Google,
            },
            Dialect::Google,
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
fn a_model_resource_is_answered_in_the_dialect_the_client_speaks() {
    // `/v1/models/{id}` has no `:method` suffix: each SDK's `models.retrieve`
    // / `models.get`, the model raw or percent-encoded (`%2F`).
    for (path, speaks, dialect, model) in [
        (
            "/v1/models/gpt-4o",
            Dialect::OpenAi,
            Dialect::OpenAi,
            "gpt-4o",
        ),
        (
            "/v1/models/openai%2Fgpt-4o",
            Dialect::OpenAi,
            Dialect::OpenAi,
            "openai/gpt-4o",
        ),
        (
            "/v1/models/anthropic/claude-x",
            Dialect::Anthropic,
            Dialect::Anthropic,
            "anthropic/claude-x",
        ),
        (
            "/v1/models/gemini-2.5-flash",
            Dialect::Google,
            Dialect::Google,
            "gemini-2.5-flash",
        ),
        // `/v1beta/` is Gemini's whatever the headers say.
        (
            "/v1beta/models/openai/gpt-4o",
            Dialect::OpenAi,
            Dialect::Google,
            "openai/gpt-4o",
        ),
        // A fine-tuned OpenAI id holds colons.
        (
            "/v1/models/ft:gpt-4o:org:abc",
            Dialect::OpenAi,
            Dialect::OpenAi,
            "ft:gpt-4o:org:abc",
        ),
    ] {
        let got = classify(&Method::GET, path, speaks, &providers).expect(path);
        assert_eq!(
            got,
            Endpoint::GetModel {
                dialect,
                model: Cow::Owned(model.to_string())
            },
            "{path}"
        );
        assert_eq!((got.dialect(), got.scope()), (dialect, Scope::Inference));
    }
    for (path, speaks, dialect) in [
        ("/v1/models", Dialect::OpenAi, Dialect::OpenAi),
        ("/v1/models", Dialect::Anthropic, Dialect::Anthropic),
        ("/v1/models", Dialect::Google, Dialect::Google),
        ("/v1beta/models", Dialect::OpenAi, Dialect::Google),
    ] {
        assert_eq!(
            classify(&Method::GET, path, speaks, &providers),
            Ok(Endpoint::ListModels(dialect)),
            "{path} as {speaks:?}"
        );
    }
    let err = classify(
        &Method::POST,
        "/v1/models/gpt-4o",
        Dialect::Anthropic,
        &providers,
    )
    .unwrap_err();
    assert_eq!((err.status(), err.dialect), (405, Dialect::Anthropic));
}

#[test]
fn gemini_embedding_methods() {
    for (verb, method) in [
        ("embedContent", GeminiMethod::EmbedContent),
        ("batchEmbedContents", GeminiMethod::BatchEmbedContents),
    ] {
        for version in ["v1beta", "v1"] {
            let path = format!("/{version}/models/openai%2Ftext-embedding-3-small:{verb}");
            let got = classify(&Method::POST, &path, Dialect::OpenAi, &providers).expect("route");
            assert_eq!(
                got,
                Endpoint::Gemini {
                    version,
                    model: Cow::Owned("openai/text-embedding-3-small".into()),
                    method
                }
            );
            assert_eq!(got.dialect(), Dialect::Google);
        }
    }
}

#[test]
fn the_spoken_dialect_comes_from_the_sdks_headers() {
    use arouter_core::api::endpoint::spoken_dialect;
    let with = |name: &'static str| move |h: &http::HeaderName| (h == name).then_some("x");
    assert_eq!(
        spoken_dialect(&with("anthropic-version")),
        Dialect::Anthropic
    );
    assert_eq!(spoken_dialect(&with("x-goog-api-client")), Dialect::Google);
    // A credential form is no dialect: any client may send its key so.
    assert_eq!(spoken_dialect(&with("x-goog-api-key")), Dialect::OpenAi);
    assert_eq!(spoken_dialect(&with("authorization")), Dialect::OpenAi);
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
        let err = classify(&method, path, Dialect::OpenAi, &providers).unwrap_err();
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

#[test]
fn the_proxy_takes_the_methods_it_documents_and_405s_the_others() {
    for method in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ] {
        assert!(matches!(
            ok(method, "/openai/v1/models"),
            Endpoint::ProviderProxy { .. }
        ));
    }
    for method in [Method::TRACE, Method::OPTIONS, Method::CONNECT] {
        let err =
            classify(&method, "/openai/v1/models", Dialect::OpenAi, &providers).expect_err("405");
        assert_eq!(err.status(), 405, "{method}");
        assert_eq!(err.allow, Some("GET, POST, PUT, PATCH, DELETE"));
    }
    // An unknown first segment is still no route at all.
    let err = classify(&Method::TRACE, "/nope/x", Dialect::OpenAi, &providers).expect_err("404");
    assert_eq!(err.status(), 404);
}

#[test]
fn openrouter_base_url_aliases_are_the_v1_handlers() {
    // An OpenRouter client changes only its base URL to `…/api/v1`.
    for (method, alias, plain) in [
        (
            Method::POST,
            "/api/v1/chat/completions",
            "/v1/chat/completions",
        ),
        (Method::POST, "/api/v1/embeddings", "/v1/embeddings"),
        (Method::POST, "/api/v1/responses", "/v1/responses"),
    ] {
        let endpoint = ok(method.clone(), alias);
        assert_eq!(endpoint, ok(method.clone(), plain), "{alias}");
        assert_eq!(
            endpoint.dialect(),
            ok(method.clone(), plain).dialect(),
            "{alias}"
        );
        assert_eq!(endpoint.scope(), Scope::Inference, "{alias}");
    }
    // The model list is OpenRouter's own shape there (any key may read
    // it), and OpenRouter clients speak OpenAI's dialect whatever their
    // headers say.
    for (path, expected) in [
        ("/api/v1/models", Endpoint::OpenRouterModels),
        ("/api/v1/models/count", Endpoint::OpenRouterModelCount),
    ] {
        let listing = classify(&Method::GET, path, Dialect::Anthropic, &providers);
        assert_eq!(listing, Ok(expected), "{path}");
        assert_eq!(ok(Method::GET, path).dialect(), Dialect::OpenAi);
        assert_eq!(ok(Method::GET, path).scope(), Scope::Key);
    }
    let wrong = classify(
        &Method::GET,
        "/api/v1/chat/completions",
        Dialect::OpenAi,
        &providers,
    )
    .unwrap_err();
    assert_eq!(wrong.status(), 405);
}

#[test]
fn a_provider_prefixed_model_path_is_a_gemini_call() {
    // The AI SDK's Google provider writes `google('openai/gpt-4o')` as
    // `/v1beta/openai/gpt-4o:generateContent` (an id with a `/` is taken
    // for a resource path): every method, under `v1beta` and `v1`.
    let verbs = [
        ("generateContent", GeminiMethod::GenerateContent),
        ("streamGenerateContent", GeminiMethod::StreamGenerateContent),
        ("countTokens", GeminiMethod::CountTokens),
        ("embedContent", GeminiMethod::EmbedContent),
        ("batchEmbedContents", GeminiMethod::BatchEmbedContents),
    ];
    for (verb, method) in verbs {
        for version in ["v1beta", "v1"] {
            for model in [
                "openai/gpt-4o",
                "gemini/gemini-2.5-flash",
                "local/org/llama3:8b",
            ] {
                let path = format!("/{version}/{model}:{verb}");
                let got = classify(&Method::POST, &path, Dialect::OpenAi, &providers)
                    .unwrap_or_else(|e| panic!("{path}: {e:?}"));
                let want = Endpoint::Gemini {
                    version,
                    model: Cow::Borrowed(model),
                    method,
                };
                assert_eq!(got, want, "{path}");
                assert_eq!(got.dialect(), Dialect::Google, "{path}");
                assert_eq!(got.scope(), Scope::Inference, "{path}");
            }
        }
    }
}

#[test]
fn a_provider_prefixed_path_leaves_the_other_routes_alone() {
    // The provider proxy keeps its own paths, `:method` and all.
    assert_eq!(
        ok(
            Method::POST,
            "/gemini/v1beta/models/gemini-2.5-flash:generateContent"
        ),
        Endpoint::ProviderProxy {
            provider: "gemini",
            rest: "v1beta/models/gemini-2.5-flash:generateContent",
            dialect: Dialect::Google,
        }
    );
    // `models/` is Gemini's own resource path, as before.
    assert!(matches!(
        ok(Method::POST, "/v1beta/models/openai/gpt-4o:countTokens"),
        Endpoint::Gemini { ref model, .. } if model == "openai/gpt-4o"
    ));
    // The fixed routes under /v1/ are what they were.
    assert_eq!(
        ok(Method::POST, "/v1/chat/completions"),
        Endpoint::ChatCompletions
    );
    // A first segment that names no provider is no route (Gemini's
    // `tunedModels/…` is not served); without a Gemini method, nor is it.
    for (method, path, status, dialect) in [
        (
            Method::POST,
            "/v1beta/tunedModels/x:generateContent",
            404,
            Dialect::Google,
        ),
        (
            Method::POST,
            "/v1/nope/gpt-4o:generateContent",
            404,
            Dialect::OpenAi,
        ),
        (Method::GET, "/v1/openai/gpt-4o", 404, Dialect::OpenAi),
        (
            Method::POST,
            "/v1beta/openai/gpt-4o:bogus",
            404,
            Dialect::Google,
        ),
        // A Gemini method is called with POST.
        (
            Method::GET,
            "/v1/openai/gpt-4o:generateContent",
            405,
            Dialect::Google,
        ),
    ] {
        let err = classify(&method, path, Dialect::OpenAi, &providers).unwrap_err();
        assert_eq!(
            (err.status(), err.dialect),
            (status, dialect),
            "{method} {path}"
        );
    }
}
