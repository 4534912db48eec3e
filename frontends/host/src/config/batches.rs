//! `[batches]` and its flags: the limits of a message batch and the
//! worker's concurrency, with their defaults and bounds.

use super::ConfigError;
use crate::cli::BatchArgs;

/// The settings of message batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSettings {
    /// Most requests in one batch.
    pub max_requests: u64,
    /// Largest batch body, in bytes.
    pub max_bytes: u64,
    /// Seconds an ended batch is kept.
    pub retention_secs: i64,
    /// Seconds a batch may run before its unrun requests expire.
    pub expiry_secs: i64,
    /// Requests run at once across all batches.
    pub concurrency: usize,
    /// Requests run at once per provider.
    pub provider_concurrency: usize,
}

pub const DEFAULT_MAX_BATCH_REQUESTS: u64 = 100_000;
pub const DEFAULT_MAX_BATCH_BYTES: u64 = 32 * 1024 * 1024;
pub const DEFAULT_BATCH_RETENTION_DAYS: u32 = 29;
pub const DEFAULT_BATCH_EXPIRY_HOURS: u32 = 24;
pub const DEFAULT_BATCH_CONCURRENCY: usize = 8;
pub const DEFAULT_BATCH_PROVIDER_CONCURRENCY: usize = 4;

/// The settings, each within bounds that keep the worker useful and
/// bounded: at least one request at a time, and no more than the store's
/// single writer can keep up with.
pub(super) fn settings(args: BatchArgs) -> Result<BatchSettings, ConfigError> {
    let range = |name: &'static str, value: u64, min: u64, max: u64| {
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::BatchOutOfRange {
                name,
                min,
                max,
                got: value,
            })
        }
    };
    let requests = args
        .max_batch_requests
        .unwrap_or(DEFAULT_MAX_BATCH_REQUESTS);
    let bytes = args.max_batch_bytes.unwrap_or(DEFAULT_MAX_BATCH_BYTES);
    let days = args
        .batch_retention_days
        .unwrap_or(DEFAULT_BATCH_RETENTION_DAYS);
    let hours = args
        .batch_expiry_hours
        .unwrap_or(DEFAULT_BATCH_EXPIRY_HOURS);
    let concurrency = args.batch_concurrency.unwrap_or(DEFAULT_BATCH_CONCURRENCY);
    let per_provider = args
        .batch_provider_concurrency
        .unwrap_or(DEFAULT_BATCH_PROVIDER_CONCURRENCY);
    Ok(BatchSettings {
        max_requests: range("max_batch_requests", requests, 1, 1_000_000)?,
        max_bytes: range("max_batch_bytes", bytes, 1024, 1 << 32)?,
        retention_secs: range("batch_retention_days", u64::from(days), 1, 3650)? as i64 * 86_400,
        expiry_secs: range("batch_expiry_hours", u64::from(hours), 1, 24 * 365)? as i64 * 3600,
        concurrency: range("batch_concurrency", concurrency as u64, 1, 1024)? as usize,
        provider_concurrency: range("batch_provider_concurrency", per_provider as u64, 1, 1024)?
            as usize,
    })
}
