//! Loading configs from flags, environment and file.

use std::collections::HashMap;

use super::providers::default_base_url;
use super::*;

fn args() -> ServeArgs {
    ServeArgs {
        shutdown_grace: 10,
        log_level: "info".into(),
        ..ServeArgs::default()
    }
}

fn load(args: &ServeArgs, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_sources(args, &|k| map.get(k).cloned())
}

#[test]
fn defaults_without_anything() {
    let c = load(&args(), &[]).unwrap();
    assert_eq!(c.listen, DEFAULT_LISTEN);
    assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    assert!(c.providers.is_empty());
    assert!(c.master_key.is_none());
    assert!(
        !c.prepaid,
        "a self-hosted gateway serves with no credit added"
    );
}

#[test]
fn billing_prepaid_comes_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arouter.toml");
    std::fs::write(&path, "[billing]\nprepaid = true\n").unwrap();
    let mut a = args();
    a.config = Some(path.clone());
    assert!(load(&a, &[]).unwrap().prepaid);
    std::fs::write(&path, "[billing]\nprepaid = \"yes\"\n").unwrap();
    assert!(load(&a, &[]).is_err());
    std::fs::write(&path, "[billing]\npostpaid = true\n").unwrap();
    assert!(load(&a, &[]).is_err());
}

#[test]
fn providers_from_env_follow_sdk_base_url_conventions() {
    let c = load(
        &args(),
        &[
            ("OPENAI_API_KEY", "sk-o"),
            ("ANTHROPIC_API_KEY", "sk-a"),
            ("GEMINI_BASE_URL", "http://127.0.0.1:9999"),
        ],
    )
    .unwrap();
    let names: Vec<_> = c.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["openai", "anthropic", "gemini"]);
    assert_eq!(c.providers[0].base_url, "https://api.openai.com/v1");
    assert_eq!(c.providers[1].base_url, "https://api.anthropic.com");
    assert_eq!(c.providers[2].base_url, "http://127.0.0.1:9999");
    assert!(c.providers[2].api_key.is_none());
    let gw = c.gateway().unwrap();
    assert!(gw.models().iter().any(|m| m.id == "openai/gpt-4o-mini"));
    assert!(gw
        .models()
        .iter()
        .any(|m| m.id.starts_with("anthropic/claude")));
    assert!(gw
        .models()
        .iter()
        .any(|m| m.id.starts_with("gemini/gemini")));
}

#[test]
fn file_adds_openai_compatible_providers_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arouter.toml");
    std::fs::write(
        &path,
        r#"
listen = "127.0.0.1:9000"
default_model = "vllm/llama"
[limits]
max_body_bytes = 1024
body_timeout_ms = 5000
upstream_pool_idle_ms = 2500
[providers.vllm]
kind = "openai"
base_url = "http://127.0.0.1:8000/v1"
api_key_env = "VLLM_KEY"
models = ["llama", "qwen"]
"#,
    )
    .unwrap();
    let mut a = args();
    a.config = Some(path);
    a.listen = Some("127.0.0.1:7000".into());
    let c = load(&a, &[("VLLM_KEY", "k")]).unwrap();
    assert_eq!(c.listen, "127.0.0.1:7000", "flag beats file");
    assert_eq!(c.limits.max_body_bytes, 1024);
    assert_eq!(c.limits.body_timeout_ms, 5000);
    assert_eq!(c.limits.upstream_pool_idle_ms, 2500);
    assert_eq!(c.default_model.as_deref(), Some("vllm/llama"));
    assert_eq!(c.providers[0].api_key.as_deref(), Some("k"));
    let ids: Vec<_> = c
        .gateway()
        .unwrap()
        .models()
        .iter()
        .map(|m| m.id.clone())
        .collect();
    assert_eq!(ids, ["vllm/llama", "vllm/qwen"]);
}

#[test]
fn bad_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    for (text, needle) in [
        ("[providers.x]\nkind = \"cohere\"\n", "unknown kind"),
        ("[providers.v1]\nkind = \"openai\"\n", "not allowed"),
        (
            "[providers.x]\nkind = \"openai\"\nbase_url = \"ftp://h\"\n",
            "must start with",
        ),
        ("nonsense = 1\n", "invalid config"),
        (
            "[limits]\nstream_keepalive_ms = 0\n",
            "stream_keepalive_ms must be between",
        ),
        (
            "[limits]\nidle_timeout_ms = 18446744073709551615\n",
            "idle_timeout_ms must be between",
        ),
        (
            "[limits]\nbody_timeout_ms = 0\n",
            "body_timeout_ms must be between",
        ),
        (
            "[limits]\nupstream_pool_idle_ms = 10\n",
            "upstream_pool_idle_ms must be between",
        ),
        (
            "[limits]\nmax_body_bytes = 0\n",
            "max_body_bytes must be at least",
        ),
        (
            "[limits]\nmax_connections = 0\n",
            "max_connections must be at least",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let mut a = args();
        a.config = Some(path.clone());
        let err = load(&a, &[]).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn a_bad_base_url_is_reported_without_its_credentials() {
    let err = load(
        &args(),
        &[(
            "OPENAI_BASE_URL",
            "http://user:sk-secret@h:1/v1?key=sk-secret",
        )],
    )
    .unwrap_err()
    .to_string();
    assert!(!err.contains("sk-secret"), "{err}");
    assert!(err.contains("http://h:1/v1"), "{err}");
}

#[test]
fn debug_never_prints_secrets() {
    let c = load(
        &args(),
        &[
            ("OPENAI_API_KEY", "sk-secret-1"),
            ("AROUTER_MASTER_KEY", "sk-secret-2"),
        ],
    )
    .unwrap();
    let text = format!("{c:?}");
    assert!(!text.contains("sk-secret"), "{text}");
}

/// Setting a flag to the default its help shows changes nothing: the
/// documented defaults are the real ones.
#[test]
fn defaults_in_help_are_the_real_defaults() {
    use clap::{CommandFactory, Parser};

    let cli = crate::cli::Cli::command();
    let serve = cli.find_subcommand("serve").unwrap();
    let plain = load(&args(), &[]).unwrap();
    let summary = |c: &Config| {
        format!(
            "{} {:?} {:?} {} {} {} {} {} {:?} {}",
            c.listen,
            c.data_dir,
            c.limits,
            c.max_connections,
            c.shutdown_grace_secs,
            c.write_stall_timeout_ms,
            c.linger_ms,
            c.upstream_pool_max_idle,
            c.batches,
            c.always_include_usage
        )
    };
    let mut checked = 0;
    for arg in serve.get_arguments() {
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let default = match (help.split_once("[default: "), arg.get_default_values()) {
            (Some((_, rest)), _) => rest.split(']').next().unwrap().to_string(),
            (None, [value]) => value.to_string_lossy().into_owned(),
            _ => continue,
        };
        if default.contains(' ') {
            continue; // a description such as "the number of CPUs"
        }
        let flag = format!("--{}", arg.get_long().unwrap());
        let parsed = crate::cli::Cli::try_parse_from(["arouter", "serve", &flag, &default])
            .unwrap_or_else(|e| panic!("{flag} {default}: {e}"));
        let crate::cli::Command::Serve(with) = parsed.command else {
            panic!("parsed as serve");
        };
        let c = load(&with, &[]).unwrap();
        if flag.ends_with("-base-url") {
            let kind =
                ProviderKind::parse(flag.trim_start_matches("--").split('-').next().unwrap())
                    .unwrap();
            assert_eq!(default, default_base_url(kind), "{flag}");
        } else if flag == "--log-level" {
            assert_eq!(with.log_level, "info");
        } else {
            assert_eq!(summary(&c), summary(&plain), "{flag} {default}");
        }
        checked += 1;
    }
    assert!(checked >= 18, "only {checked} defaults checked");
}

#[test]
fn driver_settings_come_from_flags_or_the_file_and_are_checked() {
    let mut a = args();
    a.limits.linger_ms = Some(1);
    let c = load(&a, &[]).unwrap();
    assert_eq!(
        c.driver_settings().linger,
        std::time::Duration::from_millis(1)
    );
    assert_eq!(
        c.driver_settings().write_stall,
        std::time::Duration::from_millis(DEFAULT_WRITE_STALL_TIMEOUT_MS)
    );
    assert_eq!(c.pool_limits().max_idle, DEFAULT_UPSTREAM_POOL_MAX_IDLE);
    let mut a = args();
    a.limits.write_stall_timeout_ms = Some(0);
    let err = load(&a, &[]).unwrap_err().to_string();
    assert!(
        err.contains("write_stall_timeout_ms must be between"),
        "{err}"
    );
    let mut a = args();
    a.limits.linger_ms = Some(120_000);
    let err = load(&a, &[]).unwrap_err().to_string();
    assert!(err.contains("linger_ms must be between"), "{err}");
}

#[test]
fn the_default_rate_limit_comes_from_the_flag_or_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arouter.toml");
    std::fs::write(&path, "rate_limit = \"60/1m\"\n").unwrap();
    let mut a = args();
    assert_eq!(load(&a, &[]).unwrap().default_rate_limit, None);
    a.config = Some(path);
    let from_file = load(&a, &[]).unwrap().default_rate_limit.unwrap();
    assert_eq!((from_file.requests, from_file.period_secs), (60, 60));
    a.rate_limit = Some("3/2s".into());
    let from_flag = load(&a, &[]).unwrap().default_rate_limit.unwrap();
    assert_eq!((from_flag.requests, from_flag.period_secs), (3, 2));
    a.rate_limit = Some("3 per 2s".into());
    let err = load(&a, &[]).unwrap_err().to_string();
    assert!(err.contains("REQUESTS/INTERVAL"), "{err}");
}

#[test]
fn batch_settings_come_from_flags_or_the_file_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arouter.toml");
    std::fs::write(
        &path,
        "[batches]\nmax_batch_requests = 5\nbatch_concurrency = 3\n",
    )
    .unwrap();
    let mut a = args();
    a.config = Some(path.clone());
    let from_file = load(&a, &[]).unwrap().batches;
    assert_eq!((from_file.max_requests, from_file.concurrency), (5, 3));
    assert_eq!(from_file.retention_secs, 29 * 86_400);
    a.batches.max_batch_requests = Some(7);
    assert_eq!(
        load(&a, &[]).unwrap().batches.max_requests,
        7,
        "the flag wins"
    );
    a.batches.batch_concurrency = Some(0);
    let err = load(&a, &[]).unwrap_err().to_string();
    assert!(
        err.contains("batches.batch_concurrency must be from 1"),
        "{err}"
    );
    std::fs::write(&path, "[batches]\nbatch_workers = 3\n").unwrap();
    assert!(
        load(&args_with(&path), &[]).is_err(),
        "unknown keys are refused"
    );
}

fn args_with(path: &std::path::Path) -> ServeArgs {
    let mut a = args();
    a.config = Some(path.to_path_buf());
    a
}

#[test]
fn always_include_usage_comes_from_the_flag_or_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arouter.toml");
    assert!(
        !load(&args(), &[]).unwrap().always_include_usage,
        "off by default"
    );
    std::fs::write(&path, "always_include_usage = true\n").unwrap();
    let mut a = args_with(&path);
    let config = load(&a, &[]).unwrap();
    assert!(config.always_include_usage);
    assert!(config.gateway().unwrap().always_includes_usage());
    a.always_include_usage = Some(false);
    assert!(
        !load(&a, &[]).unwrap().always_include_usage,
        "the flag wins"
    );
}

#[test]
fn always_include_usage_parses_as_a_flag_with_an_optional_value() {
    use clap::Parser;
    let parse = |argv: &[&str]| {
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        match cli.command {
            crate::cli::Command::Serve(a) => a.always_include_usage,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(parse(&["arouter", "serve"]), None);
    assert_eq!(
        parse(&["arouter", "serve", "--always-include-usage"]),
        Some(true)
    );
    assert_eq!(
        parse(&["arouter", "serve", "--always-include-usage=false"]),
        Some(false)
    );
    assert_eq!(
        parse(&[
            "arouter",
            "serve",
            "--always-include-usage",
            "--listen",
            "x"
        ]),
        Some(true)
    );
}
