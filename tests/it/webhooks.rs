//! Webhooks with real parts: a real HTTP receiver (`webhook_receiver.py`) that verifies every
//! delivery with the PyPI `standardwebhooks` library, and can be down, slow, answer 500s or
//! 410; the hub in process, or as a process SIGKILLed mid-delivery and restarted on the same
//! database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use smshub::auth::{self, KeySpec, Scopes};
use smshub::simulate::{self, Behaviour, SimStats};

use crate::support::{TestHub, cli_api_key, eventually, free_port, wait_until_up};

const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET_B: &str = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQyNDI=";

/// The receiver process.
struct Receiver {
    child: Child,
    port: u16,
    http: reqwest::Client,
}

impl Receiver {
    /// Starts a receiver that verifies with `secrets`; `None` (the test skips) when the
    /// `standardwebhooks` library is missing, which `SMSHUB_CI=1` does not allow.
    fn start(secrets: &[&str]) -> Option<Receiver> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/webhook_receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("0")
            .args(secrets)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the receiver's first line");
        let Ok(port) = line.trim().parse::<u16>() else {
            let _ = child.wait();
            assert!(
                std::env::var("SMSHUB_CI").as_deref() != Ok("1"),
                "SMSHUB_CI=1 but the webhook receiver cannot run ({line:?}): \
                 pip install standardwebhooks"
            );
            eprintln!(
                "skipped: the receiver cannot run ({}): pip install standardwebhooks",
                line.trim()
            );
            return None;
        };
        Some(Receiver {
            child,
            port,
            http: reqwest::Client::new(),
        })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    async fn control(&self, state: Value) {
        let response = self
            .http
            .post(format!("http://127.0.0.1:{}/control", self.port))
            .json(&state)
            .send()
            .await
            .expect("control");
        assert_eq!(response.status(), 200);
    }

    /// Every delivery received, in arrival order.
    async fn log(&self) -> Vec<Value> {
        let body: Value = self
            .http
            .get(format!("http://127.0.0.1:{}/log", self.port))
            .send()
            .await
            .expect("log")
            .json()
            .await
            .expect("JSON");
        body["records"].as_array().cloned().unwrap_or_default()
    }

    /// The deliveries answered 200.
    async fn accepted(&self) -> Vec<Value> {
        self.log()
            .await
            .into_iter()
            .filter(|it| it["status"] == 200)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hub whose webhooks may reach loopback, retrying fast.
async fn hub() -> TestHub {
    TestHub::spawn_with(|config| {
        let hooks = &mut config.events.webhooks;
        hooks.allow_loopback = true;
        hooks.backoff = Duration::from_millis(100);
        hooks.backoff_max = Duration::from_millis(400);
    })
    .await
}

async fn key(hub: &TestHub, scopes: &str) -> String {
    let mut spec = KeySpec::admin("webhooks");
    spec.scopes = Scopes::parse(scopes).unwrap();
    auth::create_key(&hub.store, &spec, None)
        .await
        .unwrap()
        .secret
}

async fn call(
    hub: &TestHub,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = hub
        .http
        .request(method, hub.url(path))
        .header("X-API-Key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create(hub: &TestHub, body: Value) -> Value {
    let (status, created) = hub.post("/api/webhooks", body).await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn deliveries(hub: &TestHub, id: &str) -> Vec<Value> {
    let (status, body) = hub.get(&format!("/api/webhooks/{id}/deliveries")).await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().cloned().unwrap()
}

fn sms(n: usize) -> Value {
    json!({"phone_number": "+14155552671", "message": format!("hook {n}")})
}

#[tokio::test]
async fn deliveries_survive_a_receiver_down_failing_and_slow_and_replay_with_the_same_ids() {
    let Some(receiver) = Receiver::start(&[SECRET_A]) else {
        return;
    };
    receiver.control(json!({"mode": "down"})).await;
    let hub = hub().await;
    let hook = create(
        &hub,
        json!({"url": receiver.url(), "types": "message.*", "secret": SECRET_A}),
    )
    .await;
    let id = hook["id"].as_str().unwrap().to_string();
    assert!(hook.get("secret").is_some());
    for n in 0..3 {
        hub.send_sms(sms(n)).await;
    }
    // Down: attempts fail with no answer.
    eventually("attempts against a receiver that is down", || async {
        let rows = deliveries(&hub, &id).await;
        (rows.len() == 3 && rows.iter().all(|it| it["attempts"].as_u64() >= Some(1))).then_some(())
    })
    .await;
    let rows = deliveries(&hub, &id).await;
    assert!(
        rows.iter()
            .all(|it| it["status"] == "pending" && it["response_code"].is_null()),
        "{rows:?}"
    );
    // Failing: 500s are retried.
    receiver.control(json!({"mode": "fail"})).await;
    eventually("500s recorded", || async {
        let rows = deliveries(&hub, &id).await;
        rows.iter()
            .all(|it| it["response_code"] == 500)
            .then_some(())
    })
    .await;
    // Slow but up: everything arrives.
    receiver
        .control(json!({"mode": "ok", "delay_ms": [50, 200]}))
        .await;
    let rows = eventually("every delivery acknowledged", || async {
        let rows = deliveries(&hub, &id).await;
        rows.iter()
            .all(|it| it["status"] == "delivered")
            .then_some(rows)
    })
    .await;
    for row in &rows {
        assert_eq!(row["response_code"], 200);
        assert!(row["attempts"].as_u64().unwrap() >= 3, "{row}");
        assert!(row["latency_ms"].as_i64().unwrap() >= 50, "{row}");
        assert!(row["next_attempt_at"].is_null());
    }
    let log = receiver.log().await;
    assert!(
        log.iter().all(|it| it["verified"] == json!([true])),
        "{log:?}"
    );
    let accepted = receiver.accepted().await;
    assert_eq!(accepted.len(), 3);
    let ids: HashSet<_> = accepted.iter().map(|it| it["webhook_id"].clone()).collect();
    assert_eq!(ids.len(), 3);
    assert!(accepted.iter().all(|it| it["type"] == "message.queued"));

    // One delivery again, then the whole range: the same webhook-ids.
    let first = rows[0]["id"].as_str().unwrap();
    let (status, again) = hub
        .post(
            &format!("/api/webhooks/{id}/deliveries/{first}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{again}");
    eventually("the retried delivery", || async {
        (receiver.accepted().await.len() == 4).then_some(())
    })
    .await;
    let (status, replayed) = hub
        .post(&format!("/api/webhooks/{id}/replay?after=0"), json!({}))
        .await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed["replayed"], 3);
    let accepted = eventually("the replay", || async {
        let accepted = receiver.accepted().await;
        (accepted.len() == 7).then_some(accepted)
    })
    .await;
    let again: HashSet<_> = accepted.iter().map(|it| it["webhook_id"].clone()).collect();
    assert_eq!(again, ids, "a replay keeps the webhook-ids");
    let metrics = hub
        .http
        .get(hub.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("smshub_webhook_deliveries_total{outcome=\"retrying\"}"),
        "{metrics}"
    );
}

/// Finished deliveries go with their events once those leave the log (retention); pending
/// ones stay, however old.
#[tokio::test]
async fn finished_deliveries_are_pruned_with_their_events_and_pending_ones_kept() {
    let Some(receiver) = Receiver::start(&[SECRET_A]) else {
        return;
    };
    let hub = TestHub::spawn_with(|config| {
        config.events.retention = Duration::from_secs(1);
        let hooks = &mut config.events.webhooks;
        hooks.allow_loopback = true;
        hooks.backoff = Duration::from_secs(60);
    })
    .await;
    let up = create(
        &hub,
        json!({"url": receiver.url(), "types": "message.queued", "secret": SECRET_A}),
    )
    .await;
    let up = up["id"].as_str().unwrap().to_string();
    // A port nothing listens on: every attempt fails, the delivery stays pending.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = create(
        &hub,
        json!({"url": format!("http://127.0.0.1:{closed}/hook"), "types": "message.queued"}),
    )
    .await;
    let down = down["id"].as_str().unwrap().to_string();
    hub.send_sms(sms(0)).await;
    eventually("one delivery done, one attempted and pending", || async {
        let done = deliveries(&hub, &up).await;
        let waiting = deliveries(&hub, &down).await;
        (done.len() == 1
            && done[0]["status"] == "delivered"
            && waiting.len() == 1
            && waiting[0]["attempts"].as_u64() >= Some(1))
        .then_some(())
    })
    .await;
    // The writer prunes at start and every minute: past the retention, a restart prunes.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let hub = hub.restart().await;
    eventually("the finished delivery pruned", || async {
        deliveries(&hub, &up).await.is_empty().then_some(())
    })
    .await;
    let waiting = deliveries(&hub, &down).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["status"], "pending", "{waiting:?}");
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_during_the_overlap() {
    let Some(receiver) = Receiver::start(&[SECRET_A, SECRET_B]) else {
        return;
    };
    let hub = hub().await;
    let hook = create(
        &hub,
        json!({"url": receiver.url(), "secret": SECRET_A, "types": ["message.queued"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    hub.send_sms(sms(0)).await;
    eventually("a delivery under the first secret", || async {
        (receiver.accepted().await.len() == 1).then_some(())
    })
    .await;
    let (status, rotated) = hub
        .post(
            &format!("/api/webhooks/{id}/rotate-secret"),
            json!({"secret": SECRET_B}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["secret"], SECRET_B);
    assert!(rotated["previous_secret_expires_at"].is_string());
    hub.send_sms(sms(1)).await;
    let accepted = eventually("a delivery after the rotation", || async {
        let accepted = receiver.accepted().await;
        (accepted.len() == 2).then_some(accepted)
    })
    .await;
    assert_eq!(accepted[0]["verified"], json!([true, false]));
    assert_eq!(accepted[0]["signatures"], 1);
    assert_eq!(
        accepted[1]["verified"],
        json!([true, true]),
        "both secrets verify"
    );
    assert_eq!(accepted[1]["signatures"], 2);
    // A generated secret, shown once.
    let (status, generated) = hub
        .post(&format!("/api/webhooks/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert!(generated["secret"].as_str().unwrap().starts_with("whsec_"));
    let (_, shown) = hub.get(&format!("/api/webhooks/{id}")).await;
    assert!(shown.get("secret").is_none(), "{shown}");
}

#[tokio::test]
async fn a_410_disables_the_endpoint_with_an_event_and_enable_resumes_it() {
    let Some(receiver) = Receiver::start(&[SECRET_A]) else {
        return;
    };
    receiver.control(json!({"mode": "gone"})).await;
    let hub = hub().await;
    let hook = create(
        &hub,
        json!({"url": receiver.url(), "secret": SECRET_A, "types": "message.*"}),
    )
    .await;
    let id = hook["id"].as_str().unwrap().to_string();
    hub.send_sms(sms(0)).await;
    let shown = eventually("the endpoint disabled", || async {
        let (_, shown) = hub.get(&format!("/api/webhooks/{id}")).await;
        (shown["enabled"] == false).then_some(shown)
    })
    .await;
    assert!(
        shown["disabled_reason"].as_str().unwrap().contains("410"),
        "{shown}"
    );
    let events = hub.store.events().after(0, 1000, None, None).await.unwrap();
    let disabled: Vec<_> = events
        .iter()
        .filter(|it| it.kind == "webhook.disabled")
        .collect();
    assert_eq!(disabled.len(), 1, "{events:?}");
    assert_eq!(
        disabled[0].payload.as_ref().unwrap()["webhook_id"],
        json!(id)
    );
    // Events while disabled wait; enabling sends them.
    hub.send_sms(sms(1)).await;
    receiver.control(json!({"mode": "ok"})).await;
    let (status, enabled) = hub
        .post(&format!("/api/webhooks/{id}/enable"), json!({}))
        .await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["enabled"], true);
    eventually("both messages delivered after enabling", || async {
        let rows = deliveries(&hub, &id).await;
        (rows.len() == 2 && rows.iter().all(|it| it["status"] == "delivered")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn loopback_and_link_local_targets_are_refused_without_the_flag() {
    let hub = TestHub::spawn().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "http://0.0.0.0:9/hook",
        "http://169.254.169.254/latest/meta-data",
        hub.url("/api/webhooks").as_str(),
    ] {
        let (status, body) = hub.post("/api/webhooks", json!({"url": url})).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"]["code"], "url_not_allowed", "{url}");
    }
    let (status, body) = hub.get("/api/webhooks").await;
    assert_eq!(
        (status, body["webhooks"].as_array().unwrap().len()),
        (200, 0)
    );
    // A LAN receiver is fine.
    create(&hub, json!({"url": "http://192.168.1.20:8080/hook"})).await;
}

#[tokio::test]
async fn https_can_be_required() {
    let hub = TestHub::spawn_with(|config| config.events.webhooks.require_https = true).await;
    let (status, body) = hub
        .post("/api/webhooks", json!({"url": "http://192.168.1.20/hook"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("https_required")),
        "{body}"
    );
    create(&hub, json!({"url": "https://192.168.1.20/hook"})).await;
}

#[tokio::test]
async fn another_key_can_neither_see_nor_touch_a_webhook() {
    let hub = TestHub::spawn().await;
    let mine = key(&hub, "webhooks:write messages:read").await;
    let theirs = key(&hub, "webhooks:write messages:read").await;
    let unscoped = key(&hub, "messages:read").await;
    let (status, hook) = call(
        &hub,
        &mine,
        "POST",
        "/api/webhooks",
        Some(json!({"url": "http://10.1.2.3/hook"})),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let id = hook["id"].as_str().unwrap();
    let (_, list) = call(&hub, &theirs, "GET", "/api/webhooks", None).await;
    assert_eq!(list["webhooks"], json!([]));
    for (method, path) in [
        ("GET", format!("/api/webhooks/{id}")),
        ("DELETE", format!("/api/webhooks/{id}")),
        ("GET", format!("/api/webhooks/{id}/deliveries")),
        ("POST", format!("/api/webhooks/{id}/rotate-secret")),
        ("POST", format!("/api/webhooks/{id}/enable")),
        ("POST", format!("/api/webhooks/{id}/replay?after=0")),
    ] {
        let (status, body) = call(&hub, &theirs, method, &path, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{method} {path}"
        );
    }
    let (status, body) = call(&hub, &unscoped, "GET", "/api/webhooks", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (_, list) = call(&hub, &mine, "GET", "/api/webhooks", None).await;
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    // The admin sees every tenant's.
    let (_, list) = hub.get("/api/webhooks").await;
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    let (status, _) = call(&hub, &mine, "DELETE", &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&hub, &mine, "GET", &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_input_is_refused_with_stable_codes_and_changes_nothing() {
    let hub = TestHub::spawn().await;
    let raw = |body: &'static str| {
        let hub = &hub;
        async move {
            let response = hub
                .http
                .post(hub.url("/api/webhooks"))
                .header("X-API-Key", &hub.api_key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["error"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    };
    for (body, code) in [
        ("{", "invalid_json"),
        ("[]", "invalid_request"),
        (
            r#"{"url": "http://10.0.0.1/", "nope": 1}"#,
            "invalid_request",
        ),
        (r#"{"url": "nope"}"#, "invalid_url"),
        (r#"{"url": "ftp://10.0.0.1/"}"#, "invalid_url"),
        (r#"{"url": "http://user:pw@10.0.0.1/"}"#, "invalid_url"),
        (
            r#"{"url": "http://10.0.0.1/", "types": "message.nope"}"#,
            "invalid_types",
        ),
        (
            r#"{"url": "http://10.0.0.1/", "types": ["nope.*"]}"#,
            "invalid_types",
        ),
        (
            r#"{"url": "http://10.0.0.1/", "secret": "hunter2"}"#,
            "invalid_secret",
        ),
        (
            r#"{"url": "http://10.0.0.1/", "secret": "whsec_AAAA"}"#,
            "invalid_secret",
        ),
        (
            r#"{"url": "http://10.0.0.1/", "device_id": ""}"#,
            "invalid_device_id",
        ),
    ] {
        assert_eq!(raw(body).await, (400, code.to_string()), "{body}");
    }
    let (_, list) = hub.get("/api/webhooks").await;
    assert_eq!(list["webhooks"], json!([]), "nothing was created");
    let hook = create(&hub, json!({"url": "http://10.0.0.1/"})).await;
    let id = hook["id"].as_str().unwrap();
    for (method, path, status, code) in [
        ("GET", "/api/webhooks/nope".to_string(), 404, "not_found"),
        (
            "GET",
            format!("/api/webhooks/{}", uuid::Uuid::now_v7()),
            404,
            "not_found",
        ),
        (
            "POST",
            format!("/api/webhooks/{id}/replay"),
            400,
            "invalid_after",
        ),
        (
            "POST",
            format!("/api/webhooks/{id}/replay?after=x"),
            400,
            "invalid_after",
        ),
        (
            "GET",
            format!("/api/webhooks/{id}/deliveries?status=bogus"),
            400,
            "invalid_status",
        ),
        (
            "GET",
            format!("/api/webhooks/{id}/deliveries?limit=0"),
            400,
            "invalid_limit",
        ),
        (
            "POST",
            format!("/api/webhooks/{id}/deliveries/nope/retry"),
            404,
            "not_found",
        ),
        (
            "POST",
            format!(
                "/api/webhooks/{id}/deliveries/{}/retry",
                uuid::Uuid::now_v7()
            ),
            404,
            "not_found",
        ),
    ] {
        let (got, body) = call(&hub, &hub.api_key, method, &path, None).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {body}"
        );
    }
    let (status, body) = hub
        .post(
            &format!("/api/webhooks/{id}/rotate-secret"),
            json!({"secret": "bad"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_secret"))
    );
}

/// The hub as a process, with fast webhook retries to loopback.
fn start_hub(port: u16, db: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_smshub"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            db,
        ])
        .args(["--log", "warn", "--offer-lease-s", "5"])
        .args(["--webhook-allow-loopback", "--webhook-backoff", "100ms"])
        .args(["--webhook-backoff-max", "500ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hub starts")
}

/// The message events of the log, read from the database file: (id, type, at).
fn logged_message_events(path: &std::path::Path) -> Vec<(i64, String, i64)> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database");
    let mut statement = conn
        .prepare("SELECT id, type, at FROM events WHERE type LIKE 'message.%' ORDER BY id")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_delivery_loses_no_event_and_keeps_each_message_in_order() {
    const MESSAGES: usize = 150;
    const KILLS: usize = 3;
    let Some(receiver) = Receiver::start(&[SECRET_A]) else {
        return;
    };
    // Slow, and failing now and then: kills land mid-request.
    receiver
        .control(json!({"mode": "ok", "delay_ms": [5, 60], "fail_rate": 0.1}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hooks.db");
    let db = format!("sqlite://{}", file.display());
    let api_key = cli_api_key(&db, "hooks");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut hub = start_hub(port, &db);
    wait_until_up(&format!("{base}/health"), &mut hub, "hub").await;
    let created: Value = http
        .post(format!("{base}/api/webhooks"))
        .header("X-API-Key", &api_key)
        .json(&json!({"url": receiver.url(), "types": "message.*", "secret": SECRET_A}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["id"].is_string(), "{created}");
    let stats = Arc::new(SimStats::default());
    let behaviour = Behaviour {
        latency: Duration::from_millis(10),
        fail_rate: 0.0,
        delivery_rate: 1.0,
    };
    let _phones = simulate::start_fleet(&base, &api_key, "hooks", 3, behaviour, stats)
        .await
        .unwrap();
    let submitter = {
        let (http, base, api_key) = (http.clone(), base.clone(), api_key.clone());
        tokio::spawn(async move {
            for n in 0..MESSAGES {
                loop {
                    let sent = http
                        .post(format!("{base}/api/send-sms"))
                        .header("X-API-Key", &api_key)
                        .header("Idempotency-Key", format!("hook-{n}"))
                        .json(&json!({"phone_number": "+14155552671", "message": format!("hook {n}"), "delivery_report": true}))
                        .send()
                        .await;
                    if sent.is_ok_and(|it| it.status().is_success()) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        })
    };
    let seed: u64 = rand::rng().random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(400..1500))).await;
        hub.kill().expect("SIGKILL");
        hub.wait().unwrap();
        hub = start_hub(port, &db);
        wait_until_up(&format!("{base}/health"), &mut hub, "hub after SIGKILL").await;
    }
    submitter.await.unwrap();
    // Every message delivered by the phones, and every message event acknowledged.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let (events, accepted) = loop {
        let events = logged_message_events(&file);
        let delivered = events
            .iter()
            .filter(|it| it.1 == "message.delivered")
            .count();
        let accepted = receiver.accepted().await;
        let got: HashSet<i64> = accepted
            .iter()
            .filter_map(|it| it["event_id"].as_i64())
            .collect();
        if delivered == MESSAGES && events.iter().all(|it| got.contains(&it.0)) {
            break (events, accepted);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "seed {seed}: {delivered}/{MESSAGES} delivered, {} of {} events acknowledged",
            events.iter().filter(|it| got.contains(&it.0)).count(),
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let log = receiver.log().await;
    // Verified by the library, every one.
    assert!(
        log.iter().all(|it| it["verified"] == json!([true])),
        "an unverified delivery"
    );
    // Duplicates only with the same webhook-id (and the same body).
    let mut by_id: HashMap<String, (i64, String)> = HashMap::new();
    for record in &log {
        let id = record["webhook_id"].as_str().unwrap().to_string();
        let seen = (
            record["event_id"].as_i64().unwrap(),
            record["body"].as_str().unwrap().to_string(),
        );
        let first = by_id.entry(id.clone()).or_insert_with(|| seen.clone());
        assert_eq!(*first, seen, "webhook-id {id} carried two events");
    }
    let mut first_ack: HashMap<i64, usize> = HashMap::new();
    for (n, record) in accepted.iter().enumerate() {
        first_ack
            .entry(record["event_id"].as_i64().unwrap())
            .or_insert(n);
    }
    let duplicates = accepted.len() - first_ack.len();
    // Order per message: each event first acknowledged after the earlier ones of its message.
    let mut per_message: BTreeMap<String, Vec<(usize, i64)>> = BTreeMap::new();
    for (event, n) in &first_ack {
        let record = &accepted[*n];
        let message = record["message_id"].as_str().unwrap().to_string();
        per_message.entry(message).or_default().push((*n, *event));
    }
    for (message, mut acks) in per_message {
        acks.sort();
        let events: Vec<i64> = acks.iter().map(|it| it.1).collect();
        let mut sorted = events.clone();
        sorted.sort();
        assert_eq!(
            events, sorted,
            "message {message}: events acknowledged out of order"
        );
    }
    let at: HashMap<i64, i64> = events.iter().map(|it| (it.0, it.2)).collect();
    let max_delay = first_ack
        .iter()
        .map(|(event, n)| accepted[*n]["received_ms"].as_i64().unwrap() - at[event])
        .max()
        .unwrap_or(0);
    eprintln!(
        "webhook crash test (seed {seed}): {MESSAGES} messages, {KILLS} SIGKILLs, {} events, \
         {} deliveries received ({} acknowledged), lost 0, duplicates {duplicates} (all with the \
         same webhook-id), max delay {max_delay} ms",
        events.len(),
        log.len(),
        accepted.len(),
    );
    let _ = hub.kill();
    let _ = hub.wait();
}
