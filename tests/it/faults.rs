//! Faults from outside the hub: its own output failing. Each test runs the real binary and
//! checks that the hub serves, commits and stops cleanly anyway.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

/// The hub with stderr on a full device (`2>/dev/full`): every log line fails to write. It
/// starts, serves, commits a message and exits 0 on SIGTERM; logging never panics a thread
/// (the database writer's least of all).
#[tokio::test]
async fn a_hub_whose_log_cannot_be_written_serves_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("faults.db").display());
    let output = Command::new(env!("CARGO_BIN_EXE_smshub"))
        .args(["keys", "create", "--name", "faults", "--database-url", &db])
        .output()
        .unwrap();
    assert!(output.status.success());
    let key = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
