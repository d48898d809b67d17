//! Faults from outside the hub: its own output failing. Each test runs the real binary and
//! checks that the hub serves, commits and stops cleanly anyway.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::{cli_api_key, free_port};

/// The hub with stderr on a full device (`2>/dev/full`): every log line fails to write. It
/// starts, serves, commits a message and exits 0 on SIGTERM; logging never panics a thread
/// (the database writer's least of all).
#[tokio::test]
async fn a_hub_whose_log_cannot_be_written_serves_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("faults.db").display());
    let key = cli_api_key(&db, "faults");
    let port = free_port();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let mut child = Command::new(env!("CARGO_BIN_EXE_smshub"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &db, "--log", "debug"])
        .stdout(Stdio::null())
        .stderr(full)
        .spawn()
        .expect("hub starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{base}/health"))
        .send()
        .await
        .map(|it| it.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hub did not come up with its log on /dev/full: {:?}",
            child.try_wait()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in 0..20 {
        let response = http
            .post(format!("{base}/api/send-sms"))
            .header("X-API-Key", &key)
            .json(&json!({"phone_number": "+14155552671", "message": format!("log full {n}")}))
            .send()
            .await
            .expect("send-sms answers");
        assert_eq!(response.status().as_u16(), 202, "message {n}");
    }
    // SAFETY: a plain signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}

/// A client that sent half its request headers, or half a body, does not keep a stopping hub
/// up: shutdown ends within the grace period whatever clients do.
#[tokio::test]
async fn slow_clients_do_not_hold_up_shutdown() {
    use tokio::io::AsyncWriteExt;
    let mut hub = crate::support::TestHub::spawn_with(|config| {
        config.shutdown_grace = Duration::from_secs(1);
    })
    .await;
    let addr = hub.base.trim_start_matches("http://").to_string();
    let mut half_headers = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half_headers
        .write_all(b"GET /health HTTP/1.1\r\nHost: hub\r\n")
        .await
        .unwrap();
    let mut half_body = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half_body
        .write_all(
            b"POST /api/send-sms HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"phone",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(6), hub.shutdown())
        .await
        .expect("shutdown finished within the grace period");
    drop((half_headers, half_body));
}
