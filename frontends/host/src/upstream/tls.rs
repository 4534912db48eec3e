//! TLS client setup for `https` providers: rustls with the public (webpki)
//! roots, plus a provider's own CA file when it names one. Built once at
//! start-up and shared read-only by every thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::CertificateDer;
use futures_rustls::rustls::{ClientConfig, RootCertStore};
use futures_rustls::TlsConnector;

use crate::config::ProviderConfig;

/// Why a provider's TLS setup failed: its CA file is unusable.
#[derive(Debug)]
pub enum TlsSetupError {
    Read(String, PathBuf, std::io::Error),
    BadPem(String, PathBuf, String),
    Rejected(String, PathBuf, String),
}

impl std::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsSetupError::Read(name, path, e) => write!(
                f,
                "provider `{name}`: cannot read ca_file {}: {e}",
                path.display()
            ),
            TlsSetupError::BadPem(name, path, e) => write!(
                f,
                "provider `{name}`: bad certificate in {}: {e}",
                path.display()
            ),
            TlsSetupError::Rejected(name, path, e) => write!(
                f,
                "provider `{name}`: unusable certificate in {}: {e}",
                path.display()
            ),
        }
    }
}

/// One TLS client per provider, in the gateway's provider order.
pub struct TlsClients(Vec<TlsConnector>);

impl TlsClients {
    pub fn new(providers: &[ProviderConfig]) -> Result<TlsClients, TlsSetupError> {
        let mut clients = Vec::with_capacity(providers.len());
        for provider in providers {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(path) = &provider.ca_file {
                add_ca_file(&mut roots, &provider.name, path)?;
            }
            // Built with only rustls's `ring` feature, so `builder()` picks ring.
            let config = ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            clients.push(TlsConnector::from(Arc::new(config)));
        }
        Ok(TlsClients(clients))
    }

    pub fn get(&self, provider: usize) -> Option<&TlsConnector> {
        self.0.get(provider)
    }
}

fn add_ca_file(roots: &mut RootCertStore, name: &str, path: &Path) -> Result<(), TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsSetupError::Read(name.into(), path.into(), std::io::Error::other(e)))?;
    for cert in certs {
        let cert =
            cert.map_err(|e| TlsSetupError::BadPem(name.into(), path.into(), e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| TlsSetupError::Rejected(name.into(), path.into(), e.to_string()))?;
    }
    Ok(())
}
