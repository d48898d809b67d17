//! Phones running capcom6's SMS Gateway for Android app join smshub on the app's own mobile
//! API (`/mobile/v1/...`): registration (a key as the private token, a user, a one-time
//! code), the event stream that makes a phone online, pulls that commit the acceptance,
//! state reports that never move a message backwards, settings, and the signed webhooks the
//! app posts back (its health, received SMS). The requests are the app's, field by field
//! (`GatewayApi.kt`); then a fleet of simulated apps beside protocol-v1 phones, some of each
//! dropped mid-job: nothing lost, nothing sent twice.

use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use smshub::auth::users::{Role, add_user};
use smshub::simulate::{self, Behaviour, Control, SimStats};

use crate::support::{PATIENCE, TestHub, eventually};

const AGENT: &str = "me.capcom.smsgateway/1.66.0";

/// A phone as the app is to the hub: its id and token, and the app's HTTP calls.
struct App {
    base: String,
    http: reqwest::Client,
    id: String,
    token: String,
}

impl App {
    /// `POST /mobile/v1/device` with `authorization`; the status and the answer.
    async fn register(hub: &TestHub, authorization: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(hub.url("/mobile/v1/device"))
            .header("Authorization", authorization)
            .header("User-Agent", AGENT)
            .json(&json!({
                "name": "Google/sdk_gphone64",
                "pushToken": null,
                "simCards": [{"slotIndex": 0, "simNumber": 1, "phoneNumber": "*******2671",
                              "carrierName": "Test Mobile", "iccid": null}],
            }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn join(hub: &TestHub) -> App {
        let (status, body) = App::register(hub, &format!("Bearer {}", hub.api_key)).await;
        assert_eq!(status, 201, "{body}");
        App {
            base: hub.base.clone(),
            http: reqwest::Client::builder()
                .user_agent(AGENT)
                .build()
                .unwrap(),
            id: body["id"].as_str().unwrap().to_string(),
            token: body["token"].as_str().unwrap().to_string(),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .patch(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A state report as `SendStateWorker` sends it.
    async fn report(&self, id: &str, state: &str) -> u16 {
        let now = chrono::Utc::now().to_rfc3339();
        let body = json!([{
            "id": id,
            "state": state,
            "recipients": [{"phoneNumber": "+14155552671", "state": state, "error": null}],
            "states": {state: now},
        }]);
        self.patch("/mobile/v1/message", body).await.0
    }

    /// `GET /mobile/v1/events`: the open stream.
    async fn events(&self) -> Events {
        let response = self
            .http
            .get(format!("{}/mobile/v1/events", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// A webhook of the app, signed with `key` at `timestamp`.
    async fn hook(&self, url: &str, key: &str, timestamp: i64, event: &str, payload: Value) -> u16 {
        let body = json!({
            "id": "Kp3LQmf2KbIqZxZ8_d1Ll",
            "webhookId": "smshub-hook",
            "event": event,
            "deviceId": self.id,
            "payload": payload,
        })
        .to_string();
        let signature = smshub::webhooks::compat::signature(key, body.as_bytes(), timestamp);
        self.http
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Timestamp", timestamp.to_string())
            .header("X-Signature", signature)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event's name; `None` when the stream ended.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(at) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..at + 2).collect();
                if let Some(name) = block.lines().find_map(|it| it.strip_prefix("event:")) {
                    return Some(name.trim().to_string());
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("an event in time")
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// The device `id` as `GET /api/devices` lists it.
async fn device(hub: &TestHub, id: &str) -> Value {
    let (_, body) = hub.get("/api/devices").await;
    let list = body["devices"].as_array().or(body.as_array()).cloned();
    list.unwrap_or_default()
        .into_iter()
        .find(|it| it["id"] == id)
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_app_joins_pulls_reports_and_pings_on_its_mobile_api() {
    let hub = TestHub::spawn().await;
    let app = App::join(&hub).await;
    let listed = device(&hub, &app.id).await;
    assert_eq!(listed["kind"], "sms-gateway-app", "{listed}");
    assert_eq!(listed["online"], false, "{listed}");
    assert_eq!(listed["app_version"], "1.66.0", "{listed}");
    assert_eq!(listed["name"], "Google/sdk_gphone64", "{listed}");

    // Its settings: the key it signs its webhooks with, the SSE-only channel, and smshub's
    // limits of the device where the app can keep them.
    let response = hub
        .http
        .put(hub.url(&format!("/api/devices/{}/limits", app.id)))
        .header("X-API-Key", &hub.api_key)
        .json(&json!({"per_hour": 30, "per_day": 200, "min_interval_ms": 2000}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    let (status, settings) = app.get("/mobile/v1/settings").await;
    assert_eq!(status, 200, "{settings}");
    let key = settings["webhooks"]["signing_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(key.len() >= 16, "{settings}");
    assert_eq!(settings["gateway"]["notification_channel"], "SSE_ONLY");
    assert_eq!(
        settings["messages"]["limit_period"], "PerHour",
        "{settings}"
    );
    assert_eq!(settings["messages"]["limit_value"], 30, "{settings}");
    assert_eq!(settings["messages"]["send_interval_min"], 2, "{settings}");
    let (_, hooks) = app.get("/mobile/v1/webhooks").await;
    let events: Vec<&str> = hooks
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["system:ping", "sms:received"], "{hooks}");
    let hook_url = hooks[0]["url"].as_str().unwrap().to_string();
    assert_eq!(hook_url, hub.url("/mobile/v1/hooks"));
    let (status, me) = app.get("/mobile/v1/device").await;
    assert_eq!(status, 200);
    assert_eq!(me["device"]["id"], app.id.as_str(), "{me}");
    assert_eq!(me["externalIp"], "127.0.0.1", "{me}");

    // Online while its stream is open; a message waits for it, announced at once.
    let mut stream = app.events().await;
    eventually("the app online", || async {
        (device(&hub, &app.id).await["online"] == true).then_some(())
    })
    .await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "hello app", "delivery_report": true}))
        .await;
    assert_eq!(stream.next().await.as_deref(), Some("MessageEnqueued"));

    // The pull commits its acceptance, and lists it again until the app has it in hand.
    let (status, pulled) = app.get("/mobile/v1/message?order=fifo").await;
    assert_eq!(status, 200, "{pulled}");
    assert_eq!(pulled.as_array().unwrap().len(), 1, "{pulled}");
    let job = &pulled[0];
    assert_eq!(job["id"], id.as_str());
    assert_eq!(job["textMessage"]["text"], "hello app");
    assert_eq!(job["phoneNumbers"], json!(["+14155552671"]));
    assert_eq!(job["state"], "Pending");
    assert_eq!(job["withDeliveryReport"], true);
    assert_eq!(job["simNumber"], 1, "{job}");
    hub.wait_state(&id, "accepted").await;
    let (_, again) = app.get("/mobile/v1/message").await;
    assert_eq!(again.as_array().unwrap().len(), 1, "{again}");
    assert_eq!(app.report(&id, "Processed").await, 204);
    let (_, after) = app.get("/mobile/v1/message").await;
    assert_eq!(after, json!([]));

    // States move forward only.
    assert_eq!(app.report(&id, "Sent").await, 204);
    hub.wait_state(&id, "sent").await;
    assert_eq!(app.report(&id, "Delivered").await, 204);
    hub.wait_state(&id, "delivered").await;
    assert_eq!(app.report(&id, "Sent").await, 204);
    assert_eq!(app.report(&id, "Failed").await, 204);
    let (_, message) = hub.get(&format!("/api/sms/{id}")).await;
    assert_eq!(message["state"], "delivered", "{message}");
    // Not its messages, or no message at all: nothing changes; a state it cannot have: 400.
    assert_eq!(app.report("NBjsgnVp72pvcdonJm7a5", "Sent").await, 204);
    assert_eq!(
        app.report(&uuid::Uuid::new_v4().to_string(), "Sent").await,
        204
    );
    let (status, body) = app
        .patch(
            "/mobile/v1/message",
            json!([{"id": id, "state": "Bogus", "recipients": []}]),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("invalid_state"))
    );

    // Its health, as the signed `system:ping`, reaches the registry.
    let now = chrono::Utc::now().timestamp();
    let health = json!({"health": {"status": "warn", "checks": {
        "battery:level": {"status": "warn", "observedValue": 23, "observedUnit": "percent"},
        "battery:charging": {"status": "pass", "observedValue": 0, "observedUnit": "flags"},
        "connection:status": {"status": "pass", "observedValue": 1},
        "connection:transport": {"status": "pass", "observedValue": 4},
    }}});
    assert_eq!(
        app.hook(&hook_url, &key, now, "system:ping", health.clone())
            .await,
        200
    );
    let listed = device(&hub, &app.id).await;
    assert_eq!(listed["battery"]["level"], 23, "{listed}");
    assert_eq!(listed["battery"]["charging"], false, "{listed}");
    assert_eq!(listed["connection"], "wifi", "{listed}");
    // Signed with another key, or long ago: refused.
    assert_eq!(
        app.hook(&hook_url, "not-the-key", now, "system:ping", health.clone())
            .await,
        401
    );
    assert_eq!(
        app.hook(&hook_url, &key, now - 3600, "system:ping", health)
            .await,
        401
    );

    // A received SMS is stored once, however often the app posts it.
    let received = json!({"messageId": "rx-1", "message": "hi hub", "phoneNumber": "+14155550000",
                          "simNumber": 1, "receivedAt": "2026-12-06T10:00:00.000+01:00"});
    for _ in 0..2 {
        assert_eq!(
            app.hook(&hook_url, &key, now, "sms:received", received.clone())
                .await,
            200
        );
    }
    let (_, inbox) = hub.get("/api/sms/inbox").await;
    let from: Vec<&Value> = inbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|it| it["message"] == "hi hub")
        .collect();
    assert_eq!(from.len(), 1, "{inbox}");
    assert_eq!(from[0]["device_id"], app.id.as_str(), "{inbox}");

    // A wrong token is refused; a removed device's stream ends.
    let stranger = App {
        token: "shd_wrong".into(),
        id: app.id.clone(),
        base: app.base.clone(),
        http: app.http.clone(),
    };
    assert_eq!(stranger.get("/mobile/v1/message").await.0, 401);
    let response = hub
        .http
        .delete(hub.url(&format!("/api/devices/{}", app.id)))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    assert_eq!(stream.next().await, None);
    assert_eq!(app.get("/mobile/v1/message").await.0, 401);
}

#[tokio::test]
async fn an_offer_the_app_does_not_pull_goes_to_another_phone_when_its_stream_ends() {
    let hub = TestHub::spawn().await;
    let app = App::join(&hub).await;
    let mut stream = app.events().await;
    eventually("the app online", || async {
        (device(&hub, &app.id).await["online"] == true).then_some(())
    })
    .await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "to someone"}))
        .await;
    assert_eq!(stream.next().await.as_deref(), Some("MessageEnqueued"));
    hub.wait_state(&id, "dispatched").await;
    // The app goes away before pulling: the offer goes back, and a protocol-v1 phone gets it.
    drop(stream);
    eventually("the app offline", || async {
        (device(&hub, &app.id).await["online"] == false).then_some(())
    })
    .await;
    let mut phone = hub.phone("v1-phone", 90, true, -70, 4).await;
    let offer = phone.expect_offer().await;
    assert_eq!(offer.id, id);
    phone.accept(&id).await;
    let message = hub.wait_state(&id, "accepted").await;
    assert_ne!(message["device_id"], app.id.as_str(), "{message}");
    // The app pulls later: not its job any more, nothing listed.
    let (_, pulled) = app.get("/mobile/v1/message").await;
    assert_eq!(pulled, json!([]));
}

#[tokio::test]
async fn registration_takes_a_key_a_user_or_a_code_and_nothing_less() {
    let hub = TestHub::spawn().await;
    add_user(
        &hub.store,
        "ops",
        "a long operator password",
        Role::Operator,
    )
    .await
    .unwrap();
    add_user(&hub.store, "looker", "a long viewer password", Role::Viewer)
        .await
        .unwrap();
    let basic = |user: &str, password: &str| {
        use base64::Engine;
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {pair}")
    };
    // Nothing, a wrong token, a key without `devices:write`, a viewer: refused.
    let (_, reader) = hub
        .post(
            "/api/keys",
            json!({"name": "reader", "scopes": ["messages:read"]}),
        )
        .await;
    let reader = reader["key"].as_str().unwrap().to_string();
    assert_eq!(App::register(&hub, "").await.0, 401);
    assert_eq!(App::register(&hub, "Bearer shk_nosuchkey").await.0, 401);
    assert_eq!(
        App::register(&hub, &format!("Bearer {reader}")).await.0,
        403
    );
    assert_eq!(
        App::register(&hub, &basic("looker", "a long viewer password"))
            .await
            .0,
        403
    );
    assert_eq!(App::register(&hub, &basic("ops", "wrong")).await.0, 401);
    // An operator's name and password: the device, and the login to show on the phone.
    let (status, body) = App::register(&hub, &basic("ops", "a long operator password")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["login"], "ops");
    assert!(body.get("password").is_none(), "{body}");
    // A one-time code for the next phone, redeemed once.
    let code: Value = reqwest::Client::new()
        .get(hub.url("/mobile/v1/user/code"))
        .header("Authorization", basic("ops", "a long operator password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = code["code"].as_str().unwrap().to_string();
    let (status, body) = App::register(&hub, &format!("Code {code}")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(App::register(&hub, &format!("Code {code}")).await.0, 410);
    assert_eq!(App::register(&hub, "Code ZZZZ-ZZZZ").await.0, 404);
    // What Gson may send for an app with nothing to say: nulls, or an empty object.
    for body in [
        r#"{"name": null, "pushToken": null, "simCards": null}"#,
        "{}",
    ] {
        let response = reqwest::Client::new()
            .post(hub.url("/mobile/v1/device"))
            .bearer_auth(&hub.api_key)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{body:?}");
    }
    let (_, devices) = hub.get("/api/devices").await;
    let apps = devices["devices"]
        .as_array()
        .or(devices.as_array())
        .unwrap()
        .iter()
        .filter(|it| it["kind"] == "sms-gateway-app")
        .count();
    assert_eq!(apps, 4, "{devices}");
}

/// Sends `total` messages, 16 at a time; their ids.
async fn submit(hub: &TestHub, total: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(total);
    for chunk in (0..total).collect::<Vec<_>>().chunks(16) {
        let sends = chunk.iter().map(|n| {
            hub.send_sms(json!({"phone_number": "+14155552671", "message": format!("mixed {n}"), "delivery_report": true}))
        });
        ids.extend(futures_util::future::join_all(sends).await);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_and_protocol_phones_share_the_load_and_lose_nothing_when_phones_drop_mid_job() {
    const TOTAL: usize = 240;
    let hub = TestHub::spawn().await;
    let stats = Arc::new(SimStats::default());
    let behaviour = Behaviour {
        latency: Duration::from_millis(150),
        ..Behaviour::default()
    };
    let phones = simulate::start_fleet(
        &hub.base,
        &hub.api_key,
        "v1",
        3,
        behaviour.clone(),
        stats.clone(),
    )
    .await
    .unwrap();
    let apps =
        simulate::app::start_apps(&hub.base, &hub.api_key, "app", 3, behaviour, stats.clone())
            .await
            .unwrap();
    eventually("six devices online", || async {
        let (_, body) = hub.get("/api/devices").await;
        let online = body["devices"]
            .as_array()
            .or(body.as_array())
            .map_or(0, |it| it.iter().filter(|d| d["online"] == true).count());
        (online == 6).then_some(())
    })
    .await;

    // Phones of each kind dropped mid-job while the messages go out.
    let (dropper_phones, dropper_apps) = (phones.clone(), apps.clone());
    let dropper = tokio::spawn(async move {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let phone = &dropper_phones[rng.random_range(0..dropper_phones.len())];
            phone.control(Control::Drop).await;
            let app = &dropper_apps[rng.random_range(0..dropper_apps.len())];
            app.control(Control::Drop).await;
        }
    });
    let ids = submit(&hub, TOTAL).await;
    dropper.await.unwrap();
    assert_eq!(ids.len(), TOTAL);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (_, stats_body) = hub.get("/api/stats").await;
        let delivered = stats_body["messages"]["delivered"].as_u64().unwrap_or(0);

        if delivered as usize == TOTAL {
            assert_eq!(stats_body["messages"]["total"].as_u64(), Some(TOTAL as u64));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every message was delivered: {stats_body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing sent twice, nothing in two phones' hands, every message sent once.
    assert_eq!(SimStats::get(&stats.cross_device_duplicates), 0);
    assert_eq!(SimStats::get(&stats.cross_device_commits), 0);
    assert_eq!(stats.distinct_sent(), TOTAL);
    assert_eq!(SimStats::get(&stats.sends), TOTAL as u64);
    // Both kinds carried a share of the load.
    let mut by_kind = [0usize; 2];
    for (kind, fleet) in [(0, &phones), (1, &apps)] {
        for phone in fleet.iter() {
            by_kind[kind] += phone.sent.lock().await.len();
        }
    }
    assert!(
        by_kind.iter().all(|it| *it >= TOTAL / 5),
        "protocol-v1 phones sent {}, apps sent {} of {TOTAL}",
        by_kind[0],
        by_kind[1]
    );
    for phone in phones.iter().chain(apps.iter()) {
        phone.control(Control::Stop).await;
    }
}
