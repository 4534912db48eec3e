//! Where the store lives: the embedded SQLite file in the data directory
//! (the default), or a PostgreSQL database shared by several gateways
//! (`--store postgres://…` / `AROUTER_STORE_URL`).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::{postgres::PostgresStore, sqlite::SqliteStore, Store, StoreError};

#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// `arouter.sqlite3` in this directory.
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL; it may hold a password, so
    /// it is shown only through [`StoreLocation`]'s `Display`, which
    /// leaves the credentials out.
    Postgres(String),
}

/// Why a `--store` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationError {
    /// Not a `postgres://` or `postgresql://` URL.
    Scheme,
    /// A Postgres URL the client cannot read; the reason, without the URL.
    Url(String),
}

impl fmt::Display for LocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocationError::Scheme => f.write_str(
                "--store / AROUTER_STORE_URL must be a postgres:// or postgresql:// URL \
                 (leave it unset for the SQLite file in --data-dir)",
            ),
            LocationError::Url(reason) => write!(f, "--store: not a usable Postgres URL: {reason}"),
        }
    }
}

impl std::error::Error for LocationError {}

impl StoreLocation {
    /// `url` if given (only Postgres URLs are taken), else the SQLite file
    /// in `data_dir`.
    pub fn choose(url: Option<&str>, data_dir: PathBuf) -> Result<StoreLocation, LocationError> {
        let Some(url) = url.filter(|u| !u.is_empty()) else {
            return Ok(StoreLocation::Sqlite(data_dir));
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(LocationError::Scheme);
        }
        super::postgres::connect::parse(url).map_err(LocationError::Url)?;
        Ok(StoreLocation::Postgres(url.to_owned()))
    }

    /// Opens the store (creating or migrating its schema).
    pub fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreLocation::Sqlite(dir) => Arc::new(SqliteStore::open(dir)?),
            StoreLocation::Postgres(url) => Arc::new(PostgresStore::open(url)?),
        })
    }
}

/// For logs and errors: the directory, or the Postgres hosts, ports and
/// database, never the user's password.
impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(dir) => write!(f, "the SQLite store in {}", dir.display()),
            StoreLocation::Postgres(url) => {
                let Ok(super::postgres::connect::Target { config, .. }) =
                    super::postgres::connect::parse(url)
                else {
                    return f.write_str("the Postgres store");
                };
                let hosts: Vec<String> = config
                    .get_hosts()
                    .iter()
                    .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
                    .map(|(host, port)| match host {
                        postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                        postgres::config::Host::Unix(path) => format!("{}", path.display()),
                    })
                    .collect();
                let db = config.get_dbname().unwrap_or("(default database)");
                write!(f, "the Postgres store at {}/{db}", hosts.join(","))
            }
        }
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_unless_a_postgres_url_is_given() {
        let dir = PathBuf::from("/data");
        assert_eq!(
            StoreLocation::choose(None, dir.clone()),
            Ok(StoreLocation::Sqlite(dir.clone()))
        );
        assert_eq!(
            StoreLocation::choose(Some(""), dir.clone()),
            Ok(StoreLocation::Sqlite(dir.clone()))
        );
        assert_eq!(
            StoreLocation::choose(Some("mysql://h/db"), dir.clone()),
            Err(LocationError::Scheme)
        );
        let url = "postgresql://gw:s3cret@db.internal:6543/arouter";
        let chosen = StoreLocation::choose(Some(url), dir).unwrap();
        assert_eq!(chosen, StoreLocation::Postgres(url.into()));
        let shown = format!("{chosen} {chosen:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.internal:6543/arouter"), "{shown}");
    }
}
