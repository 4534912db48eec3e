//! Why a gateway could not start: said once in the log, and the process
//! exits with a failure.

use std::fmt;

use crate::config::ConfigError;
use crate::store::location::StoreLocation;
use crate::store::StoreError;

#[derive(Debug)]
pub enum StartError {
    /// The store would not open (or migrate).
    Open {
        store: StoreLocation,
        source: StoreError,
    },
    /// The store failed while the gateway read `what` from it.
    Store {
        what: &'static str,
        source: StoreError,
    },
    /// A background thread (`name`) could not be started.
    Thread {
        name: &'static str,
        source: std::io::Error,
    },
    /// `--redis` names a URL Redis cannot take.
    Redis(redis::RedisError),
    /// The configuration does not make a gateway.
    Config(ConfigError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Open { store, source } => write!(f, "cannot open {store}: {source}"),
            StartError::Store { what, source } => write!(f, "cannot {what}: {source}"),
            StartError::Thread { name, source } => write!(f, "cannot start {name}: {source}"),
            StartError::Redis(e) => write!(f, "--redis: {e}"),
            StartError::Config(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StartError {}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> StartError {
        StartError::Config(e)
    }
}

/// A `map_err` for a store call made while starting.
pub(crate) fn store(what: &'static str) -> impl FnOnce(StoreError) -> StartError {
    move |source| StartError::Store { what, source }
}

/// A `map_err` for a thread spawned while starting.
pub(crate) fn thread(name: &'static str) -> impl FnOnce(std::io::Error) -> StartError {
    move |source| StartError::Thread { name, source }
}
