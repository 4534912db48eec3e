//! `arouter keys …`: the keys API's operations run directly on the data
//! directory's store. Requests are validated by the same core code as the
//! HTTP API's, from the same JSON shape.

use std::fmt::Write;

use arouter_core::api::Endpoint;
use arouter_core::exchange::Caller;
use arouter_core::manage::{self, KeyPatch, ManageRequest};
use serde_json::{json, Map, Value};

use super::{create_key, key_view};
use crate::cli::{CreditsAction, CreditsArgs, KeyCreateArgs, KeysAction, KeysArgs};
use crate::config::DEFAULT_DATA_DIR;
use crate::store::sqlite::SqliteStore;
use crate::store::{KeyRecord, Store};

/// Runs one `keys` command; the text to print, or why it failed.
pub fn run(args: &KeysArgs, now: i64) -> Result<String, String> {
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
    let store = SqliteStore::open(&dir)
        .map_err(|e| format!("cannot open the store in {}: {e}", dir.display()))?;
    match &args.action {
        KeysAction::Create(create) => {
            let spec = match parse(&Endpoint::CreateKey, &create_body(create))? {
                ManageRequest::CreateKey(spec) => spec,
                _ => return Err("not a key to create".into()),
            };
            let (record, secret) =
                create_key(&store, spec, now).map_err(|e| format!("cannot create the key: {e}"))?;
            Ok(format!(
                "{secret}\nhash: {}\nThe secret above is shown this once; only its hash is stored.\n",
                record.hash_hex()
            ))
        }
        KeysAction::List { all } => list(&store, *all, now),
        KeysAction::Disable { hash } => {
            let patch = KeyPatch {
                disabled: Some(true),
                ..KeyPatch::default()
            };
            change(&store, hash, |store, h| {
                store.update_key(h, &patch, now).map(|r| r.is_some())
            })?;
            Ok(format!("disabled {hash}\n"))
        }
        KeysAction::Delete { hash } => {
            change(&store, hash, |store, h| store.delete_key(h))?;
            Ok(format!("deleted {hash}\n"))
        }
    }
}

/// Runs one `credits` command.
pub fn run_credits(args: &CreditsArgs, now: i64) -> Result<String, String> {
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
    let store = SqliteStore::open(&dir)
        .map_err(|e| format!("cannot open the store in {}: {e}", dir.display()))?;
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
                return Err("not a credit to add".into());
            };
            super::add_credit(&store, amount_micros, note, now)
                .map_err(|e| format!("cannot add the credit: {e}"))?;
            let totals = store
                .totals()
                .map_err(|e| format!("cannot read the balance: {e}"))?;
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

fn parse(endpoint: &Endpoint<'_>, body: &Value) -> Result<ManageRequest, String> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    match manage::parse(endpoint, None, &bytes, Caller::Master) {
        Ok(Some(request)) => Ok(request),
        Ok(None) => Err("not a management request".into()),
        Err(err) => Err(err.message.into_owned()),
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

fn list(store: &SqliteStore, all: bool, now: i64) -> Result<String, String> {
    let keys = store.load_keys().map_err(|e| e.to_string())?;
    let mut out = String::new();
    for key in keys
        .iter()
        .filter(|k| all || (!k.disabled && !k.expired(now)))
    {
        let view = key_view(store, key, now).map_err(|_| "cannot read the key's usage")?;
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
    store: &SqliteStore,
    hash: &str,
    op: impl FnOnce(&SqliteStore, &[u8; 32]) -> Result<bool, crate::store::StoreError>,
) -> Result<(), String> {
    let bytes = super::keys::parse_hash(&hash.to_ascii_lowercase())
        .ok_or_else(|| format!("{hash} is not a key hash (64 hex digits)"))?;
    match op(store, &bytes) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("no key with hash {hash}")),
        Err(e) => Err(e.to_string()),
    }
}
