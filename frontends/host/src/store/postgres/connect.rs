//! From a store URL to a connection: the URL as libpq writes it, TLS with
//! rustls. tokio-postgres reads the URL itself, but not all of libpq's
//! TLS parameters: `sslrootcert` (a CA file, for a database whose
//! certificate is signed by its provider's own CA) is taken out here, and
//! `sslmode=verify-ca` / `verify-full` become `require`, which with rustls
//! verifies the certificate chain and the host name all the same.
//! `sslcert` and `sslkey` (a client certificate and its key, PEM, for a
//! database that admits clients by certificate) are taken out too and
//! given to rustls. Unlike libpq, nothing is read from `~/.postgresql/`
//! unless the URL names it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;

/// How long connecting may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection settings and TLS client for `url`, with this
/// gateway's defaults where the URL sets none: a 5 s connect timeout,
/// and `arouter` as the application name (which `pg_stat_activity` shows).
pub fn prepare(url: &str) -> Result<(postgres::Config, MakeRustlsConnect), StoreError> {
    let target = parse(url).map_err(|e| StoreError::Backend(format!("bad store URL: {e}")))?;
    let tls = tls(&target)?;
    let mut config = target.config;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("arouter");
    }
    Ok((config, tls))
}

/// A plain connection to `url`, as the store's (for tools that need
/// their own transaction, such as `arouter store copy`).
pub fn client(url: &str) -> Result<postgres::Client, StoreError> {
    let (config, tls) = prepare(url)?;
    config.connect(tls).map_err(super::backend)
}

/// A store URL, read.
pub struct Target {
    pub config: postgres::Config,
    /// `sslrootcert`: CA certificates trusted besides the public roots.
    pub ca_file: Option<PathBuf>,
    /// `sslcert` and `sslkey`: the client certificate (chain) shown to the
    /// server, and its private key.
    pub client_cert: Option<ClientCert>,
}

/// A client certificate's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Reads `url` (`postgres://…` with libpq's query parameters); the reason
/// it cannot be read, without the URL (it may hold a password).
pub fn parse(url: &str) -> Result<Target, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut ca_file = None;
    let (mut cert_file, mut key_file) = (None, None);
    let mut idle_set = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        idle_set |= key == "keepalives_idle";
        match (key, value) {
            ("sslrootcert", path) => ca_file = Some(PathBuf::from(percent_decode(path)?)),
            ("sslcert", path) => cert_file = Some(PathBuf::from(percent_decode(path)?)),
            ("sslkey", path) => key_file = Some(PathBuf::from(percent_decode(path)?)),
            ("sslmode", "verify-ca" | "verify-full") => kept.push("sslmode=require".to_owned()),
            _ => kept.push(pair.to_owned()),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config = rest
        .parse::<postgres::Config>()
        .map_err(|e| e.to_string())?;
    dead_peer_defaults(&mut config, idle_set);
    let client_cert = match (cert_file, key_file) {
        (Some(cert), Some(key)) => Some(ClientCert { cert, key }),
        (None, None) => None,
        (Some(_), None) => return Err("sslcert needs sslkey (its private key)".into()),
        (None, Some(_)) => return Err("sslkey needs sslcert (the certificate)".into()),
    };
    Ok(Target {
        config,
        ca_file,
        client_cert,
    })
}

/// A database that vanished without closing the connection (a network
/// partition, a failed-over host) is noticed within about a minute rather
/// than the operating system's hours, so the store's one connection is not
/// held by a call that can never end: TCP keepalives after 30 s idle, every
/// 10 s, 3 unanswered ones; sent data unacknowledged for 60 s. The URL's
/// own `keepalives_*` and `tcp_user_timeout` win.
fn dead_peer_defaults(config: &mut postgres::Config, idle_set: bool) {
    if !idle_set {
        config.keepalives_idle(Duration::from_secs(30));
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(Duration::from_secs(10));
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(3);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(Duration::from_secs(60));
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a bad %-escape in sslrootcert")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "sslrootcert is not UTF-8".to_owned())
}

/// The TLS client: the public (webpki) roots, plus the CA file's; the
/// client certificate when the URL names one. `sslmode` decides whether
/// it is used: `prefer` (the default) tries TLS and falls back to plain
/// text when the server has none, `require` insists, `disable` never
/// tries.
pub fn tls(target: &Target) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &target.ca_file {
        let bad = file_error("sslrootcert", path);
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
        }
    }
    // Built with only rustls's `ring` feature, so `builder()` picks ring.
    let builder = ClientConfig::builder().with_root_certificates(Arc::new(roots));
    let config = match &target.client_cert {
        None => builder.with_no_client_auth(),
        Some(ClientCert { cert, key }) => {
            let bad_cert = file_error("sslcert", cert);
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| bad_cert(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad_cert(&e))?;
            if chain.is_empty() {
                return Err(bad_cert(&"no certificate in the file"));
            }
            let bad_key = file_error("sslkey", key);
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad_key(&e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad_key(&e))?
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// A store error naming the URL parameter and the file it named.
fn file_error<'a>(
    parameter: &'static str,
    path: &'a Path,
) -> impl Fn(&dyn std::fmt::Display) -> StoreError + 'a {
    move |e| StoreError::Backend(format!("{parameter} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres::config::SslMode;

    #[test]
    fn libpq_tls_parameters_are_read() {
        let t = parse("postgres://u:p@db:5433/app?sslmode=verify-full&sslrootcert=%2Fetc%2Frds.pem&application_name=x")
            .unwrap();
        assert_eq!(t.ca_file, Some(PathBuf::from("/etc/rds.pem")));
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(t.config.get_application_name(), Some("x"));
        assert_eq!(t.config.get_dbname(), Some("app"));
        let plain = parse("postgresql://u@db/app").unwrap();
        assert_eq!(plain.ca_file, None);
        assert_eq!(plain.config.get_ssl_mode(), SslMode::Prefer);
        assert_eq!(plain.config.get_keepalives_idle(), Duration::from_secs(30));
        assert_eq!(plain.config.get_keepalives_retries(), Some(3));
        assert_eq!(
            plain.config.get_tcp_user_timeout(),
            Some(&Duration::from_secs(60))
        );
        // tokio-postgres reads tcp_user_timeout in seconds (libpq: ms).
        let own = parse("postgres://db/app?keepalives_idle=5&tcp_user_timeout=20").unwrap();
        assert_eq!(own.config.get_keepalives_idle(), Duration::from_secs(5));
        assert_eq!(
            own.config.get_tcp_user_timeout(),
            Some(&Duration::from_secs(20))
        );
        assert!(parse("postgres://db/app?sslmode=sometimes").is_err());
        assert!(parse("postgres://db/app?sslrootcert=%zz").is_err());
    }

    #[test]
    fn a_missing_ca_file_is_an_error() {
        let target = parse("postgres://db/app?sslrootcert=/nonexistent/ca.pem").unwrap();
        let err = tls(&target).err().unwrap();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        assert!(tls(&parse("postgres://db/app").unwrap()).is_ok());
    }

    #[test]
    fn a_client_certificate_needs_both_its_files() {
        let t = parse("postgres://db/app?sslcert=%2Fk%2Fc.pem&sslkey=/k/c.key").unwrap();
        assert_eq!(
            t.client_cert,
            Some(ClientCert {
                cert: PathBuf::from("/k/c.pem"),
                key: PathBuf::from("/k/c.key"),
            })
        );
        assert!(parse("postgres://db/app?sslcert=/k/c.pem").is_err());
        assert!(parse("postgres://db/app?sslkey=/k/c.key").is_err());
        let err = tls(&t).err().unwrap();
        assert!(err.to_string().contains("sslcert /k/c.pem: "), "{err}");
    }
}
