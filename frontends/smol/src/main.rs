//! `arouter`: the gateway binary. Parses the command line, builds the host
//! (config, store, key cache), picks the runtime and serves.

mod allocator;
mod select;
mod server;
mod tcp;

use std::process::ExitCode;
use std::sync::Arc;

use arouter_host::cli::{Cli, Command, LogFormat};
use arouter_host::driver::Shared;
use arouter_host::shutdown::Shutdown;
use arouter_host::{Config, Host};
use clap::Parser;

fn main() -> ExitCode {
    allocator::configure();
    let cli = Cli::parse();
    let level = match &cli.command {
        Command::Serve(args) => args.log_level.as_str(),
        Command::Keys(_) | Command::Credits(_) | Command::Store(_) => "warn",
    };
    // `--log-level`, or RUST_LOG as clap read it.
    let filter = match level.trim() {
        "" => "info",
        level => level,
    };
    let mut logger = env_logger::Builder::new();
    logger.parse_filters(filter);
    if let Command::Serve(args) = &cli.command {
        if args.log_format == LogFormat::Json {
            logger.format(json_log_line);
        }
    }
    logger.init();
    match cli.command {
        Command::Serve(args) => match serve(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                log::error!("{message}");
                ExitCode::FAILURE
            }
        },
        Command::Keys(args) => offline("keys", arouter_host::accounts::cli::run(&args, now())),
        Command::Credits(args) => offline(
            "credits",
            arouter_host::accounts::cli::run_credits(&args, now()),
        ),
        Command::Store(args) => offline("store", arouter_host::store::copy::run(&args)),
    }
}

/// `--log-format json`: an access record is already one JSON object (see
/// `arouter_host::driver`); any other message becomes one.
fn json_log_line(
    out: &mut env_logger::fmt::Formatter,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    use std::io::Write;
    if record.target() == "access" {
        return writeln!(out, "{}", record.args());
    }
    let line = serde_json::json!({
        "type": "log",
        "ts": out.timestamp_millis().to_string(),
        "level": record.level().as_str(),
        "target": record.target(),
        "message": record.args().to_string(),
    });
    writeln!(out, "{line}")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Prints what a data-directory command did, or why it failed.
fn offline(command: &str, result: Result<String, impl std::fmt::Display>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("arouter {command}: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &arouter_host::cli::ServeArgs) -> Result<(), String> {
    let config = Config::load(args)?;
    let runtime = select::choose(args.runtime)?;
    let host = Arc::new(Host::start(config).map_err(|e| e.to_string())?);
    let listening = select::Listening::bind(runtime, &host.config)?;
    let addr = listening.local_addr().map_err(|e| e.to_string())?;
    let providers: Vec<&str> = host
        .config
        .providers
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    log::info!(
        "arouter listening on http://{addr} ({}, providers: {}, {} models)",
        host.config.store,
        if providers.is_empty() {
            "none configured".to_string()
        } else {
            providers.join(", ")
        },
        host.gateway.models().len()
    );
    if let Some(metrics_addr) = &host.config.metrics_listen {
        let bound = arouter_host::metrics::listen::spawn(metrics_addr, host.clone())
            .map_err(|e| e.to_string())?;
        log::info!("metrics (no key) on http://{bound}/metrics");
    }
    let shutdown = Arc::new(Shutdown::default());
    {
        let shutdown = shutdown.clone();
        ctrlc::set_handler(move || {
            if shutdown.is_set() {
                // A second signal means "now".
                std::process::exit(130);
            }
            shutdown.trigger();
        })
        .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let shared = Shared::new(host.clone(), shutdown).map_err(|e| e.to_string())?;
    let shared = Arc::new(shared.with_thread_tidy(allocator::tidy_thread));
    listening.serve(shared)?;
    host.shutdown();
    log::info!("arouter stopped");
    Ok(())
}
