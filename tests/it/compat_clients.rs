//! capcom6's SMS Gateway client libraries, unmodified, against a live hub (issue 21): the
//! PyPI `android-sms-gateway` 4.3.x (`compat_client.py`) and the npm `android-sms-gateway`
//! 3.0.x (`tests/compat/client.mjs`, installed there by `npm install`). The hub runs here
//! with simulated phones, a user for Basic auth, an idle device and a received SMS; each
//! script sends, repeats an id (409), follows states to Delivered, lists, cancels, reads
//! devices and the inbox, and registers a webhook whose signed delivery it verifies.
//!
//! `.ci/run` installs both clients; without them (and without `SMSHUB_CI=1`) a test says so
//! and skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use smshub::auth::users::{Role, add_user};
use smshub::simulate::{self, Behaviour, Control, SimStats};

use crate::support::{TestHub, eventually};

const USER: &str = "ana";
const PASSWORD: &str = "correct-horse-battery";
const INBOX_TEXT: &str = "inbound hello";

/// A hub with two simulated phones, a user, a device that never connects, and one received
/// SMS; the phones (kept running) and the idle device's id.
async fn hub() -> (TestHub, Vec<simulate::Phone>, String) {
    let hub = TestHub::spawn_with(|config| {
        let hooks = &mut config.events.webhooks;
        hooks.allow_loopback = true;
        hooks.backoff = Duration::from_millis(100);
        hooks.backoff_max = Duration::from_millis(400);
    })
    .await;
    assert!(
        add_user(&hub.store, USER, PASSWORD, Role::Operator)
            .await
            .expect("user")
    );
    let behaviour = Behaviour {
        latency: Duration::from_millis(100),
        ..Behaviour::default()
    };
    let phones = simulate::start_fleet(
        &hub.base,
        &hub.api_key,
        "compat",
        2,
        behaviour,
        Arc::new(SimStats::default()),
    )
    .await
    .expect("phones");
    let (idle, _) = hub.add_device("idle").await;
    eventually("the phones online", || async {
        let (_, body) = hub.get("/api/devices").await;
        let online = body["devices"]
            .as_array()?
            .iter()
            .filter(|it| it["online"] == true)
            .count();
        (online == 2).then_some(())
    })
    .await;
    phones[0]
        .control(Control::Receive {
            from: "+15550001111".into(),
            text: INBOX_TEXT.into(),
        })
        .await;
    eventually("the received SMS stored", || async {
        let (_, body) = hub.get("/api/sms/inbox").await;
        (body["total"].as_u64()? >= 1).then_some(())
    })
    .await;
    (hub, phones, idle)
}

/// Whether a tool can run; without it the test skips, unless `SMSHUB_CI=1`.
fn available(what: &str, probe: &mut Command, install: &str) -> bool {
    let ok = probe.output().is_ok_and(|it| it.status.success());
    if !ok {
        assert!(
            std::env::var("SMSHUB_CI").as_deref() != Ok("1"),
            "SMSHUB_CI=1 but {what} is missing: {install}"
        );
        eprintln!("skipped: {what} is missing: {install}");
    }
    ok
}

/// Runs a client script to its end; its output when it printed `ok` and exited 0.
async fn run(mut command: Command) {
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("the script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.lines().last() == Some("ok"),
        "the client script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pypi_client_works_unchanged() {
    if !available(
        "the PyPI client android-sms-gateway",
        Command::new("python3").args(["-c", "import android_sms_gateway, requests"]),
        "pip install 'android-sms-gateway==4.3.*' requests",
    ) {
        return;
    }
    let (hub, _phones, idle) = hub().await;
    let mut command = Command::new("python3");
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/compat_client.py"
        ))
        .args([&hub.base, USER, PASSWORD, &hub.api_key, &idle, INBOX_TEXT]);
    run(command).await;
}

fn npm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_npm_client_works_unchanged() {
    if !npm_dir().join("node_modules/android-sms-gateway").is_dir() {
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(npm_dir())
            .status()
            .is_ok_and(|it| it.success());
        if !available(
            "the npm client android-sms-gateway",
            Command::new("test").arg(if installed { "1" } else { "" }),
            "npm ci --prefix tests/compat",
        ) {
            return;
        }
    }
    let (hub, _phones, idle) = hub().await;
    let mut command = Command::new("node");
    command
        .arg(npm_dir().join("client.mjs"))
        .args([&hub.base, USER, PASSWORD, &idle]);
    run(command).await;
}
