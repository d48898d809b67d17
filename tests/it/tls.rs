//! Native TLS: a certificate made by rcgen, a real HTTPS client trusting its CA, a `wss://`
//! device session over rustls, and a reload after the files are replaced and SIGHUP.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject;
use smshub::server::{Tls, TlsFiles};
use smshub_protocol::device::{DeviceFrame, Hello, HubFrame};
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{PATIENCE, TestHub};

/// A CA and a certificate for `localhost` and 127.0.0.1 signed by it, as PEM:
/// (CA, certificate, key).
pub(crate) fn certificate(name: &str) -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

pub(crate) fn write(files: &TlsFiles, cert: &str, key: &str) {
    std::fs::write(&files.cert, cert).unwrap();
    std::fs::write(&files.key, key).unwrap();
}

pub(crate) fn files(dir: &Path) -> TlsFiles {
    TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

/// An HTTPS client that trusts only `ca`.
pub(crate) fn client(ca: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .build()
        .unwrap()
}

async fn tls_hub(files: &TlsFiles) -> TestHub {
    let files = files.clone();
    TestHub::spawn_with(move |config| config.tls = Some(files)).await
}

fn https(hub: &TestHub, path: &str) -> String {
    format!("{}{path}", hub.base.replacen("http://", "https://", 1))
}

#[tokio::test]
async fn the_api_is_served_over_https_and_plain_http_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let files = files(dir.path());
    let (ca, cert, key) = certificate("api");
    write(&files, &cert, &key);
    let hub = tls_hub(&files).await;

    let answer = client(&ca)
        .get(https(&hub, "/api/devices"))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(answer.status(), 200);
    let health = client(&ca)
        .get(https(&hub, "/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // A client that does not trust the CA fails the handshake; so does plain HTTP.
    let (_, other, _) = certificate("other");
    assert!(
        client(&other)
            .get(https(&hub, "/health"))
            .send()
            .await
            .is_err()
    );
    assert!(hub.http.get(hub.url("/health")).send().await.is_err());
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_header_timeout_even_before_its_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let files = files(dir.path());
    let (_, cert, key) = certificate("silent");
    write(&files, &cert, &key);
    let files2 = files.clone();
    let hub = TestHub::spawn_with(move |config| {
        config.tls = Some(files2);
        config.server.header_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = hub.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    // No ClientHello: the hub closes the socket (read returns 0) instead of waiting forever.
    let read = tokio::time::timeout(PATIENCE, tokio::io::AsyncReadExt::read(&mut tcp, &mut buf))
        .await
        .expect("the hub closed the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn a_phone_connects_over_wss() {
    let dir = tempfile::tempdir().unwrap();
    let files = files(dir.path());
    let (ca, cert, key) = certificate("wss");
    write(&files, &cert, &key);
    let hub = tls_hub(&files).await;
    let (id, token) = {
        let answer = client(&ca)
            .post(https(&hub, "/api/devices"))
            .header("X-API-Key", &hub.api_key)
            .json(&serde_json::json!({ "name": "tls phone" }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
        let body: serde_json::Value = answer.json().await.unwrap();
        (
            body["id"].as_str().unwrap().to_string(),
            body["token"].as_str().unwrap().to_string(),
        )
    };

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = hub.base.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    let port = addr.rsplit(':').next().unwrap();
    let url = format!("wss://localhost:{port}/ws/device/{id}");
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::client_async(request, tls)
        .await
        .expect("wss upgrade");
    assert_eq!(response.status(), 101);
    let hello = DeviceFrame::Hello(Hello {
        protocol: vec![1],
        app_version: Some("test/1".into()),
        device: Default::default(),
        sims: Vec::new(),
        capabilities: Default::default(),
        jobs: None,
    });
    ws.send(Message::text(hello.to_json())).await.unwrap();
    let welcome = tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => return HubFrame::parse(text.as_str()).unwrap(),
                Some(Ok(_)) => continue,
                other => panic!("socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("welcome in time");
    match welcome {
        HubFrame::Welcome(welcome) => assert_eq!(welcome.device_id, id),
        other => panic!("expected welcome, got {other:?}"),
    }
}

#[tokio::test]
async fn replaced_files_are_served_after_sighup_and_a_bad_reload_keeps_the_old_ones() {
    // Handle SIGHUP in this process before sending it, whatever the hub's watcher is doing.
    let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = files(dir.path());
    let (old_ca, cert, key) = certificate("old");
    write(&files, &cert, &key);
    let hub = tls_hub(&files).await;
    assert!(
        client(&old_ca)
            .get(https(&hub, "/health"))
            .send()
            .await
            .is_ok()
    );

    let (new_ca, cert, key) = certificate("new");
    write(&files, &cert, &key);
    // SAFETY: kill(2) on this process with a signal it handles.
    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    let new = client(&new_ca);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while new.get(https(&hub, "/health")).send().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate is never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        client(&old_ca)
            .get(https(&hub, "/health"))
            .send()
            .await
            .is_err()
    );

    // A reload of broken files fails and keeps what was loaded.
    let tls = Tls::load(files.clone()).expect("loads");
    std::fs::write(&files.cert, "not a certificate").unwrap();
    assert!(!tls.reload());
    let (_, _, other_key) = certificate("mismatch");
    write(&files, &cert, &other_key);
    assert!(!tls.reload());
    assert!(Tls::load(files.clone()).is_err());
    write(&files, &cert, &key);
    assert!(tls.reload());
}
