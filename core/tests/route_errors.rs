//! Routing errors name what is missing and how to fix it: a provider that
//! is not configured, rather than the model's spelling.

use arouter_core::api::Dialect;
use arouter_core::gateway::{Gateway, Provider, ProviderKind};
use arouter_core::route::{resolve, resolve_native};
use arouter_core::upstream::UpstreamAddr;
use arouter_core::Limits;

fn gateway(names: &[&str]) -> Gateway {
    let providers = names
        .iter()
        .map(|name| Provider {
            name: name.to_string(),
            kind: ProviderKind::OpenAi,
            addr: UpstreamAddr::parse("http://127.0.0.1:1/v1").unwrap(),
            api_key: None,
            official: false,
            responses: false,
        })
        .collect();
    Gateway::new(Limits::default(), providers, Vec::new(), None)
}

fn message(result: Result<arouter_core::route::Candidate, arouter_core::api::ApiError>) -> String {
    let err = result.expect_err("an error");
    assert_eq!(err.code, Some("unknown_provider"));
    err.message.into_owned()
}

#[test]
fn a_missing_vendor_provider_is_named_with_its_variable() {
    let gw = gateway(&["openai"]);
    let m = message(resolve(&gw, Dialect::OpenAi, "anthropic/claude-sonnet-4-5"));
    assert!(
        m.starts_with("no provider \"anthropic\" is configured: set ANTHROPIC_API_KEY or add [providers.anthropic]"),
        "{m}"
    );
    let m = message(resolve(&gw, Dialect::OpenAi, "acme/m"));
    assert!(
        m.starts_with("no provider \"acme\" is configured: add [providers.acme]"),
        "{m}"
    );
    assert!(m.contains("configured providers: openai"), "{m}");
}

#[test]
fn a_vendor_model_on_its_native_route_needs_its_vendor() {
    // With one other provider, a bare `claude-…` is not sent to it.
    let gw = gateway(&["openai"]);
    let m = message(resolve_native(
        &gw,
        Dialect::Anthropic,
        Some(ProviderKind::Anthropic),
        "claude-sonnet-4-5",
    ));
    assert!(m.contains("no provider \"anthropic\""), "{m}");
    let m = message(resolve_native(
        &gw,
        Dialect::Google,
        Some(ProviderKind::Gemini),
        "gemini-2.5-flash",
    ));
    assert!(m.contains("set GEMINI_API_KEY"), "{m}");
    // Another name on a native route still goes to the lone provider
    // (an Anthropic SDK in front of a single Ollama).
    let c = resolve_native(
        &gw,
        Dialect::Anthropic,
        Some(ProviderKind::Anthropic),
        "llama3.2",
    )
    .unwrap();
    assert_eq!(c.model, "llama3.2");
    // With no provider at all, the native one is named.
    let m = message(resolve_native(
        &gateway(&[]),
        Dialect::Anthropic,
        Some(ProviderKind::Anthropic),
        "some-model",
    ));
    assert!(m.contains("no provider \"anthropic\""), "{m}");
}
