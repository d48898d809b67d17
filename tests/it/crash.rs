//! Crash safety, proven under load: the hub as a separate process killed with SIGKILL at
//! random points and restarted on the same database, and phones dropped and reconnected
//! every few hundred milliseconds. Every message that got a 2xx must reach a final state,
//! none may be missing or extra, and no message may be committed to two phones or sent twice.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::json;
use smshub::simulate::{self, Behaviour, Control, SimStats};
use tokio::sync::Mutex;

use crate::support::{TestHub, cli_api_key, free_port};

const CONCURRENCY: usize = 8;

/// Sends `total` messages, each under its own idempotency key, retrying through outages
/// until it gets a 2xx; returns the accepted message ids. `base` may name several nodes of a
/// cluster, separated by commas: requests go to each in turn.
pub(crate) async fn submit_all(base: String, api_key: String, total: usize) -> Vec<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, next, accepted, base, api_key) = (
            client.clone(),
            next.clone(),
            accepted.clone(),
            base.split(',').map(str::to_string).collect::<Vec<_>>(),
            api_key.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                if n >= total {
                    return;
                }
                let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
                for attempt in n.. {
                    let base = &base[attempt % base.len()];
                    let response = client
                        .post(format!("{base}/api/send-sms"))
                        .header("X-API-Key", &api_key)
                        .header("Idempotency-Key", format!("load-{n}"))
                        .json(&json!({"phone_number": "+14155552671", "message": format!("load {n}"), "delivery_report": true}))
                        .send()
                        .await;
                    if let Ok(response) = response
                        && response.status().is_success()
                        && let Ok(body) = response.json::<serde_json::Value>().await
                        && let Some(id) = body["id"].as_str()
                    {
                        accepted.lock().await.push(id.to_string());
                        break;
                    }
                    assert!(tokio::time::Instant::now() < deadline, "message {n} never accepted");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    Arc::try_unwrap(accepted).unwrap().into_inner()
}

/// Waits until every accepted message is delivered and checks nothing is missing or extra.
/// GETs `url` with the API key and reads the JSON answer.
async fn get_json(client: &reqwest::Client, url: &str, api_key: &str) -> serde_json::Value {
    client
        .get(url)
        .header("X-API-Key", api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) async fn check_all_delivered(base: &str, api_key: &str, accepted: &[String]) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let stats: serde_json::Value = match client
            .get(format!("{base}/api/stats"))
            .header("X-API-Key", api_key)
            .send()
            .await
        {
            Ok(it) => it.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        let delivered = stats["messages"]["delivered"].as_u64().unwrap_or(0);
        if delivered as usize >= accepted.len() {
            assert_eq!(
                stats["messages"]["total"].as_u64(),
                Some(accepted.len() as u64),
                "extra messages: {stats}"
            );
            assert_eq!(stats["messages"]["failed"].as_u64(), Some(0), "{stats}");
            break;
        }
        let failed = stats["messages"]["failed"].as_u64().unwrap_or(0);
        let settled = failed > 0 && (delivered + failed) as usize >= accepted.len();
        if settled || tokio::time::Instant::now() >= deadline {
            // Say which messages are stuck or failed, and how they got there.
            let mut stuck = Vec::new();
            for state in ["queued", "dispatched", "accepted", "sent", "failed"] {
                let page: serde_json::Value = get_json(
                    &client,
                    &format!("{base}/api/sms?limit=5&state={state}"),
                    api_key,
                )
                .await;
                for message in page["messages"].as_array().into_iter().flatten() {
                    let id = message["id"].as_str().unwrap_or_default();
                    let detail: serde_json::Value =
                        get_json(&client, &format!("{base}/api/sms/{id}"), api_key).await;
                    stuck.push(detail);
                }
            }
            panic!("not everything was delivered: {stats}\nstuck: {stuck:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every accepted id is there, delivered.
    let mut stored = HashSet::new();
    let mut offset = 0;
    loop {
        let page: serde_json::Value = get_json(
            &client,
            &format!("{base}/api/sms?limit=500&offset={offset}&state=delivered"),
            api_key,
        )
        .await;
        let messages = page["messages"].as_array().unwrap();
        if messages.is_empty() {
            break;
        }
        stored.extend(
            messages
                .iter()
                .map(|it| it["id"].as_str().unwrap().to_string()),
        );
        offset += messages.len();
    }
    let accepted: HashSet<String> = accepted.iter().cloned().collect();
    assert_eq!(accepted.len(), stored.len());
    assert!(accepted == stored, "accepted and delivered ids differ");
    // Each message counted once in its device's sent counter.
    let devices: serde_json::Value =
        get_json(&client, &format!("{base}/api/devices"), api_key).await;
    let sent: i64 = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["sent_count"].as_i64().unwrap())
        .sum();
    assert_eq!(
        sent as usize,
        accepted.len(),
        "device sent counters disagree with the messages"
    );
}

pub(crate) fn assert_no_double_sends(stats: &SimStats, accepted: usize) {
    assert_eq!(
        SimStats::get(&stats.cross_device_commits),
        0,
        "a message was committed to two phones"
    );
    assert_eq!(
        SimStats::get(&stats.cross_device_duplicates),
        0,
        "a message was sent by two phones"
    );
    assert_eq!(
        SimStats::get(&stats.sends) as usize,
        accepted,
        "sends ≠ messages"
    );
    assert_eq!(stats.distinct_sent(), accepted);
}

struct HubProcess {
    child: Child,
}

impl HubProcess {
    fn start(port: u16, db: &str) -> HubProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_smshub"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                db,
                "--log",
                "warn",
            ])
            .args(["--offer-lease-s", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("hub starts");
        HubProcess { child }
    }

    /// SIGKILL: no shutdown, no flush.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn wait_ready(base: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/health"))
        .await
        .map(|it| it.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "hub did not come up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_and_sends_nothing_twice() {
    const MESSAGES: usize = 2000;
    const KILLS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("crash.db").display());
    let api_key = cli_api_key(&db, "crash");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");

    let mut hub = HubProcess::start(port, &db);
    wait_ready(&base).await;
    let stats = Arc::new(SimStats::default());
    let behaviour = Behaviour {
        latency: Duration::from_millis(20),
        fail_rate: 0.0,
        delivery_rate: 1.0,
    };
    let phones = simulate::start_fleet(&base, &api_key, "crash", 6, behaviour, stats.clone())
        .await
        .unwrap();

    let submitter = tokio::spawn(submit_all(base.clone(), api_key.clone(), MESSAGES));
    let seed: u64 = rand::rng().random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
        hub.kill();
        hub = HubProcess::start(port, &db);
        wait_ready(&base).await;
    }
    let accepted = submitter.await.unwrap();
    check_all_delivered(&base, &api_key, &accepted).await;
    assert_no_double_sends(&stats, accepted.len());
    eprintln!(
        "crash test (seed {seed}): {} messages accepted, {KILLS} SIGKILLs, {} phone connections, lost 0, sent twice 0, \
         re-commits of finished jobs ignored by phones: {}",
        accepted.len(),
        SimStats::get(&stats.connects),
        SimStats::get(&stats.duplicate_commits),
    );
    for phone in &phones {
        phone.control(Control::Stop).await;
    }
    drop(hub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_dropping_and_reconnecting_under_load_lose_nothing_and_send_nothing_twice() {
    const MESSAGES: usize = 2000;
    let hub = TestHub::spawn_with(|config| config.dispatch.offer_lease_ms = 5_000).await;
    let stats = Arc::new(SimStats::default());
    let behaviour = Behaviour {
        latency: Duration::from_millis(20),
        fail_rate: 0.0,
        delivery_rate: 1.0,
    };
    let phones = simulate::start_fleet(
        &hub.base,
        &hub.api_key,
        "churn",
        8,
        behaviour,
        stats.clone(),
    )
    .await
    .unwrap();
    let submitter = tokio::spawn(submit_all(hub.base.clone(), hub.api_key.clone(), MESSAGES));
    let mut drops = 0;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    while !submitter.is_finished() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        for _ in 0..2 {
            phones[rng.random_range(0..phones.len())]
                .control(Control::Drop)
                .await;
            drops += 1;
        }
    }
    let accepted = submitter.await.unwrap();
    check_all_delivered(&hub.base, &hub.api_key, &accepted).await;
    assert_no_double_sends(&stats, accepted.len());
    eprintln!(
        "churn test: {} messages, {drops} dropped connections, {} connections, lost 0, sent twice 0",
        accepted.len(),
        SimStats::get(&stats.connects)
    );
    for phone in &phones {
        phone.control(Control::Stop).await;
    }
}
