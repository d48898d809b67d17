//! TLS for the connections smshub opens (the MQTT bridge to its broker, `smshub worker` to its
//! hub): a rustls client configuration trusting the CAs of a PEM file, or the system's roots
//! without one. The hub's own listener is [`crate::server::tls`].

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, pem::PemObject};
use tokio_rustls::rustls::crypto::aws_lc_rs as provider;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A TLS client configuration trusting `ca_file`, or the system's roots without one. Errors
/// name the option that gave the file (`ca_flag`, e.g. `--ca-file`) and the URL scheme that
/// needs TLS (`scheme`, e.g. `wss://`).
pub fn client_config(
    ca_file: Option<&Path>,
    ca_flag: &str,
    scheme: &str,
) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|err| format!("{ca_flag} {}: {err}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "{ca_flag} {}: no certificate in it",
                    path.display()
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|err| format!("{ca_flag} {}: {err}", path.display()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(format!(
                    "{scheme} without {ca_flag}: the system has no trusted roots"
                ));
            }
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("TLS: {err}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_its_flag() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = client_config(Some(&empty), "--ca-file", "wss://").unwrap_err();
        assert!(
            err.starts_with("--ca-file ") && err.contains("no certificate"),
            "{err}"
        );
        let missing = dir.path().join("missing.pem");
        let err = client_config(Some(&missing), "--mqtt-ca-file", "mqtts://").unwrap_err();
        assert!(err.starts_with("--mqtt-ca-file "), "{err}");
    }
}
