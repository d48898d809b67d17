//! TLS for the hub's own listener: the certificate and key (PEM files), the rustls server
//! configuration built on them, and their reload on SIGHUP or when either file changes.
//!
//! The configuration resolves the certificate per handshake from a slot that a reload
//! replaces, so connections already open keep theirs and the next handshake gets the new
//! one. A reload that fails (a half-written file, a key that does not match) keeps the
//! certificate served so far and logs one line. Must never: know HTTP or routes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::aws_lc_rs as provider;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

/// How often the files' modification times are compared.
const POLL: Duration = Duration::from_secs(2);

/// Where the certificate chain and its private key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the certificate, then its intermediates.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("the key does not fit the certificate: {0}")]
    Mismatch(String),
}

/// Installs the process's rustls crypto provider (aws-lc-rs) once; clients built afterwards
/// (reqwest, WebSocket) use it too.
pub fn install_crypto_provider() {
    let _ = provider::default_provider().install_default();
}

/// The served certificate, replaced by a reload.
#[derive(Debug)]
struct Slot(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Slot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|it| it.into_inner()).clone())
    }
}

/// The listener's TLS: an acceptor whose certificate can be reloaded.
pub struct Tls {
    files: TlsFiles,
    slot: Arc<Slot>,
    acceptor: TlsAcceptor,
}

impl Tls {
    /// Loads the certificate and key; an error names the file.
    pub fn load(files: TlsFiles) -> Result<Arc<Tls>, TlsError> {
        install_crypto_provider();
        let slot = Arc::new(Slot(RwLock::new(Arc::new(certified_key(&files)?))));
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|err| TlsError::Mismatch(err.to_string()))?
                .with_no_client_auth()
                .with_cert_resolver(slot.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(Tls {
            files,
            slot,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }))
    }

    pub(super) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Reads the files again; on success the next handshake serves the new certificate, on
    /// failure the old one stays and one line is logged.
    pub fn reload(&self) -> bool {
        match certified_key(&self.files) {
            Ok(key) => {
                *self.slot.0.write().unwrap_or_else(|it| it.into_inner()) = Arc::new(key);
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "TLS certificate not reloaded; serving the previous one");
                false
            }
        }
    }

    /// Reloads on SIGHUP and when either file's modification time changes, until the
    /// returned task is aborted.
    pub fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut seen = tls.stamps();
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let signalled = async {
                    match hangup.as_mut() {
                        Some(it) => it.recv().await,
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let signalled = std::future::pending::<Option<()>>();
                tokio::select! {
                    _ = signalled => {
                        seen = tls.stamps();
                        tls.reload();
                    }
                    _ = tick.tick() => {
                        let now = tls.stamps();
                        if now != seen {
                            seen = now;
                            tls.reload();
                        }
                    }
                }
            }
        })
    }

    fn stamps(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        let stamp = |path: &Path| std::fs::metadata(path).and_then(|it| it.modified()).ok();
        (stamp(&self.files.cert), stamp(&self.files.key))
    }
}

fn certified_key(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let file_error = |path: &Path, message: String| TlsError::File {
        path: path.display().to_string(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|err| file_error(&files.cert, err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| file_error(&files.cert, err.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(&files.cert, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|err| file_error(&files.key, err.to_string()))?;
    let provider = provider::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|err| file_error(&files.key, err.to_string()))?;
    let key = CertifiedKey::new(certs, signing);
    key.keys_match().map_err(|err| match err {
        rustls::Error::InconsistentKeys(_) => {
            TlsError::Mismatch("the private key is not the certificate's".into())
        }
        other => TlsError::Mismatch(other.to_string()),
    })?;
    Ok(key)
}
