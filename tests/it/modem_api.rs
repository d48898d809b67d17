//! The modem REST routes (`/api/modems/...`, `src/api/modems.rs`) end to end: a real hub, a
//! modem attached through `POST /api/modems/connect` to an emulated modem on a pty
//! (`modem_emulator.rs`), and only HTTP from there on.
//!
//! Covered: connect, status (all and one), the modem as a device of kind "modem", SIM info,
//! balance, USSD, sending through the modem (stored, tracked, `sent`), listing and deleting
//! messages stored on the modem, disconnect (the device goes offline), and the errors: an
//! unknown modem is a JSON 404, a port outside `/dev/` a 400, and every route needs the key.

use std::time::Duration;

use serde_json::{Value, json};
use smshub::transport::modem::{ModemConfig, Timeouts};
use smshub::transport::radio::parse_operators_file;

use crate::gammu::{Expected, check_received};
use crate::modem_emulator::{Emulator, profile};
use crate::support::{TestHub, eventually};

/// Fast timeouts; the sweep is left long so that a message stored without a notification
/// stays on the modem for the length of a test.
pub(crate) fn api_modem_config() -> ModemConfig {
    ModemConfig {
        timeouts: Timeouts {
            command: Duration::from_secs(2),
            sim: Duration::from_secs(3),
            radio: Duration::from_secs(3),
            prompt: Duration::from_secs(2),
            send: Duration::from_secs(3),
            ussd: Duration::from_secs(5),
            list: Duration::from_secs(3),
        },
        refresh: Duration::from_secs(1),
        sweep: Duration::from_secs(600),
        retry: Duration::from_millis(200),
        // The emulated modems are ptys.
        allow: vec!["/dev/pts/".into()],
        ..ModemConfig::default()
    }
}

/// A hub whose own modems use [`api_modem_config`], and an emulated modem attached through
/// `POST /api/modems/connect`; returns the connect answer.
async fn hub_with_api_modem(model: &str) -> (TestHub, Emulator, Value) {
    let hub = TestHub::spawn_with(|config| config.modems = api_modem_config()).await;
    let emulator = Emulator::start(profile(model));
    let (status, body) = hub
        .post("/api/modems/connect", json!({ "port": emulator.path }))
        .await;
    assert_eq!(status, 200, "{body}\ncommands: {:?}", emulator.commands());
    assert_eq!(
        body["state"],
        "ready",
        "{body}\ncommands: {:?}",
        emulator.commands()
    );
    assert_eq!(body["port"], emulator.path.as_str(), "{body}");
    assert!(body["device_id"].is_string(), "{body}");
    (hub, emulator, body)
}

async fn device(hub: &TestHub, id: &str) -> Value {
    let (status, body) = hub.get("/api/devices").await;
    assert_eq!(status, 200, "{body}");
    body["devices"]
        .as_array()
        .and_then(|it| it.iter().find(|d| d["id"] == id).cloned())
        .unwrap_or(Value::Null)
}

async fn delete(hub: &TestHub, path: &str) -> (u16, String) {
    let response = hub
        .http
        .delete(hub.url(path))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .expect("DELETE");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Checks an error answer: `status` and a JSON body `{"error":{"code": code, ...}}`.
fn assert_error(what: &str, got: (u16, &Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{what}: {}", got.1);
    assert!(got.1["error"]["message"].is_string(), "{what}: {}", got.1);
}

#[tokio::test]
async fn a_modem_connected_over_the_api_is_listed_with_its_status_and_as_a_device() {
    let (hub, emulator, connected) = hub_with_api_modem("huawei_e1752").await;
    let device_id = connected["device_id"].as_str().unwrap().to_string();
    assert_eq!(connected["imei"], "867701000000017", "{connected}");

    let (status, all) = hub.get("/api/modems/status").await;
    assert_eq!(status, 200, "{all}");
    let modems = all["modems"].as_array().expect("a modems array");
    assert_eq!(modems.len(), 1, "{all}");
    assert_eq!(modems[0]["port"], emulator.path.as_str(), "{all}");
    assert_eq!(modems[0]["device_id"], device_id.as_str(), "{all}");
    assert_eq!(modems[0]["state"], "ready", "{all}");

    // One modem, named by device id, IMEI, port path or port file name.
    let file_name = emulator.path.rsplit('/').next().unwrap().to_string();
    for id in [device_id.as_str(), "867701000000017", file_name.as_str()] {
        let (status, one) = hub.get(&format!("/api/modems/{id}/status")).await;
        assert_eq!(status, 200, "{id}: {one}");
        assert_eq!(one["device_id"], device_id.as_str(), "{id}: {one}");
        assert_eq!(one["state"], "ready", "{id}: {one}");
        assert_eq!(one["manufacturer"], "huawei", "{id}: {one}");
        assert_eq!(one["network"]["operator"], "Djezzy", "{id}: {one}");
        assert_eq!(one["network"]["registered"], true, "{id}: {one}");
    }

    let listed = device(&hub, &device_id).await;
    assert_eq!(listed["kind"], "modem", "{listed}");
    assert_eq!(listed["online"], true, "{listed}");
}

#[tokio::test]
async fn sim_info_balance_and_ussd_over_the_api() {
    let (hub, emulator, connected) = hub_with_api_modem("huawei_e1752").await;
    let id = connected["device_id"].as_str().unwrap().to_string();

    let (status, sim) = hub.get(&format!("/api/modems/{id}/sim-info")).await;
    assert_eq!(status, 200, "{sim}");
    assert_eq!(sim["imsi"], "603021234567890", "{sim}");
    assert_eq!(sim["mcc_mnc"], "60302", "{sim}");
    assert_eq!(sim["operator"], "Djezzy", "{sim}");
    assert_eq!(sim["iccid"], "89324102234690160476", "{sim}");
    assert_eq!(sim["smsc"], "+213770000001", "{sim}");
    assert_eq!(sim["pin_state"], "READY", "{sim}");

    let (status, balance) = hub.get(&format!("/api/modems/{id}/balance")).await;
    assert_eq!(status, 200, "{balance}");
    assert_eq!(balance["operator"], "Djezzy", "{balance}");
    assert_eq!(balance["code"], "*100#", "{balance}");
    assert_eq!(balance["amount"], 1250.5, "{balance}");
    assert!(
        balance["text"]
            .as_str()
            .is_some_and(|it| it.contains("1250,50 DA")),
        "{balance}"
    );

    let (status, answer) = hub
        .post(
            &format!("/api/modems/{id}/ussd"),
            json!({ "code": "*710#" }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["code"], "*710#", "{answer}");
    assert_eq!(answer["text"], "Internet: 2.5 Go restants", "{answer}");
    // The seed's field name works too.
    let (status, answer) = hub
        .post(
            &format!("/api/modems/{id}/ussd"),
            json!({ "ussd_code": "*710#" }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["text"], "Internet: 2.5 Go restants", "{answer}");
    let ussd_commands = emulator
        .commands()
        .iter()
        .filter(|it| it.starts_with("AT+CUSD=1,"))
        .count();
    assert!(
        ussd_commands >= 3,
        "balance and two USSD went to the modem: {:?}",
        emulator.commands()
    );

    // Bad USSD requests are refused before the modem sees them.
    let (status, body) = hub.post(&format!("/api/modems/{id}/ussd"), json!({})).await;
    assert_error("USSD without a code", (status, &body), 400, "missing_code");
    let (status, body) = hub
        .post(
            &format!("/api/modems/{id}/ussd"),
            json!({ "code": "rm -rf" }),
        )
        .await;
    assert_eq!(status, 400, "not a USSD code: {body}");
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
}

#[tokio::test]
async fn configured_operator_profiles_drive_the_balance_route() {
    // What `smshub serve --operators FILE` loads: Djezzy's balance through another code.
    let profiles = parse_operators_file(
        "[[operator]]\nmcc_mnc = \"60302\"\nbalance_ussd = \"*710#\"\n",
        false,
    )
    .expect("operators file");
    let hub = TestHub::spawn_with(|config| {
        config.modems = ModemConfig {
            operators: profiles,
            ..api_modem_config()
        }
    })
    .await;
    let emulator = Emulator::start(profile("huawei_e1752"));
    let (status, connected) = hub
        .post("/api/modems/connect", json!({ "port": emulator.path }))
        .await;
    assert_eq!(
        (status, connected["state"].as_str()),
        (200, Some("ready")),
        "{connected}"
    );
    let id = connected["device_id"].as_str().unwrap().to_string();

    let (status, sim) = hub.get(&format!("/api/modems/{id}/sim-info")).await;
    assert_eq!(status, 200, "{sim}");
    assert_eq!(sim["profile"]["balance_ussd"], "*710#", "{sim}");
    assert_eq!(
        sim["profile"]["apn"], "djezzy.internet",
        "the rest is built in: {sim}"
    );
    let (status, balance) = hub.get(&format!("/api/modems/{id}/balance")).await;
    assert_eq!(status, 200, "{balance}");
    assert_eq!(
        (balance["code"].as_str(), balance["text"].as_str()),
        (Some("*710#"), Some("Internet: 2.5 Go restants")),
        "{balance}"
    );
}

#[tokio::test]
async fn sending_through_a_modem_is_stored_tracked_and_sent() {
    let (hub, emulator, connected) = hub_with_api_modem("simcom_sim800").await;
    let id = connected["device_id"].as_str().unwrap().to_string();

    let (status, accepted) = hub
        .post(
            &format!("/api/modems/{id}/sms/send"),
            json!({ "to": "+213661234567", "text": "Salam from the API" }),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let message_id = accepted["id"].as_str().expect("a message id").to_string();
    let sent = hub.wait_state(&message_id, "sent").await;
    assert_eq!(
        sent["device_id"],
        id.as_str(),
        "pinned to the modem: {sent}"
    );
    assert_eq!(sent["phone_number"], "+213661234567", "{sent}");
    let messages = emulator.sent();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        (messages[0].to.as_str(), messages[0].text.as_str()),
        ("+213661234567", "Salam from the API")
    );

    // The hub's own names work as well, and the modem counts what it sent.
    let (status, accepted) = hub
        .post(
            &format!("/api/modems/{id}/sms/send"),
            json!({ "phone_number": "+213661234567", "message": "two" }),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    hub.wait_state(accepted["id"].as_str().unwrap(), "sent")
        .await;
    assert_eq!(emulator.sent().len(), 2);
    eventually("the modem status to count two sent", || async {
        let (_, one) = hub.get(&format!("/api/modems/{id}/status")).await;
        (one["sent"] == 2).then_some(())
    })
    .await;

    // A message without a recipient is refused and nothing is written to the modem.
    let (status, body) = hub
        .post(
            &format!("/api/modems/{id}/sms/send"),
            json!({ "text": "nobody" }),
        )
        .await;
    assert_error(
        "send without a recipient",
        (status, &body),
        400,
        "missing_recipient",
    );
    assert_eq!(emulator.pdu_count(), 2);
    // libGammu reads the two PDUs the modem received.
    check_received(
        &emulator,
        &[
            Expected {
                to: "+213661234567",
                text: "Salam from the API",
                status_report: false,
            },
            Expected {
                to: "+213661234567",
                text: "two",
                status_report: false,
            },
        ],
    );
}

#[tokio::test]
async fn messages_stored_on_the_modem_are_listed_and_deleted() {
    let (hub, emulator, connected) = hub_with_api_modem("huawei_e1752").await;
    let id = connected["device_id"].as_str().unwrap().to_string();

    // Stored without +CMTI: the hub does not read it before the (long) sweep.
    let first = emulator.deliver("+213661234567", "Stored one", false);
    let second = emulator.deliver("+213550000000", "Stored two", false);
    assert_eq!((first, second), (0, 1), "Huawei storage starts at 0");

    let (status, listed) = hub.get(&format!("/api/modems/{id}/sms")).await;
    assert_eq!(status, 200, "{listed}");
    let messages = listed["messages"].as_array().expect("a messages array");
    assert_eq!(messages.len(), 2, "{listed}");
    assert_eq!(messages[0]["index"], 0, "{listed}");
    assert_eq!(messages[0]["kind"], "deliver", "{listed}");
    assert_eq!(messages[0]["number"], "+213661234567", "{listed}");
    assert_eq!(messages[0]["text"], "Stored one", "{listed}");
    assert_eq!(messages[1]["index"], 1, "{listed}");
    assert_eq!(messages[1]["text"], "Stored two", "{listed}");
    assert!(
        messages[0]["pdu"].as_str().is_some_and(|it| !it.is_empty()),
        "{listed}"
    );

    let (status, body) = delete(&hub, &format!("/api/modems/{id}/sms/0")).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        emulator.stored_indexes(),
        vec![1],
        "index 0 deleted on the modem"
    );
    let (status, listed) = hub.get(&format!("/api/modems/{id}/sms")).await;
    assert_eq!(status, 200, "{listed}");
    let messages = listed["messages"].as_array().expect("a messages array");
    assert_eq!(messages.len(), 1, "{listed}");
    assert_eq!(messages[0]["index"], 1, "{listed}");

    // Deleting an index that holds nothing is a 404, although this modem answers `OK` to
    // `AT+CMGD` on an empty index: the route reads the index first (`+CMS ERROR: 321`).
    let (status, body) = delete(&hub, &format!("/api/modems/{id}/sms/0")).await;
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert_error(
        "deleting an empty index",
        (status, &body),
        404,
        "sms_not_found",
    );
    assert_eq!(emulator.stored_indexes(), vec![1]);
    let (status, body) = delete(&hub, &format!("/api/modems/{id}/sms/7")).await;
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert_error("an index never used", (status, &body), 404, "sms_not_found");
    assert_eq!(emulator.stored_indexes(), vec![1]);
    let deletes: Vec<String> = emulator
        .commands()
        .into_iter()
        .filter(|it| it.starts_with("AT+CMGD="))
        .collect();
    assert_eq!(
        deletes,
        vec!["AT+CMGD=0"],
        "empty indexes are never deleted"
    );
}

#[tokio::test]
async fn unknown_modems_bad_ports_and_missing_keys_are_refused() {
    let (hub, emulator, connected) = hub_with_api_modem("huawei_e1752").await;
    let id = connected["device_id"].as_str().unwrap().to_string();

    // An unknown modem is a JSON 404 on every route that names one.
    let missing = "no-such-modem";
    let checks = [
        (
            "status",
            hub.get(&format!("/api/modems/{missing}/status")).await,
        ),
        (
            "sim-info",
            hub.get(&format!("/api/modems/{missing}/sim-info")).await,
        ),
        (
            "balance",
            hub.get(&format!("/api/modems/{missing}/balance")).await,
        ),
        ("list", hub.get(&format!("/api/modems/{missing}/sms")).await),
        (
            "ussd",
            hub.post(
                &format!("/api/modems/{missing}/ussd"),
                json!({ "code": "*100#" }),
            )
            .await,
        ),
        (
            "send",
            hub.post(
                &format!("/api/modems/{missing}/sms/send"),
                json!({ "to": "+213661234567", "text": "x" }),
            )
            .await,
        ),
        (
            "disconnect",
            hub.post("/api/modems/disconnect", json!({ "port": missing }))
                .await,
        ),
    ];
    for (what, (status, body)) in &checks {
        assert_error(what, (*status, body), 404, "modem_not_found");
    }
    let (status, body) = delete(&hub, &format!("/api/modems/{missing}/sms/0")).await;
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert_error("delete", (status, &body), 404, "modem_not_found");

    // Only devices under /dev/ may be opened.
    for port in [
        "/tmp/ttyUSB0",
        "/etc/passwd",
        "ttyUSB0",
        "/dev/../etc/passwd",
        "",
    ] {
        let (status, body) = hub
            .post("/api/modems/connect", json!({ "port": port }))
            .await;
        assert_error(port, (status, &body), 400, "invalid_port");
    }
    // Outside the allow-list (here the pty folder): refused, nothing opened or listed.
    for port in ["/dev/kmsg", "/dev/null", "/dev/tty0", "/dev/ttyUSB0"] {
        let (status, body) = hub
            .post("/api/modems/connect", json!({ "port": port }))
            .await;
        assert_error(port, (status, &body), 400, "port_not_allowed");
    }
    // Allowed, but no such port: not found, and not kept retrying.
    let (status, body) = hub
        .post("/api/modems/connect", json!({ "port": "/dev/pts/987654" }))
        .await;
    assert_error("a missing port", (status, &body), 404, "port_not_found");
    let (_, listed) = hub.get("/api/modems/status").await;
    assert!(
        !listed.to_string().contains("kmsg") && !listed.to_string().contains("987654"),
        "{listed}"
    );
    let (status, body) = hub.post("/api/modems/connect", json!({})).await;
    assert_error(
        "connect without a port",
        (status, &body),
        400,
        "invalid_port",
    );
    let (status, body) = hub.post("/api/modems/disconnect", json!({})).await;
    assert_error(
        "disconnect without a port",
        (status, &body),
        400,
        "missing_port",
    );
    let (status, all) = hub.get("/api/modems/status").await;
    assert_eq!(
        (status, all["modems"].as_array().map(Vec::len)),
        (200, Some(1)),
        "nothing else attached: {all}"
    );

    // Every route wants the API key, even for a modem that exists; a wrong key is no better.
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("POST", "/api/modems/detect".into(), Some(json!({}))),
        (
            "POST",
            "/api/modems/connect".into(),
            Some(json!({ "port": emulator.path })),
        ),
        (
            "POST",
            "/api/modems/disconnect".into(),
            Some(json!({ "port": id })),
        ),
        ("GET", "/api/modems/status".into(), None),
        ("GET", format!("/api/modems/{id}/status"), None),
        ("GET", format!("/api/modems/{id}/sim-info"), None),
        ("GET", format!("/api/modems/{id}/sms"), None),
        (
            "POST",
            format!("/api/modems/{id}/sms/send"),
            Some(json!({ "to": "+213661234567", "text": "x" })),
        ),
        ("DELETE", format!("/api/modems/{id}/sms/0"), None),
        (
            "POST",
            format!("/api/modems/{id}/ussd"),
            Some(json!({ "code": "*100#" })),
        ),
        ("GET", format!("/api/modems/{id}/balance"), None),
    ];
    for (method, path, body) in &routes {
        for key in [None, Some("not-a-key")] {
            let mut request = match *method {
                "GET" => hub.http.get(hub.url(path)),
                "POST" => hub.http.post(hub.url(path)),
                _ => hub.http.delete(hub.url(path)),
            };
            if let Some(key) = key {
                request = request.header("X-API-Key", key);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            assert_error(
                &format!("{method} {path} with key {key:?}"),
                (status, &answer),
                401,
                "unauthorized",
            );
        }
    }

    // None of that touched the modem: still attached, nothing sent, no USSD.
    let (status, one) = hub.get(&format!("/api/modems/{id}/status")).await;
    assert_eq!(
        (status, one["state"].as_str()),
        (200, Some("ready")),
        "{one}"
    );
    assert_eq!(emulator.pdu_count(), 0);
    assert!(
        !emulator
            .commands()
            .iter()
            .any(|it| it.starts_with("AT+CUSD=1,")),
        "{:?}",
        emulator.commands()
    );
    assert_eq!(device(&hub, &id).await["online"], true);
}

#[tokio::test]
async fn disconnecting_over_the_api_takes_the_device_offline() {
    let (hub, emulator, connected) = hub_with_api_modem("huawei_e1752").await;
    let id = connected["device_id"].as_str().unwrap().to_string();
    assert_eq!(device(&hub, &id).await["online"], true);

    let (status, body) = hub
        .post("/api/modems/disconnect", json!({ "port": emulator.path }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "disconnected", "{body}");
    eventually("the modem device to go offline", || async {
        (device(&hub, &id).await["online"] == false).then_some(())
    })
    .await;
    let listed = device(&hub, &id).await;
    assert_eq!(
        listed["kind"], "modem",
        "the device stays registered: {listed}"
    );

    // Detached: forgotten by the modem routes.
    let (status, all) = hub.get("/api/modems/status").await;
    assert_eq!(
        (status, all["modems"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{all}"
    );
    let (status, body) = hub.get(&format!("/api/modems/{id}/balance")).await;
    assert_error(
        "balance on a detached modem",
        (status, &body),
        404,
        "modem_not_found",
    );
}

/// With no allow-list configured, connect takes what detection takes (USB and ACM serial
/// ports): a console, the kernel log or the null device is refused, and a port that does not
/// exist is a 404 that leaves nothing behind retrying.
#[tokio::test]
async fn connect_applies_the_default_allow_list() {
    let hub = TestHub::spawn().await;
    for port in ["/dev/kmsg", "/dev/null", "/dev/tty0", "/dev/pts/0"] {
        let (status, body) = hub
            .post("/api/modems/connect", json!({ "port": port }))
            .await;
        assert_error(port, (status, &body), 400, "port_not_allowed");
    }
    let (status, body) = hub
        .post("/api/modems/connect", json!({ "port": "/dev/ttyUSB97" }))
        .await;
    assert_error("a missing port", (status, &body), 404, "port_not_found");
    let (_, listed) = hub.get("/api/modems/status").await;
    assert_eq!(listed["modems"], json!([]), "{listed}");
}

/// A modem attached through `POST /api/modems/connect` is attached again when the hub
/// restarts, as `--modem` ports are; one detached through the API is not. A remembered port
/// that is gone at the restart is not attached (nothing retries it), stays remembered, and
/// `disconnect` forgets it.
#[tokio::test]
async fn modems_connected_over_the_api_are_attached_again_after_a_restart() {
    let (hub, emulator, connected) = hub_with_api_modem("huawei_e1752").await;
    let device_id = connected["device_id"].as_str().unwrap().to_string();
    let gone = "/dev/pts/smshub-test-gone";
    hub.modems.remember(gone).await;

    let hub = hub.restart().await;
    let listed = eventually("the remembered modem to be ready again", || async {
        let (_, all) = hub.get("/api/modems/status").await;
        let modems = all["modems"].as_array().cloned().unwrap_or_default();
        modems
            .iter()
            .any(|it| it["port"] == emulator.path.as_str() && it["state"] == "ready")
            .then_some(modems)
    })
    .await;
    assert_eq!(listed.len(), 1, "the gone port is not attached: {listed:?}");
    assert_eq!(listed[0]["device_id"], device_id.as_str(), "{listed:?}");
    eventually("the modem device to be online", || async {
        (device(&hub, &device_id).await["online"] == true).then_some(())
    })
    .await;

    // Disconnecting forgets, the attached modem and the gone one alike.
    for port in [emulator.path.as_str(), gone] {
        let (status, body) = hub
            .post("/api/modems/disconnect", json!({ "port": port }))
            .await;
        assert_eq!(
            (status, &body["state"]),
            (200, &json!("disconnected")),
            "{port}: {body}"
        );
    }
    let (status, body) = hub
        .post("/api/modems/disconnect", json!({ "port": gone }))
        .await;
    assert_error("forgotten already", (status, &body), 404, "modem_not_found");
    let hub = hub.restart().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, all) = hub.get("/api/modems/status").await;
    assert_eq!(all["modems"], json!([]), "{all}");
    assert!(
        hub.store
            .remembered_modems()
            .await
            .expect("read")
            .is_empty()
    );
}
