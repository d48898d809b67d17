//! The seed paths (`src/api/seeds/`): the paths the clients of the systems smshub replaces
//! call, against a real hub, each answering its seed's shape. The multi-modem manager's
//! paths run on an emulated modem on a pty (`modem_emulator.rs`) attached through the API;
//! the Flask and Elixir gateways' and the FastAPI gateway's number check need no device.

use serde_json::{Value, json};
use smshub::api::send::PhoneValidation;

use crate::modem_api::api_modem_config;
use crate::modem_emulator::{Emulator, profile};
use crate::support::TestHub;

async fn delete(hub: &TestHub, path: &str) -> (u16, Value) {
    let response = hub
        .http
        .delete(hub.url(path))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .expect("DELETE");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn multi_modem_manager_paths_act_on_the_first_connected_modem() {
    let hub = TestHub::spawn_with(|config| config.modems = api_modem_config()).await;

    // No modem yet: the legacy paths say so, health says the modem is not connected.
    for path in ["/api/balance", "/api/status", "/api/sim-info"] {
        let (status, body) = hub.get(path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("no_modem")),
            "{path}: {body}"
        );
    }
    let (status, body) = hub.post("/api/ussd", json!({ "code": "*100#" })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("no_modem")),
        "{body}"
    );
    let (status, health) = hub.get("/api/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(health["modem"]["connected"], false, "{health}");
    assert_eq!(health["database"], "connected", "{health}");
    assert_eq!(health["modems"]["total"], 0, "{health}");

    let mut model = profile("huawei_e1752");
    model.ussd_answers.insert(
        "*100*12345678#".into(),
        "Recharge de 500 DA effectuee".into(),
    );
    model
        .ussd_answers
        .insert("*999#".into(), "Internet: 2.5 Go restants".into());
    let emulator = Emulator::start(model);
    let (status, connected) = hub
        .post("/api/modems/connect", json!({ "port": emulator.path }))
        .await;
    assert_eq!(
        (status, connected["state"].as_str()),
        (200, Some("ready")),
        "{connected}"
    );
    let device = connected["device_id"].as_str().unwrap().to_string();

    let (status, body) = hub.get("/api/status").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["port"], emulator.path.as_str(), "{body}");
    assert_eq!(body["state"], "ready", "{body}");

    let (status, sim) = hub.get("/api/sim-info").await;
    assert_eq!(status, 200, "{sim}");
    assert_eq!(sim["imsi"], "603021234567890", "{sim}");
    assert_eq!(sim["operator"], "Djezzy", "{sim}");

    let (status, balance) = hub.get("/api/balance").await;
    assert_eq!(status, 200, "{balance}");
    assert_eq!(
        (balance["code"].as_str(), balance["amount"].as_f64()),
        (Some("*100#"), Some(1250.5)),
        "{balance}"
    );

    let (status, ussd) = hub.post("/api/ussd", json!({ "code": "*710#" })).await;
    assert_eq!(status, 200, "{ussd}");
    assert_eq!(ussd["text"], "Internet: 2.5 Go restants", "{ussd}");

    // Data balance and recharge by the operator profile (Djezzy: `*999#`, `*100*{code}#`).
    let (status, data) = hub.get(&format!("/api/modems/{device}/data-balance")).await;
    assert_eq!(status, 200, "{data}");
    assert_eq!(
        (data["code"].as_str(), data["amount"].as_f64()),
        (Some("*999#"), Some(2.5)),
        "{data}"
    );
    let path = format!("/api/modems/{device}/recharge");
    let (status, recharge) = hub.post(&path, json!({ "code": "12345678" })).await;
    assert_eq!(status, 200, "{recharge}");
    assert_eq!(recharge["code"], "*100*12345678#", "{recharge}");
    assert_eq!(
        recharge["text"], "Recharge de 500 DA effectuee",
        "{recharge}"
    );
    for bad in [
        json!({}),
        json!({ "code": "12*34#" }),
        json!({ "code": "" }),
    ] {
        let (status, body) = hub.post(&path, bad.clone()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_voucher")),
            "{bad}: {body}"
        );
    }
    let (status, body) = hub
        .post("/api/modems/nope/recharge", json!({ "code": "1" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("modem_not_found")),
        "{body}"
    );

    // The legacy send goes through that modem, stored and tracked.
    let (status, sent) = hub
        .post(
            "/api/sms/send",
            json!({ "to": "+213770123456", "text": "Salam" }),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let id = sent["id"].as_str().unwrap().to_string();
    let message = hub.wait_state(&id, "sent").await;
    assert_eq!(message["device_id"], device.as_str(), "{message}");

    let (status, health) = hub.get("/api/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["modem"]["connected"], true, "{health}");
    assert!(health["modem"]["network"].is_string(), "{health}");
    assert!(health["modem"].get("signal_strength").is_some(), "{health}");
    assert!(
        health["queue"]["pending"].is_u64() && health["queue"]["executing"].is_u64(),
        "{health}"
    );
    assert_eq!(
        (
            health["modems"]["total"].as_u64(),
            health["modems"]["connected"].as_u64()
        ),
        (Some(1), Some(1)),
        "{health}"
    );

    let (status, performance) = hub.get("/api/performance").await;
    assert_eq!(status, 200, "{performance}");
    assert_eq!(performance["messages"]["sent"], 1, "{performance}");
    assert_eq!(performance["modems"]["sent"], 1, "{performance}");
    assert!(performance["uptime_s"].is_u64(), "{performance}");

    // The Flask gateway's statistics count the message on that modem's SIM.
    let (status, stats) = hub.get("/api/statistics").await;
    assert_eq!(status, 200, "{stats}");
    let sims = stats["sim_cards"].as_array().expect("sim_cards");
    let sim = sims
        .iter()
        .find(|it| it["device_id"] == device.as_str())
        .unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(
        (sim["outgoing"].as_u64(), sim["sent"].as_u64()),
        (Some(1), Some(1)),
        "{stats}"
    );
}

#[tokio::test]
async fn a_profile_without_a_code_is_a_stable_422() {
    let hub = TestHub::spawn_with(|config| config.modems = api_modem_config()).await;
    // A Dutch Vodafone SIM: Debian's list has no data-balance or top-up code for it.
    let mut model = profile("huawei_e1752");
    model
        .replies
        .insert("AT+CIMI".into(), vec!["204041234567890".into()]);
    let emulator = Emulator::start(model);
    let (status, connected) = hub
        .post("/api/modems/connect", json!({ "port": emulator.path }))
        .await;
    assert_eq!(
        (status, connected["state"].as_str()),
        (200, Some("ready")),
        "{connected}"
    );
    let device = connected["device_id"].as_str().unwrap().to_string();
    let (status, body) = hub.get(&format!("/api/modems/{device}/data-balance")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("no_data_balance_code")),
        "{body}"
    );
    let (status, body) = hub
        .post(
            &format!("/api/modems/{device}/recharge"),
            json!({ "code": "1234" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("no_recharge_code")),
        "{body}"
    );
}

#[tokio::test]
async fn colliding_legacy_paths_keep_their_native_meaning() {
    let hub = TestHub::spawn().await;
    let id = hub
        .send_sms(json!({ "phone_number": "+14155552671", "message": "hi" }))
        .await;
    // `GET /api/sms` is smshub's message list, not a modem's stored messages.
    let (status, list) = hub.get("/api/sms").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["messages"][0]["id"], id.as_str(), "{list}");
    // `DELETE /api/sms/{id}` cancels the message.
    let (status, body) = delete(&hub, &format!("/api/sms/{id}")).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("cancelled")),
        "{body}"
    );
}

#[tokio::test]
async fn flask_gateway_send_statistics_and_logs() {
    smshub::logging::keep_recent_only();
    let hub = TestHub::spawn().await;
    let (status, body) = hub
        .post(
            "/api/sms",
            json!({ "recipient": "+14155552671", "message": "Hello from Flask" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["message_id"].as_str().expect("message_id").to_string();
    assert!(body.get("sender_sim").is_some_and(Value::is_null), "{body}");
    let (status, message) = hub.get(&format!("/api/sms/{id}")).await;
    assert_eq!(
        (status, message["message"].as_str()),
        (200, Some("Hello from Flask")),
        "{message}"
    );
    // Flask's field names, checked like the native send.
    for (request, code) in [
        (
            json!({ "recipient": "nope", "message": "x" }),
            "invalid_phone_number",
        ),
        (
            json!({ "recipient": "+14155552671", "message": " " }),
            "empty_message",
        ),
        (json!({ "message": "x" }), "missing_recipient"),
    ] {
        let (status, body) = hub.post("/api/sms", request.clone()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{request}: {body}"
        );
    }
    assert_eq!(hub.message_count().await, 1);

    // `sim_card_id` names a card of `/api/sim-cards`; the Flask gateway numbered its cards,
    // and a number names a card by its label.
    let (status, body) = hub
        .post(
            "/api/sms",
            json!({ "recipient": "+14155552671", "message": "x", "sim_card_id": 7 }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_sim_card")),
        "{body}"
    );
    assert_eq!(hub.message_count().await, 1);
    let (device, _token) = hub.add_device("flask-phone").await;
    let (status, card) = hub
        .post(
            "/api/sim-cards",
            json!({ "device_id": device, "slot": 1, "label": "7", "number": "+14155550007" }),
        )
        .await;
    assert_eq!(status, 201, "{card}");
    assert_eq!(
        (card["number"].as_str(), card["status"].as_str()),
        (Some("+14155550007"), Some("active")),
        "{card}"
    );
    let (status, body) = hub
        .post(
            "/api/sms",
            json!({ "recipient": "+14155552671", "message": "via 7", "sim_card_id": 7 }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sender_sim"], 7, "{body}");
    let (_, pinned) = hub
        .get(&format!(
            "/api/sms/{}",
            body["message_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (
            pinned["requested_device_id"].as_str(),
            pinned["requested_sim_slot"].as_u64()
        ),
        (Some(device.as_str()), Some(1)),
        "{pinned}"
    );
    let card_path = format!("/api/sim-cards/{}", card["id"].as_str().unwrap());
    let (status, _) = hub.get(&card_path).await;
    assert_eq!(status, 200);
    let deleted = hub
        .http
        .delete(hub.url(&card_path))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let (status, _) = hub.get(&card_path).await;
    assert_eq!(status, 404);

    let (status, stats) = hub.get("/api/statistics").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["messages"]["total"], 2, "{stats}");
    assert_eq!(stats["messages"]["outgoing"], 2, "{stats}");
    assert_eq!(stats["messages"]["incoming"], 0, "{stats}");
    assert_eq!(stats["messages"]["by_state"]["queued"], 2, "{stats}");
    assert!(
        stats["database"]["size_bytes"]
            .as_u64()
            .is_some_and(|it| it > 0),
        "{stats}"
    );
    assert!(
        stats["memory"]["process_rss_bytes"]
            .as_u64()
            .is_some_and(|it| it > 0),
        "{stats}"
    );
    let days = stats["daily"].as_array().expect("daily");
    assert_eq!(days.len(), 1, "{stats}");
    assert_eq!(
        (days[0]["outgoing"].as_u64(), days[0]["total"].as_u64()),
        (Some(2), Some(2)),
        "{stats}"
    );
    assert_eq!(days[0]["date"].as_str().map(str::len), Some(10), "{stats}");

    // Logs: a log event and an audit entry (a key was created), filterable.
    tracing::warn!(marker = "seed-paths", "a warning for the logs endpoint");
    let (status, created) = hub.post("/api/keys", json!({ "name": "audited" })).await;
    assert_eq!(status, 201, "{created}");
    let (status, logs) = hub.get("/api/logs?limit=1000").await;
    assert_eq!(status, 200, "{logs}");
    let entries = logs["logs"].as_array().expect("logs");
    assert!(
        entries.iter().any(|it| it["source"] == "log"
            && it["level"] == "warn"
            && it["fields"]["marker"] == "seed-paths"),
        "{logs}"
    );
    assert!(
        entries
            .iter()
            .any(|it| it["source"] == "audit" && it["action"] == "key.create"),
        "{logs}"
    );
    let (status, errors) = hub.get("/api/logs?level=error&source=log").await;
    assert_eq!(status, 200, "{errors}");
    assert!(
        errors["logs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|it| it["level"] == "error"),
        "{errors}"
    );
    let (status, audit) = hub.get("/api/logs?source=audit").await;
    assert_eq!(status, 200, "{audit}");
    assert!(
        audit["logs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|it| it["source"] == "audit"),
        "{audit}"
    );
    let (status, later) = hub.get("/api/logs?since=2999-01-01T00:00:00Z").await;
    assert_eq!(
        (status, later["logs"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{later}"
    );
    for bad in ["level=loud", "since=yesterday", "source=syslog", "nope=1"] {
        let (status, body) = hub.get(&format!("/api/logs?{bad}")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_query")),
            "{bad}: {body}"
        );
    }
    // The logs need the admin scope.
    let key = created["key"].as_str().map(String::from);
    let (status, limited) = hub
        .post(
            "/api/keys",
            json!({ "name": "reader", "scopes": ["messages:read"] }),
        )
        .await;
    assert_eq!(status, 201, "{limited} {key:?}");
    let response = hub
        .http
        .get(hub.url("/api/logs"))
        .header("X-API-Key", limited["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
}

#[tokio::test]
async fn elixir_gateway_messages() {
    let hub = TestHub::spawn().await;
    let (status, created) = hub
        .post(
            "/api/v1/messages",
            json!({ "phone": "+33612345678", "content": "Votre code: 123456" }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let mut keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "content",
            "direction",
            "id",
            "inserted_at",
            "phone",
            "status"
        ],
        "{created}"
    );
    assert_eq!(created["direction"], "outgoing");
    assert_eq!(created["phone"], "+33612345678");
    assert_eq!(created["content"], "Votre code: 123456");
    assert_eq!(created["status"], "queued");
    assert!(smshub::domain::parse_rfc3339(created["inserted_at"].as_str().unwrap()).is_some());

    let (status, shown) = hub.get(&format!("/api/v1/messages/{id}")).await;
    assert_eq!((status, &shown), (200, &created));
    let (status, list) = hub.get("/api/v1/messages").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["data"][0], created, "{list}");

    let (status, body) = hub
        .get("/api/v1/messages/0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, body) = hub
        .post("/api/v1/messages", json!({ "phone": "+33612345678" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("empty_message")),
        "{body}"
    );
    assert_eq!(hub.message_count().await, 1);
}

#[tokio::test]
async fn the_fastapi_example_number_needs_lenient_validation() {
    let hub = TestHub::spawn().await;
    let example =
        json!({ "phone_number": "+1234567890", "message": "Hello from the SMS Gateway!" });
    let (status, body) = hub.post("/api/send-sms", example.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_phone_number")),
        "{body}"
    );

    let mut skipped = example.clone();
    skipped["skip_phone_validation"] = json!(true);
    let (status, body) = hub.post("/api/send-sms", skipped).await;
    assert_eq!(
        (status, body["phone_number"].as_str()),
        (202, Some("+1234567890")),
        "{body}"
    );

    let (status, body) = hub
        .post("/api/send-sms?skipPhoneValidation=true", example.clone())
        .await;
    assert_eq!(status, 202, "{body}");
    // Lenient is still a number: letters and too few digits are refused.
    for bad in ["+12ab567890", "+12345", "1234567890"] {
        let (status, body) = hub
            .post(
                "/api/send-sms",
                json!({ "phone_number": bad, "message": "x", "skip_phone_validation": true }),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_phone_number")),
            "{bad}: {body}"
        );
    }

    let lenient =
        TestHub::spawn_with(|config| config.phone_validation = PhoneValidation::Lenient).await;
    let (status, body) = lenient.post("/api/send-sms", example).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap();
    let (_, message) = lenient.get(&format!("/api/sms/{id}")).await;
    assert_eq!(message["phone_number"], "+1234567890", "{message}");
}
