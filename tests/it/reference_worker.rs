//! The reference Termux worker (`android-client-spec/reference/smshub_worker.py`) against a
//! real hub, with the fake `termux-*` commands of `reference/fakes/` first on its PATH: they
//! record what they were asked and answer in Termux:API's formats.
//!
//! Needs `python3` with `websockets` (`.ci/run` installs it); without it a test skips,
//! unless `SMSHUB_CI=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::support::{TestHub, eventually};

/// The folder of the reference worker.
pub fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("android-client-spec/reference")
}

/// Whether `python3` with `websockets` runs; without it the test skips, unless `SMSHUB_CI=1`.
pub fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import websockets.asyncio.client"])
        .output()
        .is_ok_and(|it| it.status.success());
    if !ok {
        assert!(
            std::env::var("SMSHUB_CI").as_deref() != Ok("1"),
            "SMSHUB_CI=1 but python3 with websockets is missing: pip install websockets"
        );
        eprintln!("skipped: python3 with websockets is missing (pip install websockets)");
    }
    ok
}

/// A worker process: `script` (the reference worker or a variant) with the fakes on PATH.
pub struct Worker {
    child: Child,
    pub fakes: PathBuf,
    pub state: PathBuf,
}

impl Worker {
    /// Starts `script` for device `id` at `ws_base` (`ws://host:port`); the journal in
    /// `state`, the fakes' files in `fakes`.
    pub fn start(
        script: &Path,
        ws_base: &str,
        id: &str,
        token: &str,
        state: &Path,
        fakes: &Path,
    ) -> Worker {
        let path = format!(
            "{}:{}",
            reference_dir().join("fakes").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state.with_extension("log"))
            .expect("worker log");
        let child = Command::new("python3")
            .arg(script)
            .args(["--hub", ws_base, "--device-id", id, "--state-dir"])
            .arg(state)
            .args(["--poll-s", "0.2", "--backoff-cap-s", "1", "-v"])
            .env("SMSHUB_DEVICE_TOKEN", token)
            .env("PATH", path)
            .env("TERMUX_FAKE_DIR", fakes)
            .env("PYTHONPATH", reference_dir())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("python3 starts");
        Worker {
            child,
            fakes: fakes.to_path_buf(),
            state: state.to_path_buf(),
        }
    }

    /// The reference worker itself.
    pub fn reference(ws_base: &str, id: &str, token: &str, state: &Path, fakes: &Path) -> Worker {
        Worker::start(
            &reference_dir().join("smshub_worker.py"),
            ws_base,
            id,
            token,
            state,
            fakes,
        )
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops (`SIGSTOP`) or continues (`SIGCONT`) the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let done = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(done, 0, "signal {signal} to the worker");
    }

    /// What the worker logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.with_extension("log")).unwrap_or_default()
    }

    /// The fake commands' calls named `cmd`.
    pub fn calls(&self, cmd: &str) -> Vec<Value> {
        std::fs::read_to_string(self.fakes.join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|call| call["cmd"] == cmd)
            .collect()
    }

    /// The worker's journal as it is on disk.
    pub fn journal(&self) -> Value {
        std::fs::read_to_string(self.state.join("journal.json"))
            .ok()
            .and_then(|it| serde_json::from_str(&it).ok())
            .unwrap_or(Value::Null)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ws(hub: &TestHub) -> String {
    hub.base.replacen("http", "ws", 1)
}

/// The device `id` as `GET /api/devices` shows it.
async fn device(hub: &TestHub, id: &str) -> Value {
    let (_, devices) = hub.get("/api/devices").await;
    devices["devices"]
        .as_array()
        .and_then(|it| it.iter().find(|device| device["id"] == id))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn wait_online(hub: &TestHub, id: &str) -> Value {
    eventually("the worker online with a status", || async {
        let device = device(hub, id).await;
        (device["online"] == true && !device["battery"].is_null()).then_some(device)
    })
    .await
}

#[tokio::test]
async fn a_message_goes_out_through_termux_sms_send_and_the_battery_reaches_the_hub() {
    if !python_ready() {
        return;
    }
    let hub = TestHub::spawn().await;
    let (id, token) = hub.add_device("termux").await;
    let dir = tempfile::tempdir().unwrap();
    let fakes = dir.path().join("fakes");
    std::fs::create_dir(&fakes).unwrap();
    std::fs::write(
        fakes.join("battery.json"),
        json!({"percentage": 42, "status": "DISCHARGING", "plugged": "UNPLUGGED"}).to_string(),
    )
    .unwrap();
    let worker = Worker::reference(&ws(&hub), &id, &token, &dir.path().join("state"), &fakes);

    let device = wait_online(&hub, &id).await;
    assert_eq!(device["battery"]["level"], 42, "{device}");
    assert_eq!(device["battery"]["charging"], false, "{device}");
    assert_eq!(device["sims"][0]["signal_dbm"], -71, "{device}");

    let sms = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "Hello from Termux"}))
        .await;
    hub.wait_state(&sms, "sent").await;
    let sends = worker.calls("termux-sms-send");
    assert_eq!(sends.len(), 1, "{sends:?}\n{}", worker.log());
    let args: Vec<&str> = sends[0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args, ["-n", "+14155552671", "-s", "0", "Hello from Termux"]);
    // Acknowledged: the journal keeps only a tombstone of it.
    eventually("the job a tombstone", || async {
        let journal = worker.journal();
        (journal["tombstones"].get(&sms).is_some() && journal["jobs"].get(&sms).is_none())
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_worker_killed_after_accepting_sends_the_message_once_after_its_restart() {
    if !python_ready() {
        return;
    }
    let hub = TestHub::spawn().await;
    let (id, token) = hub.add_device("termux").await;
    let dir = tempfile::tempdir().unwrap();
    let (state, fakes) = (dir.path().join("state"), dir.path().join("fakes"));
    std::fs::create_dir(&fakes).unwrap();
    let worker = Worker::reference(&ws(&hub), &id, &token, &state, &fakes);
    wait_online(&hub, &id).await;

    // The worker is frozen; the hub offers the job into its socket and goes away, so the
    // worker journals the offer as accepted when it wakes and no commit can reach it.
    worker.signal(libc::SIGSTOP);
    let sms = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "exactly once"}))
        .await;
    hub.wait_state(&sms, "dispatched").await;
    let hub = hub.restart().await;
    worker.signal(libc::SIGCONT);
    eventually("the job journaled as accepted", || async {
        (worker.journal()["jobs"][&sms]["state"] == "accepted").then_some(())
    })
    .await;
    worker.kill();

    // Restarted on its journal against the hub (now at another port).
    let worker = Worker::reference(&ws(&hub), &id, &token, &state, &fakes);
    hub.wait_state(&sms, "sent").await;
    eventually("the job a tombstone", || async {
        worker.journal()["tombstones"].get(&sms).map(|_| ())
    })
    .await;
    let sends = worker.calls("termux-sms-send");
    assert_eq!(sends.len(), 1, "{sends:?}\n{}", worker.log());
}

#[tokio::test]
async fn incoming_sms_reach_the_hub_once_across_restarts() {
    if !python_ready() {
        return;
    }
    let hub = TestHub::spawn().await;
    let (id, token) = hub.add_device("termux").await;
    let dir = tempfile::tempdir().unwrap();
    let (state, fakes) = (dir.path().join("state"), dir.path().join("fakes"));
    std::fs::create_dir(&fakes).unwrap();
    let inbox = |messages: &[(&str, &str)]| {
        let rows: Vec<Value> = messages
            .iter()
            .map(|(from, body)| json!({"number": from, "body": body, "received": "2026-12-06 09:30:00"}))
            .collect();
        std::fs::write(fakes.join("inbox.json"), Value::Array(rows).to_string()).unwrap();
    };
    // Already in the inbox at the first start: history, not forwarded.
    inbox(&[("+14155550100", "old news")]);
    let worker = Worker::reference(&ws(&hub), &id, &token, &state, &fakes);
    wait_online(&hub, &id).await;

    inbox(&[
        ("+14155550100", "old news"),
        ("+14155550101", "first"),
        ("Mobilis", "second"),
    ]);
    eventually("two SMS in the inbox", || async {
        let (_, body) = hub.get("/api/sms/inbox").await;
        (body["total"] == 2).then_some(())
    })
    .await;

    worker.kill();
    inbox(&[
        ("+14155550100", "old news"),
        ("+14155550101", "first"),
        ("Mobilis", "second"),
        ("+14155550102", "third"),
    ]);
    let worker = Worker::reference(&ws(&hub), &id, &token, &state, &fakes);
    let body = eventually("the third SMS in the inbox", || async {
        let (_, body) = hub.get("/api/sms/inbox").await;
        let texts: Vec<String> = body["messages"]
            .as_array()?
            .iter()
            .filter_map(|it| it["message"].as_str().map(str::to_string))
            .collect();
        texts.contains(&"third".to_string()).then_some(body)
    })
    .await;
    assert_eq!(body["total"], 3, "{body}\n{}", worker.log());
    let mut texts: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|it| it["message"].as_str())
        .collect();
    texts.sort();
    assert_eq!(texts, ["first", "second", "third"]);
}
