//! `smshub conformance` (run as the binary) against three workers: the reference Termux
//! worker and the simulated phone must pass every rule; a worker that sends before
//! `commit` (`tests/conformance/broken_worker.py`) must fail `no-send-before-commit`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use smshub::simulate::{self, Behaviour, Credentials, Profile, SimStats};

use crate::reference_worker::{Worker, python_ready};
use crate::support::free_port;

const DEVICE: &str = "conformance-phone";
const TOKEN: &str = "conformance-token";

/// Starts `smshub conformance` on a free port; returns it and the worker's base URL.
fn conformance() -> (Child, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_smshub"))
        .args(["conformance", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--device-id", DEVICE, "--token", TOKEN])
        .args([
            "--heartbeat-s",
            "3",
            "--patience-s",
            "10",
            "--reconnect-s",
            "20",
        ])
        .args(["--quiet-ms", "1000", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("smshub conformance starts");
    (child, format!("ws://127.0.0.1:{port}"))
}

/// Waits for the run to end; its exit status and report.
async fn report(child: Child) -> (i32, Value) {
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("smshub conformance ends");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let report =
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("a JSON report ({err}): {text}"));
    (output.status.code().unwrap_or(-1), report)
}

/// The rules that failed, with what the worker did.
fn failed(report: &Value) -> Vec<(String, String)> {
    report["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|it| it["pass"] != true)
        .map(|it| {
            (
                it["rule"].as_str().unwrap_or_default().to_string(),
                it["did"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_reference_worker_passes_every_rule() {
    if !python_ready() {
        return;
    }
    let (run, url) = conformance();
    let dir = tempfile::tempdir().unwrap();
    let fakes = dir.path().join("fakes");
    std::fs::create_dir(&fakes).unwrap();
    let worker = Worker::reference(&url, DEVICE, TOKEN, &dir.path().join("state"), &fakes);
    let (status, report) = report(run).await;
    assert_eq!(
        failed(&report),
        Vec::<(String, String)>::new(),
        "{report:#}\n{}",
        worker.log()
    );
    assert_eq!(status, 0);
    assert!(report["passed"].as_u64().unwrap() >= 20, "{report:#}");
    // The fake radio was asked to send: the rules' jobs went through termux-sms-send.
    assert!(!worker.calls("termux-sms-send").is_empty());
}

#[tokio::test]
async fn the_simulated_phone_passes_every_rule() {
    let (run, url) = conformance();
    let phone = simulate::spawn_phone(
        &url.replacen("ws", "http", 1),
        Credentials {
            id: DEVICE.into(),
            name: "simulated".into(),
            token: TOKEN.into(),
        },
        Profile::varied(0),
        Behaviour {
            latency: Duration::from_millis(50),
            ..Behaviour::default()
        },
        Arc::new(SimStats::default()),
        7,
    );
    let (status, report) = report(run).await;
    phone.control(simulate::Control::Stop).await;
    assert_eq!(
        failed(&report),
        Vec::<(String, String)>::new(),
        "{report:#}"
    );
    assert_eq!(status, 0);
}

#[tokio::test]
async fn a_worker_that_sends_before_commit_fails_that_rule() {
    if !python_ready() {
        return;
    }
    let (run, url) = conformance();
    let dir = tempfile::tempdir().unwrap();
    let fakes = dir.path().join("fakes");
    std::fs::create_dir(&fakes).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/broken_worker.py");
    let worker = Worker::start(
        &script,
        &url,
        DEVICE,
        TOKEN,
        &dir.path().join("state"),
        &fakes,
    );
    let (status, report) = report(run).await;
    let failed = failed(&report);
    let names: Vec<&str> = failed.iter().map(|(rule, _)| rule.as_str()).collect();
    assert!(
        names.contains(&"no-send-before-commit"),
        "{report:#}\n{}",
        worker.log()
    );
    let (_, did) = &failed[names
        .iter()
        .position(|it| *it == "no-send-before-commit")
        .unwrap()];
    assert!(did.contains("never committed"), "{did}");
    // The rest of the job protocol still works, so the basic rule passes.
    assert!(!names.contains(&"offer-accept-commit-send"), "{report:#}");
    assert_eq!(status, 1);
}
