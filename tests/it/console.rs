//! The console in a real browser (issue 19): Debian's chromium, driven by `puppeteer-core`
//! from `tests/console/console.mjs`, against a live hub with simulated phones. The script
//! signs in as an admin, watches the phones appear live, sends a message from the form and
//! follows it to `delivered` in the list and on its page, sees a received SMS arrive in the
//! inbox and searches it, sees each SIM's signal sparkline on the fleet, a device's limits
//! and how much of each cap it used and what it sent in the last 24 h, reads a device's
//! history, rests and unrests it and sets its limits from its page, filters messages by the
//! API key that sent them, reads an
//! emulated modem's balance and data balance, recharges it, asks it a USSD code, lists and
//! deletes a message stored on it, pairs a phone, creates a webhook to a receiver of its own, creates and revokes a
//! key and sees the webhook deliver that (and replay), reads the audit log, sees a silenced
//! phone go offline within the heartbeat window, queues and cancels a message for it (and
//! sees the queue's depth over time), rotates a token and deletes a device from their
//! pages, signs out, signs in as a viewer (who is offered no
//! action), and opens the demo's API-key link; it fails on any console error, failed request or refusal it did not ask for, and
//! writes screenshots of every view at desktop and phone widths to
//! `$CARGO_TARGET_TMPDIR/console-screenshots`.
//!
//! The script asks this side for what only the hub's side can do, one line each on its
//! stdout: `phones`, `receive`, `modem` (attach an emulated modem), `stored` (an SMS stays
//! stored on it), `pair CODE`, `kill`. `.ci/run` installs chromium and the npm
//! package; without them (and without `SMSHUB_CI=1`) the test says so and skips.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use smshub::auth::users::{Role, add_user};
use smshub::simulate::{self, Behaviour, Credentials, Profile, SimStats};
use smshub_protocol::device::{DeviceFrame, Heartbeat};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::oneshot;

use crate::modem_emulator::{Emulator, profile};
use crate::support::{RawPhone, TestHub};

const USER: &str = "olga";
const PASSWORD: &str = "console-horse-battery";
/// A viewer, with the same password.
const VIEWER: &str = "vera";
/// Long enough that a layout cutting names short would show.
const PREFIX: &str = "rack-a-shelf-2-phone";
const PHONES: usize = 3;
const PAIRED: &str = "paired-pixel";
const SILENT: &str = "silent-phone";
/// The label of the silent phone's SIM card.
const SIM_LABEL: &str = "rack A, slot 7";
/// The whole browser run, from launch to `ok`.
const RUN: Duration = Duration::from_secs(450);

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

/// The browser binary, and whether puppeteer-core is installed; without either the test
/// skips, unless `SMSHUB_CI=1`.
fn browser() -> Option<PathBuf> {
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|it| it.is_file());
    let puppeteer = console_dir()
        .join("node_modules/puppeteer-core/package.json")
        .is_file();
    let missing = match (&chromium, puppeteer) {
        (None, _) => "chromium (apt-get install chromium)",
        (_, false) => "puppeteer-core (npm ci --prefix tests/console)",
        _ => return chromium,
    };
    assert!(
        std::env::var("SMSHUB_CI").as_deref() != Ok("1"),
        "SMSHUB_CI=1 but {missing} is missing (.ci/run installs it)"
    );
    eprintln!("skipped: {missing} is missing");
    None
}

/// A phone that says hello, reports its health and heartbeats until `stop` fires, then
/// goes silent with its socket still open: the hub can only notice by the silence.
async fn silent_phone(hub: &TestHub) -> oneshot::Sender<()> {
    let (id, token) = hub.add_device(SILENT).await;
    // Labelled before it connects, so its first appearance shows the label.
    let (status, body) = hub
        .post(
            "/api/sim-cards",
            json!({ "device_id": id, "slot": 0, "label": SIM_LABEL }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut phone = RawPhone::connect(&hub.base, &id, &token)
        .await
        .expect("the phone connects");
    phone.hello(2, None).await;
    phone.status(55, false, -80).await;
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut beat = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = beat.tick() => phone.send(&DeviceFrame::Heartbeat(Heartbeat {})).await,
                _ = &mut stopped => break,
            }
        }
        // Silent, and never closed: held until the test ends.
        tokio::time::sleep(Duration::from_secs(600)).await;
        drop(phone);
    });
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_works_the_fleet_from_the_console_in_a_real_browser() {
    let Some(chromium) = browser() else {
        return;
    };
    // Two seconds between heartbeats: a silent phone is offline after three (6 s).
    let hub = TestHub::spawn_with(|config| {
        config.heartbeat_s = 2;
        // The script's webhook receiver listens on the loopback.
        config.events.webhooks.allow_loopback = true;
        // An emulated modem (a pty) is attached when the script asks.
        config.modems = crate::modem_api::api_modem_config();
    })
    .await;
    assert!(
        add_user(&hub.store, USER, PASSWORD, Role::Admin)
            .await
            .expect("user")
    );
    assert!(
        add_user(&hub.store, VIEWER, PASSWORD, Role::Viewer)
            .await
            .expect("user")
    );
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let mut child = Command::new("node")
        .arg(console_dir().join("console.mjs"))
        .current_dir(console_dir())
        .env("HUB", &hub.base)
        .env("USERNAME", USER)
        .env("PASSWORD", PASSWORD)
        .env("VIEWER", VIEWER)
        .env("API_KEY", &hub.api_key)
        .env("PHONE_PREFIX", PREFIX)
        .env("PHONES", PHONES.to_string())
        .env("PAIRED_NAME", PAIRED)
        .env("SILENT_NAME", SILENT)
        .env("SIM_LABEL", SIM_LABEL)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOTS", &shots)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut stderr = child.stderr.take().expect("stderr");
    let log = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();

    let stats = Arc::new(SimStats::default());
    let behaviour = Behaviour {
        latency: Duration::from_millis(150),
        ..Behaviour::default()
    };
    let mut phones = Vec::new();
    let mut silence = None;
    let mut modem = None;
    let mut said = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await.expect("the script's output") {
            said.push(line.clone());
            let (request, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            match request {
                "phones" => {
                    phones = simulate::start_fleet(
                        &hub.base,
                        &hub.api_key,
                        PREFIX,
                        PHONES,
                        behaviour.clone(),
                        stats.clone(),
                    )
                    .await
                    .expect("the phones start");
                    silence = Some(silent_phone(&hub).await);
                }
                "pair" => {
                    let (status, body) =
                        hub.post("/api/devices/pair", json!({ "code": arg })).await;
                    assert_eq!(status, 201, "redeeming {arg}: {body}");
                    let credentials = Credentials {
                        id: body["device_id"].as_str().expect("device_id").into(),
                        name: body["name"].as_str().expect("name").into(),
                        token: body["token"].as_str().expect("token").into(),
                    };
                    assert_eq!(credentials.name, PAIRED);
                    phones.push(simulate::spawn_phone(
                        &hub.base,
                        credentials,
                        Profile::varied(7),
                        behaviour.clone(),
                        stats.clone(),
                        99,
                    ));
                }
                "receive" => {
                    phones[0]
                        .control(simulate::Control::Receive {
                            from: "+15550001111".into(),
                            text: "Reply from the field".into(),
                        })
                        .await;
                }
                "modem" => {
                    let mut model = profile("huawei_e1752");
                    // Djezzy's data balance (`*999#`) and top-up (`*100*{code}#`).
                    model
                        .ussd_answers
                        .insert("*999#".into(), "Forfait internet: 3.5 Go".into());
                    model.ussd_answers.insert(
                        "*100*12345678#".into(),
                        "Recharge de 500 DA effectuee".into(),
                    );
                    let emulator = Emulator::start(model);
                    let (status, body) = hub
                        .post("/api/modems/connect", json!({ "port": emulator.path }))
                        .await;
                    assert_eq!(status, 200, "{body}");
                    modem = Some(emulator);
                }
                "stored" => {
                    // Not announced: it stays on the modem until the next sweep (minutes).
                    modem.as_ref().expect("the modem runs").deliver(
                        "+213555000111",
                        "Kept on the SIM",
                        false,
                    );
                }
                "kill" => {
                    let _ = silence.take().expect("the silent phone runs").send(());
                }
                _ => {}
            }
        }
    };
    let finished = tokio::time::timeout(RUN, run).await.is_ok();
    if !finished {
        let _ = child.kill().await;
    }
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .ok()
        .and_then(Result::ok);
    let log = tokio::time::timeout(Duration::from_secs(5), log)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    assert!(
        finished
            && status.is_some_and(|it| it.success())
            && said.last().map(String::as_str) == Some("ok"),
        "the browser run failed (finished in time: {finished}, status {status:?}); it said {said:?}\n{log}"
    );
}
