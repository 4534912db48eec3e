//! `arouter keys …`: the keys API's operations run directly on the data
//! directory's store. Requests are validated by the same core code as the
//! HTTP API's, from the same JSON shape.

use std::fmt::{self, Write};
use std::sync::Arc;

use arouter_core::api::Endpoint;
use arouter_core::exchange::Caller;
use arouter_core::manage::{self, KeyPatch, ManageRequest};
use serde_json::{json, Map, Value};

use super::{create_key, key_view};
use crate::cli::{CreditsAction, CreditsArgs, KeyCreateArgs, KeysAction, KeysArgs, StoreArgs};
use crate::config::{self, ConfigError};
use crate::store::location::StoreLocation;
use crate::store::{KeyRecord, Store, StoreError};

/// Why an offline command failed.
#[derive(Debug)]
pub enum CliError {
    /// The `--config` file named for its data_dir is unreadable.
    Config(ConfigError),
    /// The store would not open.
    Open {
        store: StoreLocation,
        source: StoreError,
    },
    /// The store failed while doing `what`.
    Store {
        what: &'static str,
        source: StoreError,
    },
    /// The request was refused by the same validation as the HTTP API's.
    Invalid(String),
    /// Not a key hash (64 hex digits).
    NotAHash(String),
    /// No key has this hash.
    NoSuchKey(String),
    /// A key's usage could not be read for the list.
    KeyUsage,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Config(e) => e.fmt(f),
            CliError::Open { store, source } => write!(f, "cannot open {store}: {source}"),
            CliError::Store { what, source } => write!(f, "cannot {what}: {source}"),
            CliError::Invalid(message) => f.write_str(message),
            CliError::NotAHash(hash) => write!(f, "{hash} is not a key hash (64 hex digits)"),
            CliError::NoSuchKey(hash) => write!(f, "no key with hash {hash}"),
            CliError::KeyUsage => f.write_str("cannot read a key's usage"),
        }
    }
}

impl std::error::Error for CliError {}

/// The store `serve` would use with the same flags and environment.
fn open(args: &StoreArgs) -> Result<Arc<dyn Store>, CliError> {
    let store = config::store_location(args).map_err(CliError::Config)?;
    store
        .open()
        .map_err(|source| CliError::Open { store, source })
}

fn store_err(what: &'static str) -> impl FnOnce(StoreError) -> CliError {
    move |source| CliError::Store { what, source }
}

/// Runs one `keys` command; the text to print, or why it failed.
pub fn run(args: &KeysArgs, now: i64) -> Result<String, CliError> {
    let store = open(&args.store)?;
    let store = store.as_ref();
    match &args.action {
        KeysAction::Create(create) => {
            let spec = match parse(&Endpoint::CreateKey, &create_body(create))? {
                ManageRequest::CreateKey(spec) => spec,
                _ => return Err(CliError::Invalid("not a key to create".into())),
            };
            let (record, secret) =
                create_key(store, spec, now).map_err(store_err("create the key"))?;
            Ok(format!(
                "{secret}\nhash: {}\nThe secret above is shown this once; only its hash is stored.\n",
                record.hash_hex()
            ))
        }
        KeysAction::List { all } => list(store, *all, now),
        KeysAction::Disable { hash } => {
            let patch = KeyPatch {
                disabled: Some(true),
                ..KeyPatch::default()
            };
            change(store, hash, |store, h| {
                store.update_key(h, &patch, now).map(|r| r.is_some())
            })?;
            Ok(format!("disabled {hash}\n"))
        }
        KeysAction::Delete { hash } => {
            change(store, hash, |store, h| store.delete_key(h))?;
            Ok(format!("deleted {hash}\n"))
        }
    }
}

/// Runs one `credits` command.
pub fn run_credits(args: &CreditsArgs, now: i64) -> Result<String, CliError> {
    let store = open(&args.store)?;
    let store = store.as_ref();
    match &args.action {
        CreditsAction::Add { amount, note } => {
            let ManageRequest::AddCredits {
                amount_micros,
                note,
            } = parse(
                &Endpoint::AddCredits,
                &json!({"amount": amount, "note": note}),
            )?
            else {
                return Err(CliError::Invalid("not a credit to add".into()));
            };
            super::add_credit(store, amount_micros, note, now)
                .map_err(store_err("add the credit"))?;
            let totals = store.totals().map_err(store_err("read the balance"))?;
            let usd = |m: u64| arouter_core::billing::MicroUsd(m).as_usd();
            Ok(format!(
                "added {} USD; total credits {} USD, total usage {} USD\n",
                usd(amount_micros),
                usd(totals.credits),
                usd(totals.usage)
            ))
        }
    }
}

fn parse(endpoint: &Endpoint<'_>, body: &Value) -> Result<ManageRequest, CliError> {
    // A `Value` always serializes.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    match manage::parse(endpoint, None, &bytes, Caller::Master) {
        Ok(Some(request)) => Ok(request),
        Ok(None) => Err(CliError::Invalid("not a management request".into())),
        Err(err) => Err(CliError::Invalid(err.message.into_owned())),
    }
}

/// The flags as the API's JSON body, so both are validated alike.
fn create_body(args: &KeyCreateArgs) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), json!(args.name));
    body.insert("management".into(), json!(args.management));
    if let Some(limit) = args.limit {
        body.insert("limit".into(), json!(limit));
    }
    if let Some(reset) = &args.limit_reset {
        body.insert("limit_reset".into(), json!(reset));
    }
    if let (Some(requests), Some(interval)) = (args.rate_requests, &args.rate_interval) {
        body.insert(
            "rate_limit".into(),
            json!({"requests": requests, "interval": interval}),
        );
    }
    if let Some(models) = &args.allowed_models {
        body.insert("allowed_models".into(), json!(models));
    }
    if let Some(expires) = &args.expires_at {
        body.insert("expires_at".into(), json!(expires));
    }
    Value::Object(body)
}

fn list(store: &dyn Store, all: bool, now: i64) -> Result<String, CliError> {
    let keys = store.load_keys().map_err(store_err("read the keys"))?;
    let mut out = String::new();
    for key in keys
        .iter()
        .filter(|k| all || (!k.disabled && !k.expired(now)))
    {
        // The store's own error was logged by `key_view`.
        let view = key_view(store, key, now).map_err(|_| CliError::KeyUsage)?;
        let _ = writeln!(
            out,
            "{}  {}  {}  {}  usage ${:.6}",
            view.hash,
            view.label,
            kind(key, now),
            view.name,
            view.usage.total as f64 / 1e6
        );
    }
    if out.is_empty() {
        out.push_str("no keys\n");
    }
    Ok(out)
}

fn kind(key: &KeyRecord, now: i64) -> &'static str {
    match (key.disabled, key.expired(now), key.management) {
        (true, _, _) => "disabled",
        (false, true, _) => "expired",
        (false, false, true) => "management",
        (false, false, false) => "inference",
    }
}

fn change(
    store: &dyn Store,
    hash: &str,
    op: impl FnOnce(&dyn Store, &[u8; 32]) -> Result<bool, StoreError>,
) -> Result<(), CliError> {
    let bytes = super::keys::parse_hash(&hash.to_ascii_lowercase())
        .ok_or_else(|| CliError::NotAHash(hash.to_string()))?;
    match op(store, &bytes) {
        Ok(true) => Ok(()),
        Ok(false) => Err(CliError::NoSuchKey(hash.to_string())),
        Err(e) => Err(CliError::Store {
            what: "change the key",
            source: e,
        }),
    }
}
