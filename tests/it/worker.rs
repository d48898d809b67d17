//! `smshub worker` as a process: the real binary drives the pty modem emulator and speaks
//! device protocol v1 to a hub in this process. A message sent through the hub's API goes out
//! through the worker's modem; the worker killed with SIGKILL while the modem holds the PDU
//! reports `outcome_unknown` after its restart and never writes the PDU again; a hub restart
//! loses nothing of the worker's journal; a connection cut while the worker resumes still
//! ends with the message sent once.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::modem_emulator::{Emulator, profile};
use crate::support::{TestHub, eventually};

/// A worker process; killed (SIGKILL) when dropped.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(hub: &str, id: &str, token: &str, modem: &str, journal: &Path) -> Worker {
        Worker::start_with(hub, id, token, modem, journal, &[])
    }

    fn start_with(
        hub: &str,
        id: &str,
        token: &str,
        modem: &str,
        journal: &Path,
        extra: &[&str],
    ) -> Worker {
        let mut command = Command::new(env!("CARGO_BIN_EXE_smshub"));
        command.args(["--log", "info,smshub=debug", "worker"]);
        Worker::spawn(command, hub, id, token, modem, journal, extra)
    }

    /// The worker as its own binary, `smshub-worker` (what the Pi runs).
    fn standalone(hub: &str, id: &str, token: &str, modem: &str, journal: &Path) -> Worker {
        let mut command = Command::new(env!("CARGO_BIN_EXE_smshub-worker"));
        command.args(["--log", "info,smshub=debug"]);
        Worker::spawn(command, hub, id, token, modem, journal, &[])
    }

    fn spawn(
        mut command: Command,
        hub: &str,
        id: &str,
        token: &str,
        modem: &str,
        journal: &Path,
        extra: &[&str],
    ) -> Worker {
        let log = journal.with_extension("log");
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("worker log");
        let child = command
            .args(["--hub", hub, "--device-id", id])
            .args(["--modem", modem, "--max-backoff-s", "1", "--journal-dir"])
            .arg(journal)
            .args(extra)
            .env("SMSHUB_WORKER_TOKEN", token)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("smshub worker starts");
        Worker { child, log }
    }

    /// SIGKILL: no chance to write anything more.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) for the worker to exit by itself; its exit code.
    async fn exited(&mut self) -> Option<i32> {
        let give_up = tokio::time::Instant::now() + crate::support::PATIENCE;
        while tokio::time::Instant::now() < give_up {
            if let Some(status) = self.child.try_wait().expect("worker status") {
                return status.code();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Setup {
    hub: TestHub,
    emulator: Emulator,
    id: String,
    token: String,
    dir: tempfile::TempDir,
}

/// Waits until the device `id` is online at `hub`.
async fn online(hub: &TestHub, id: &str) {
    eventually("the worker online", || async {
        let (_, devices) = hub.get("/api/devices").await;
        devices["devices"]
            .as_array()?
            .iter()
            .find(|it| it["id"] == id && it["online"] == true)
            .map(|_| ())
    })
    .await;
}

async fn send(hub: &TestHub, text: &str, report: bool) -> String {
    hub.send_sms(
        json!({"phone_number": "+213661234567", "message": text, "delivery_report": report}),
    )
    .await
}

impl Setup {
    async fn new(modem: crate::modem_emulator::Profile) -> Setup {
        let hub = TestHub::spawn().await;
        let (id, token) = hub.add_device("pi").await;
        Setup {
            hub,
            emulator: Emulator::start(modem),
            id,
            token,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn journal(&self) -> PathBuf {
        self.dir.path().join("journal")
    }

    fn worker(&self, hub: &str) -> Worker {
        Worker::start(
            hub,
            &self.id,
            &self.token,
            &self.emulator.path,
            &self.journal(),
        )
    }

    async fn online(&self) {
        online(&self.hub, &self.id).await;
    }

    async fn send(&self, text: &str, report: bool) -> String {
        send(&self.hub, text, report).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_goes_out_through_the_worker_and_its_delivery_report_comes_back() {
    let setup = Setup::new(profile("simcom_sim800")).await;
    let worker = setup.worker(&setup.hub.base);
    setup.online().await;

    let id = setup.send("Salam from the Pi", true).await;
    setup.hub.wait_state(&id, "sent").await;
    let sent = setup.emulator.sent();
    assert_eq!(sent.len(), 1, "{}", worker.log());
    assert_eq!(sent[0].text, "Salam from the Pi");
    assert!(sent[0].status_report);

    // The network's status report travels back as `delivered`.
    assert_eq!(setup.emulator.report_all(0), 1);
    setup.hub.wait_state(&id, "delivered").await;

    // An SMS the modem receives reaches the hub's inbox, once.
    setup
        .emulator
        .deliver("+213770123456", "Solde: 1250.00 DA", true);
    eventually("the incoming SMS in the inbox", || async {
        let (_, inbox) = setup.hub.get("/api/sms/inbox").await;
        let text = inbox.to_string();
        text.contains("Solde: 1250.00 DA").then_some(())
    })
    .await;
    eventually("the SMS deleted from the modem", || async {
        setup.emulator.stored_indexes().is_empty().then_some(())
    })
    .await;
    // The token never shows in the worker's log.
    assert!(!worker.log().contains(&setup.token), "the token leaked");
}

/// `wss://`: the worker checks the hub's certificate against `--ca-file` (or the system's
/// roots), and a refused token (401) stops it for good, with status 1, the token unlogged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_trusts_its_ca_file_only_and_stops_on_a_refused_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = crate::tls::files(dir.path());
    let (ca, cert, key) = crate::tls::certificate("worker");
    crate::tls::write(&files, &cert, &key);
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let tls = files.clone();
    let hub = TestHub::spawn_with(move |config| config.tls = Some(tls)).await;
    let https = hub.base.replacen("http://", "https://", 1);
    let wss = hub.base.replacen("http://", "wss://", 1);
    let client = crate::tls::client(&ca);
    let created: serde_json::Value = client
        .post(format!("{https}/api/devices"))
        .header("X-API-Key", &hub.api_key)
        .json(&json!({"name": "tls pi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, token) = (
        created["id"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    );
    let is_online = || async {
        let devices: serde_json::Value = client
            .get(format!("{https}/api/devices"))
            .header("X-API-Key", &hub.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        devices["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|it| it["id"] == id.as_str() && it["online"] == true)
    };
    let emulator = Emulator::start(profile("simcom_sim800"));
    let journal = dir.path().join("journal");

    // The system's roots do not know the test CA: the worker never gets through, and says why
    // (on a machine with no roots at all, it says so and stops at start).
    let mut untrusting = Worker::start(&wss, &id, &token, &emulator.path, &journal);
    eventually("the worker refusing the hub's certificate", || async {
        let log = untrusting.log();
        let refused =
            log.contains("cannot connect to the hub") && log.to_lowercase().contains("certificate");
        (refused || log.contains("the system has no trusted roots")).then_some(())
    })
    .await;
    assert!(!is_online().await, "{}", untrusting.log());
    untrusting.kill();

    let ca_arg = ca_file.to_str().unwrap();
    let trusting = Worker::start_with(
        &wss,
        &id,
        &token,
        &emulator.path,
        &journal,
        &["--ca-file", ca_arg],
    );
    eventually("the worker online over wss://", || async {
        is_online().await.then_some(())
    })
    .await;
    drop(trusting);

    let mut refused = Worker::start_with(
        &wss,
        &id,
        "shd_not-the-token",
        &emulator.path,
        &journal,
        &["--ca-file", ca_arg],
    );
    assert_eq!(refused.exited().await, Some(1), "{}", refused.log());
    let log = refused.log();
    assert!(log.contains("401"), "{log}");
    assert!(
        !log.contains("shd_not-the-token"),
        "the token leaked: {log}"
    );
}

/// A HiLink emulator whose web UI asks for `admin` and `password`, and its URL carrying the
/// login `admin:given`.
async fn stick_behind_login(
    password: &str,
    given: &str,
) -> (crate::hilink_emulator::Emulator, String) {
    let stick = crate::hilink_emulator::Emulator::start(crate::hilink_emulator::Options {
        login: Some(("admin".into(), password.into())),
        ..Default::default()
    })
    .await;
    let url = stick
        .url
        .replacen("http://", &format!("http://admin:{given}@"), 1);
    (stick, url)
}

/// A HiLink stick next to the worker (`--modem http://…`), driven by the hub's own stick
/// calls: it sends (one `send-sms`), its inbox reaches the hub once and is emptied, and USSD
/// from the API runs on it. The worker runs as `smshub-worker`, the binary of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hilink_stick_next_to_the_worker_sends_receives_and_answers_ussd() {
    let hub = TestHub::spawn().await;
    let (device, token) = hub.add_device("pi").await;
    // A stick whose web UI asks for a login, given in the URL.
    let (stick, url) = stick_behind_login("s3cret-pw", "s3cret-pw").await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Run as its own binary, as on a Pi.
    let worker = Worker::standalone(
        &hub.base,
        &device,
        &token,
        &url,
        &dir.path().join("journal"),
    );
    online(&hub, &device).await;
    let (_, devices) = hub.get("/api/devices").await;
    let listed = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|it| it["id"] == device.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (
            &listed["sims"][0]["phone_number"],
            &listed["sims"][0]["operator"]
        ),
        (&json!("+213770001122"), &json!("Djezzy")),
        "the stick's SIM: {listed} {}",
        worker.log()
    );

    let id = send(&hub, "Salam from the stick", true).await;
    hub.wait_state(&id, "sent").await;
    let sent = stick.sent();
    assert_eq!(sent.len(), 1, "{}", worker.log());
    assert_eq!(sent[0].content, "Salam from the stick");
    assert_eq!(sent[0].to, "+213661234567");

    stick.deliver(
        "+213770123456",
        "Solde: 980 DA",
        "2026-12-06 10:00:00",
        false,
    );
    eventually("the stick's SMS in the inbox", || async {
        let (_, inbox) = hub.get("/api/sms/inbox").await;
        inbox.to_string().contains("Solde: 980 DA").then_some(())
    })
    .await;
    eventually("the SMS deleted from the stick", || async {
        stick.inbox().is_empty().then_some(())
    })
    .await;
    let (_, inbox) = hub.get("/api/sms/inbox").await;
    assert_eq!(
        inbox.to_string().matches("Solde: 980 DA").count(),
        1,
        "{inbox}"
    );

    let path = format!("/api/modems/{device}/ussd");
    let (status, answer) = hub.post(&path, json!({"code": "*710#"})).await;
    assert_eq!(status, 200, "{answer} {}", worker.log());
    assert_eq!(answer["text"], "Internet: 2.5 Go restants", "{answer}");
    assert!(!worker.log().contains(&token), "the token leaked");
    assert!(
        !worker.log().contains("s3cret-pw"),
        "the stick's password leaked"
    );
    assert!(stick.logins() >= 1 && stick.login_failures() == 0);
    assert_eq!(stick.sent().len(), 1, "sent once: {}", worker.log());
}

/// A HiLink stick that refuses the worker's login is tried once, never again (sticks lock the
/// account after a few failures); its slot reads as having no service, so the hub offers it
/// nothing (a job already on its way would fail temporary), and the worker stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hilink_stick_refusing_the_login_is_not_retried_and_gets_no_jobs() {
    let hub = TestHub::spawn().await;
    let (device, token) = hub.add_device("pi").await;
    let (stick, url) = stick_behind_login("right", "wrong").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = Worker::standalone(
        &hub.base,
        &device,
        &token,
        &url,
        &dir.path().join("journal"),
    );
    // A SIM that never says who it is holds the first connection up to 15 s.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let (_, devices) = hub.get("/api/devices").await;
        let up = devices["devices"].as_array().is_some_and(|it| {
            it.iter()
                .any(|d| d["id"] == device.as_str() && d["online"] == true)
        });
        if up {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", worker.log());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let id = send(&hub, "through a locked stick", false).await;
    // Longer than the stick's first reconnect wait (5 s): no second login comes.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let (_, waiting) = hub.get(&format!("/api/sms/{id}")).await;
    assert_eq!(waiting["state"], "queued", "{waiting}");
    let reason = waiting["waiting_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("no service"),
        "the slot reads as down: {waiting}"
    );
    assert_eq!(stick.sent().len(), 0);
    assert_eq!(
        stick.login_failures(),
        1,
        "one login, never again: {}",
        worker.log()
    );
    assert!(!worker.log().contains("wrong@"), "{}", worker.log());
    online(&hub, &device).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ussd_through_the_api_runs_on_the_workers_modem() {
    let setup = Setup::new(profile("simcom_sim800")).await;
    let worker = setup.worker(&setup.hub.base);
    setup.online().await;
    let path = format!("/api/modems/{}/ussd", setup.id);

    let (status, answer) = setup.hub.post(&path, json!({"code": "*222#"})).await;
    assert_eq!(status, 200, "{answer} {}", worker.log());
    assert_eq!(answer["text"], "Solde 45 DA", "{answer}");
    // The balance: the code of the SIM's operator (from the MCC-MNC of its `hello`) runs on
    // the worker's modem; a slot with no SIM has no operator, so no code.
    let (status, balance) = setup
        .hub
        .get(&format!("/api/modems/{}/balance?slot=0", setup.id))
        .await;
    assert_eq!(status, 200, "{balance} {}", worker.log());
    assert_eq!(
        (&balance["operator"], &balance["code"], &balance["amount"]),
        (&json!("Mobilis"), &json!("*100#"), &json!(320.0)),
        "{balance}"
    );
    let (status, balance) = setup
        .hub
        .get(&format!("/api/modems/{}/balance?slot=3", setup.id))
        .await;
    assert_eq!(
        (status, &balance["error"]["code"]),
        (422, &json!("no_balance_code")),
        "{balance}"
    );
    assert_eq!(answer["code"], "*222#", "{answer}");
    assert!(
        setup
            .emulator
            .commands()
            .iter()
            .any(|it| it.starts_with("AT+CUSD=1,") && it.contains("*222#")),
        "{:?}",
        setup.emulator.commands()
    );

    // A code the network does not know, and a slot with no modem: the worker's error comes back.
    let (status, answer) = setup.hub.post(&path, json!({"code": "*999#"})).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["error"]["code"], "modem_error", "{answer}");
    let (status, answer) = setup
        .hub
        .post(&path, json!({"code": "*100#", "slot": 3}))
        .await;
    assert_eq!(status, 502, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("sim_unavailable"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_send_never_sends_twice_and_reports_after_restart() {
    let setup = Setup::new(profile("simcom_sim800")).await;
    let mut worker = setup.worker(&setup.hub.base);
    setup.online().await;

    // The modem takes the PDU and keeps its answer: the worker is killed right then.
    setup.emulator.swallow_next_pdu();
    let id = setup.send("Once only", false).await;
    eventually("the PDU written", || async {
        (setup.emulator.pdu_count() == 1).then_some(())
    })
    .await;
    worker.kill();
    let journal = std::fs::read_to_string(setup.journal().join("journal.json")).unwrap();
    assert!(journal.contains("\"sending\""), "{journal}");

    // Restarted on the same journal: the job's fate is unknown, so it is reported, not resent.
    let worker = setup.worker(&setup.hub.base);
    let failed = setup.hub.wait_state(&id, "failed").await;
    assert_eq!(failed["error"]["code"], "outcome_unknown", "{failed}");
    assert_eq!(failed["error"]["temporary"], false, "{failed}");

    // The worker goes on working, and the first message was written once in all.
    let next = setup.send("After the restart", false).await;
    setup.hub.wait_state(&next, "sent").await;
    assert_eq!(setup.emulator.pdu_count(), 2, "{}", worker.log());
    let texts: Vec<String> = setup
        .emulator
        .sent()
        .into_iter()
        .map(|it| it.text)
        .collect();
    assert_eq!(texts, vec!["After the restart".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_keeps_its_journal_across_a_hub_restart_and_reconnects() {
    let setup = Setup::new(profile("simcom_sim800")).await;
    let worker = setup.worker(&setup.hub.base);
    setup.online().await;
    let Setup {
        mut hub,
        emulator,
        id: device,
        dir,
        ..
    } = setup;
    let addr: SocketAddr = hub.base.trim_start_matches("http://").parse().unwrap();

    let id = send(&hub, "Before the restart", true).await;
    hub.wait_state(&id, "sent").await;

    // The hub goes away; the delivery report comes meanwhile and waits in the journal.
    hub.shutdown().await;
    assert_eq!(emulator.report_all(0), 1);
    let journal = dir.path().join("journal").join("journal.json");
    eventually("the delivery report journaled", || async {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        text.contains(r#""type":"delivered""#).then_some(())
    })
    .await;

    // The hub comes back on the same address and database; the worker reconnects by itself.
    let hub = hub.restart_with(|config, _| config.listen = addr).await;
    online(&hub, &device).await;
    hub.wait_state(&id, "delivered").await;
    let next = send(&hub, "After the restart", false).await;
    hub.wait_state(&next, "sent").await;
    assert_eq!(emulator.pdu_count(), 2, "{}", worker.log());
}

/// A TCP relay between the worker and the hub that can cut its connections.
struct Relay {
    addr: SocketAddr,
    cut: watch::Sender<u64>,
    /// Connections to cut as soon as the hub's first bytes (the upgrade, `welcome`) went by.
    cut_after_first: Arc<AtomicU32>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(0u64);
        let cut_after_first = Arc::new(AtomicU32::new(0));
        let (cuts, pending) = (cut.clone(), cut_after_first.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, cuts.subscribe(), pending.clone()));
            }
        });
        Relay {
            addr,
            cut,
            cut_after_first,
        }
    }

    fn cut_all(&self) {
        self.cut.send_modify(|it| *it += 1);
    }
}

async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    mut cut: watch::Receiver<u64>,
    pending: Arc<AtomicU32>,
) {
    let doomed = pending
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |it| it.checked_sub(1))
        .is_ok();
    let (mut a, mut b) = (vec![0u8; 16384], vec![0u8; 16384]);
    let mut from_hub = 0usize;
    loop {
        tokio::select! {
            read = client.read(&mut a) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => if server.write_all(&a[..n]).await.is_err() { return },
            },
            read = server.read(&mut b) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if client.write_all(&b[..n]).await.is_err() { return }
                    from_hub += 1;
                    // The upgrade answer, then `welcome`: cut in the middle of the resume.
                    if doomed && from_hub >= 2 {
                        return;
                    }
                }
            },
            _ = cut.changed() => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_while_the_worker_resumes_still_sends_once() {
    let mut slow = profile("simcom_sim800");
    slow.cmgs_delay_ms = 1500;
    let setup = Setup::new(slow).await;
    let hub_addr: SocketAddr = setup
        .hub
        .base
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let relay = Relay::start(hub_addr).await;
    let worker = setup.worker(&format!("http://{}", relay.addr));
    setup.online().await;

    // The PDU is with the modem when the connection drops; the next connection is cut too,
    // right after `welcome`, while the worker resumes.
    let id = setup.send("Through the storm", false).await;
    eventually("the PDU written", || async {
        (setup.emulator.pdu_count() == 1).then_some(())
    })
    .await;
    relay.cut_after_first.store(1, Ordering::SeqCst);
    relay.cut_all();

    let sent = setup.hub.wait_state(&id, "sent").await;
    assert_eq!(sent["parts"], 1, "{sent}");
    assert_eq!(
        relay.cut_after_first.load(Ordering::SeqCst),
        0,
        "the resume was never cut"
    );
    assert_eq!(setup.emulator.pdu_count(), 1, "{}", worker.log());
    assert_eq!(setup.emulator.sent().len(), 1);
}
