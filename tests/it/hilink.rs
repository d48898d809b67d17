//! Huawei HiLink sticks as devices, end to end: a real hub, the HiLink transport talking HTTP
//! to an emulated E3372h (`hilink_emulator.rs`), and only the REST API from there on.
//!
//! Covered: a stick attached at start is an online device of kind `hilink` and a modem with
//! `transport: "hilink"` (identity, SIM, operator, signal, network); a long message sent with
//! `POST /api/send-sms` goes out in one `send-sms`, survives a "busy" answer and becomes
//! `sent` with its parts counted, and the stick's sent-box copy is pruned; `FailPhone` is a
//! temporary failure for one part (retried) and final for several; one-time tokens are
//! followed, and a stale token or session is recovered; a login is made when the stick asks;
//! incoming SMS land in the inbox once each and leave the stick, even when a delete fails;
//! connect over the API, SIM info, USSD (with `111019` while pending, and a stale USSD session
//! released), balance, listing and deleting stored messages, sending through one stick,
//! disconnect; an unplugged stick goes offline and comes back; a `send-sms` that never answers,
//! or whose connection drops after the request, is `outcome_unknown` and never resent. Waits are event-driven with a deadline.

use std::time::Duration;

use serde_json::{Value, json};
use smshub::app::Config;
use smshub::transport::hilink::HilinkConfig;

use crate::hilink_emulator::{Emulator, IMEI, Options};
use crate::support::{TestHub, eventually};

/// Fast polling and short waits, so every step of a test happens within the patience.
fn fast() -> HilinkConfig {
    HilinkConfig {
        request_timeout: Duration::from_secs(2),
        send_timeout: Duration::from_secs(5),
        send_poll: Duration::from_millis(50),
        ussd_timeout: Duration::from_secs(5),
        ussd_poll: Duration::from_millis(50),
        poll: Duration::from_millis(100),
        sweep: Duration::from_millis(300),
        refresh: Duration::from_millis(300),
        retry: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        breaker_failures: 2,
        busy_retries: 2,
        busy_wait: Duration::from_millis(50),
        ..HilinkConfig::default()
    }
}

/// A hub with the stick at `url` attached at start; temporary failures come back quickly.
async fn hub_with(url: String, configure: impl FnOnce(&mut Config)) -> TestHub {
    TestHub::spawn_with(move |config| {
        config.hilink = fast();
        config.hilinks = vec![url];
        config.dispatch.retry_base_ms = 100;
        config.dispatch.retry_cap_ms = 200;
        configure(config);
    })
    .await
}

/// Waits until the hub's only modem is ready and returns its status.
async fn ready(hub: &TestHub) -> Value {
    eventually("the stick to be ready", || async {
        let (_, body) = hub.get("/api/modems/status").await;
        let modem = body["modems"][0].clone();
        (modem["state"] == "ready").then_some(modem)
    })
    .await
}

async fn device(hub: &TestHub, id: &str) -> Value {
    let (status, body) = hub.get("/api/devices").await;
    assert_eq!(status, 200, "{body}");
    body["devices"]
        .as_array()
        .and_then(|it| it.iter().find(|d| d["id"] == id).cloned())
        .unwrap_or(Value::Null)
}

async fn started() -> (TestHub, Emulator, String) {
    let emulator = Emulator::start(Options::default()).await;
    let hub = hub_with(emulator.url.clone(), |_| {}).await;
    let status = ready(&hub).await;
    let device_id = status["device_id"].as_str().expect("device id").to_string();
    (hub, emulator, device_id)
}

fn long_text() -> String {
    (0..400)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

#[tokio::test]
async fn a_stick_is_an_online_hilink_device_that_sends_long_messages() {
    let (hub, emulator, device_id) = started().await;
    let (_, all) = hub.get("/api/modems/status").await;
    let stick = &all["modems"][0];
    assert_eq!(stick["transport"], "hilink", "{stick}");
    assert_eq!(stick["port"], emulator.url.as_str(), "{stick}");
    assert_eq!(stick["imei"], IMEI, "{stick}");
    assert_eq!(stick["manufacturer"], "Huawei", "{stick}");
    assert_eq!(stick["model"], "E3372h-153", "{stick}");
    assert_eq!(stick["revision"], "22.333.01.00.00", "{stick}");
    assert_eq!(
        stick["sim"]["operator"], "Djezzy",
        "603-02 from the IMSI: {stick}"
    );
    assert_eq!(stick["sim"]["pin_state"], "READY", "{stick}");
    assert_eq!(stick["network"]["network_type"], "lte", "{stick}");
    assert_eq!(stick["network"]["operator"], "Djezzy", "{stick}");
    assert_eq!(stick["network"]["signal_dbm"], -69, "rssi -69dBm: {stick}");
    assert_eq!(
        stick["network"]["signal_percent"], 80,
        "4 bars of 5: {stick}"
    );
    assert_eq!(stick["network"]["registered"], true, "{stick}");

    let listed = device(&hub, &device_id).await;
    assert_eq!(listed["kind"], "hilink", "{listed}");
    assert_eq!(listed["online"], true, "{listed}");
    assert_eq!(listed["model"], "Huawei E3372h-153", "{listed}");
    assert_eq!(
        listed["sims"][0]["phone_number"], "+213770001122",
        "{listed}"
    );
    assert_eq!(listed["sims"][0]["network"], "lte", "{listed}");

    // The stick is busy once; the hub tries again on the spot.
    emulator.busy_next(1);
    let text = long_text();
    let id = hub
        .send_sms(json!({"phone_number": "+213770123456", "message": text}))
        .await;
    let sent = hub.wait_state(&id, "sent").await;
    assert_eq!(sent["parts"], 3, "{sent}");
    assert_eq!(sent["device_id"], device_id.as_str(), "{sent}");
    assert_eq!(
        sent["attempts"], 1,
        "the busy answer was retried on the spot: {sent}"
    );
    assert_eq!(emulator.busy(), 1);
    let messages = emulator.sent();
    assert_eq!(
        messages.len(),
        1,
        "one send-sms, the stick splits: {messages:?}"
    );
    assert_eq!(messages[0].to, "+213770123456");
    assert_eq!(messages[0].content, text);
    assert_eq!(
        (messages[0].length.as_str(), messages[0].reserved.as_str()),
        ("400", "1")
    );

    // A Unicode text goes as UCS-2 (Reserved 0), its length in UTF-16 units.
    let unicode = hub
        .send_sms(json!({"phone_number": "+213770123456", "message": "Привет €"}))
        .await;
    hub.wait_state(&unicode, "sent").await;
    let last = emulator.sent().pop().expect("a second message");
    assert_eq!(
        (
            last.content.as_str(),
            last.length.as_str(),
            last.reserved.as_str()
        ),
        ("Привет €", "8", "0")
    );

    // The copies the stick filed in its sent box are deleted, so its storage never fills.
    eventually("the sent box to be pruned", || async {
        emulator.sent_box().is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn fail_phone_is_retried_for_one_part_and_final_for_several() {
    let (hub, emulator, _device_id) = started().await;

    // One part: nothing went out, so another attempt is safe.
    emulator.fail_next(1);
    let short = hub
        .send_sms(json!({"phone_number": "+213661234567", "message": "one part"}))
        .await;
    let sent = hub.wait_state(&short, "sent").await;
    assert_eq!(sent["attempts"], 2, "{sent}");
    assert_eq!(
        emulator
            .sent()
            .iter()
            .filter(|it| it.content == "one part")
            .count(),
        2
    );

    // Several parts: some may have gone out; sending again would repeat them.
    emulator.fail_next(1);
    let long = hub
        .send_sms(json!({"phone_number": "+213661234567", "message": long_text()}))
        .await;
    let failed = hub.wait_state(&long, "failed").await;
    assert_eq!(failed["error"]["code"], "generic_failure", "{failed}");
    assert_eq!(failed["error"]["temporary"], false, "{failed}");
    assert_eq!(failed["attempts"], 1, "{failed}");
    let after = hub
        .send_sms(json!({"phone_number": "+213661234567", "message": "after"}))
        .await;
    hub.wait_state(&after, "sent").await;
    assert_eq!(
        emulator
            .sent()
            .iter()
            .filter(|it| it.content == long_text())
            .count(),
        1,
        "the long message was not sent again"
    );
}

#[tokio::test]
async fn rotating_tokens_are_followed_and_stale_ones_recovered() {
    // Each write hands out a batch of two one-time tokens, `a#b`.
    let emulator = Emulator::start(Options {
        token_batch: 2,
        ..Options::default()
    })
    .await;
    let hub = hub_with(emulator.url.clone(), |_| {}).await;
    ready(&hub).await;
    for n in 0..3 {
        let id = hub
            .send_sms(json!({"phone_number": "+213770123456", "message": format!("token {n}")}))
            .await;
        hub.wait_state(&id, "sent").await;
    }
    assert_eq!(emulator.stale(), 0, "every write carried a live token");
    let sessions = emulator.sessions();

    // Every token is spent (125003 on the next write): a new session, then the write again.
    emulator.expire_tokens();
    let id = hub
        .send_sms(json!({"phone_number": "+213770123456", "message": "after spent tokens"}))
        .await;
    let sent = hub.wait_state(&id, "sent").await;
    assert_eq!(sent["attempts"], 1, "recovered inside one attempt: {sent}");
    assert!(emulator.stale() >= 1);
    assert!(emulator.sessions() > sessions);

    // The session expires (125002 on the next call).
    let (stale, sessions) = (emulator.stale(), emulator.sessions());
    emulator.expire_session();
    let id = hub
        .send_sms(json!({"phone_number": "+213770123456", "message": "after expiry"}))
        .await;
    hub.wait_state(&id, "sent").await;
    assert!(emulator.stale() > stale && emulator.sessions() > sessions);
    assert_eq!(
        emulator
            .sent()
            .iter()
            .filter(|it| it.content.starts_with("after"))
            .count(),
        2,
        "each message went out once"
    );
}

#[tokio::test]
async fn a_stick_that_asks_for_a_login_gets_one() {
    let emulator = Emulator::start(Options {
        login: Some(("admin".into(), "s3cret".into())),
        ..Options::default()
    })
    .await;
    let url = emulator.url.replacen("http://", "http://admin:s3cret@", 1);
    let hub = hub_with(url, |_| {}).await;
    let status = ready(&hub).await;
    assert_eq!(
        status["port"],
        emulator.url.as_str(),
        "the password is not shown"
    );
    assert!(emulator.logins() >= 1);
    let id = hub
        .send_sms(json!({"phone_number": "+213770123456", "message": "logged in"}))
        .await;
    hub.wait_state(&id, "sent").await;

    // A wrong password is refused and said so.
    let other = Emulator::start(Options {
        login: Some(("admin".into(), "s3cret".into())),
        ..Options::default()
    })
    .await;
    let (code, body) = hub
        .post(
            "/api/modems/connect",
            json!({"url": other.url, "username": "admin", "password": "wrong"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["state"], "error", "{body}");
    let error = body["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("108006") && error.contains("not retrying"),
        "{body}"
    );
    assert_eq!(other.login_failures(), 1);
}

#[tokio::test]
async fn incoming_messages_land_in_the_inbox_once_and_leave_the_stick() {
    let emulator = Emulator::start(Options::default()).await;
    let long: String = "Ceci est un long message. ".repeat(15);
    emulator.deliver(
        "+213661234567",
        "Salam, ça va ? <3 & à+",
        "2024-05-01 10:00:00",
        false,
    );
    emulator.deliver("+213550000000", &long, "2024-05-01 10:01:00", false);
    // Already read in the stick's web UI: only the sms-count sweep finds it.
    emulator.deliver("Djezzy", "Bonus 100 DA", "2024-05-01 10:02:00", true);
    let hub = hub_with(emulator.url.clone(), |_| {}).await;
    let device_id = ready(&hub).await["device_id"].as_str().unwrap().to_string();

    let inbox = eventually("three messages in the inbox", || async {
        let (_, body) = hub.get("/api/sms/inbox").await;
        (body["total"] == 3).then_some(body)
    })
    .await;
    let messages = inbox["messages"].as_array().unwrap();
    let find = |sender: &str| {
        messages
            .iter()
            .find(|it| it["sender"] == sender)
            .unwrap_or_else(|| panic!("no message from {sender}: {inbox}"))
    };
    assert_eq!(find("+213661234567")["message"], "Salam, ça va ? <3 & à+");
    assert_eq!(find("+213550000000")["message"], long.as_str());
    assert_eq!(find("Djezzy")["message"], "Bonus 100 DA");
    assert_eq!(find("Djezzy")["device_id"], device_id.as_str());
    eventually("the messages to leave the stick", || async {
        emulator.inbox().is_empty().then_some(())
    })
    .await;

    // Deleting fails: the message is taken again on every sweep, and stored once.
    emulator.refuse_deletes(true);
    emulator.deliver("+213661234567", "Encore", "2024-05-01 11:00:00", false);
    eventually("the message to be taken twice", || async {
        (emulator.delete_refusals() >= 2).then_some(())
    })
    .await;
    let (_, body) = hub.get("/api/sms/inbox").await;
    assert_eq!(body["total"], 4, "{body}");
    emulator.refuse_deletes(false);
    eventually("the message to leave the stick", || async {
        emulator.inbox().is_empty().then_some(())
    })
    .await;
    let (_, body) = hub.get("/api/sms/inbox").await;
    assert_eq!(body["total"], 4, "{body}");
}

#[tokio::test]
async fn the_modem_routes_work_for_a_stick_connected_over_the_api() {
    let emulator = Emulator::start(Options::default()).await;
    let hub = TestHub::spawn_with(|config| {
        config.hilink = HilinkConfig {
            prune_sent: false,
            ..fast()
        };
    })
    .await;
    let (code, connected) = hub
        .post("/api/modems/connect", json!({"url": emulator.url}))
        .await;
    assert_eq!(code, 200, "{connected}");
    assert_eq!(connected["state"], "ready", "{connected}");
    assert_eq!(connected["transport"], "hilink", "{connected}");
    let id = connected["device_id"].as_str().unwrap().to_string();

    // Named by device id, IMEI or host.
    let host = emulator.url.trim_start_matches("http://").to_string();
    for name in [id.as_str(), IMEI, host.as_str()] {
        let (code, one) = hub.get(&format!("/api/modems/{name}/status")).await;
        assert_eq!(code, 200, "{name}: {one}");
        assert_eq!(one["device_id"], id.as_str(), "{name}: {one}");
    }
    let (_, sim) = hub.get(&format!("/api/modems/{id}/sim-info")).await;
    assert_eq!(
        (
            &sim["imsi"],
            &sim["mcc_mnc"],
            &sim["operator"],
            &sim["iccid"],
            &sim["phone_number"]
        ),
        (
            &json!("603021234567890"),
            &json!("60302"),
            &json!("Djezzy"),
            &json!("89213020002341234567"),
            &json!("+213770001122")
        ),
        "{sim}"
    );

    // USSD: the network answers after two 111019 polls.
    let (code, answer) = hub
        .post(&format!("/api/modems/{id}/ussd"), json!({"code": "*710#"}))
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["text"], "Internet: 2.5 Go restants", "{answer}");
    assert!(emulator.ussd_pending() >= 2);
    // A USSD session left open elsewhere is released first.
    emulator.open_ussd_session();
    let (code, balance) = hub.get(&format!("/api/modems/{id}/balance")).await;
    assert_eq!(code, 200, "{balance}");
    assert_eq!(
        (&balance["operator"], &balance["code"], &balance["amount"]),
        (&json!("Djezzy"), &json!("*100#"), &json!(1250.5)),
        "{balance}"
    );

    // Sending through this stick: stored, tracked, sent; the copy stays in the sent box.
    let (code, accepted) = hub
        .post(
            &format!("/api/modems/{id}/sms/send"),
            json!({"to": "+213770123456", "text": "via the modem route"}),
        )
        .await;
    assert_eq!(code, 202, "{accepted}");
    hub.wait_state(accepted["id"].as_str().unwrap(), "sent")
        .await;
    let (code, listed) = hub.get(&format!("/api/modems/{id}/sms")).await;
    assert_eq!(code, 200, "{listed}");
    let stored = listed["messages"]
        .as_array()
        .and_then(|it| it.iter().find(|m| m["kind"] == "submit").cloned())
        .unwrap_or_else(|| panic!("the sent copy: {listed}"));
    assert_eq!(stored["status"], "sto_sent", "{stored}");
    assert_eq!(stored["text"], "via the modem route", "{stored}");
    assert!(stored.get("pdu").is_none(), "no PDU for a stick: {stored}");
    let response = hub
        .http
        .delete(hub.url(&format!("/api/modems/{id}/sms/{}", stored["index"])))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    assert!(emulator.sent_box().is_empty());

    let (code, bad) = hub
        .post("/api/modems/connect", json!({"url": "https://192.168.8.1"}))
        .await;
    assert_eq!(
        (code, &bad["error"]["code"]),
        (400, &json!("invalid_url")),
        "{bad}"
    );

    let (code, gone) = hub
        .post("/api/modems/disconnect", json!({"port": emulator.url}))
        .await;
    assert_eq!(code, 200, "{gone}");
    assert_eq!(gone["state"], "disconnected", "{gone}");
    assert_eq!(device(&hub, &id).await["online"], false);
}

#[tokio::test]
async fn an_unreachable_stick_goes_offline_and_comes_back() {
    let (hub, emulator, device_id) = started().await;
    emulator.unplug().await;
    eventually("the stick to go offline", || async {
        (device(&hub, &device_id).await["online"] == false).then_some(())
    })
    .await;
    let (_, all) = hub.get("/api/modems/status").await;
    let stick = &all["modems"][0];
    assert_ne!(stick["state"], "ready", "{stick}");
    assert!(
        stick["last_error"]
            .as_str()
            .is_some_and(|it| it.contains("stopped answering") || it.contains("cannot be reached")),
        "{stick}"
    );
    // Messages wait for it meanwhile.
    let id = hub
        .send_sms(json!({"phone_number": "+213770123456", "message": "while away"}))
        .await;

    emulator.replug().await;
    eventually("the stick to come back", || async {
        (device(&hub, &device_id).await["online"] == true).then_some(())
    })
    .await;
    hub.wait_state(&id, "sent").await;
    assert_eq!(emulator.sent().len(), 1);
}

#[tokio::test]
async fn a_send_without_an_answer_is_outcome_unknown_and_never_resent() {
    let emulator = Emulator::start(Options::default()).await;
    let hub = hub_with(emulator.url.clone(), |config| {
        config.hilink.request_timeout = Duration::from_secs(1);
    })
    .await;
    ready(&hub).await;
    emulator.hang_next(1);
    let lost = hub
        .send_sms(json!({"phone_number": "+213770123456", "message": "maybe sent"}))
        .await;
    let failed = hub.wait_state(&lost, "failed").await;
    assert_eq!(failed["error"]["code"], "outcome_unknown", "{failed}");
    assert_eq!(failed["error"]["temporary"], false, "{failed}");

    let next = hub
        .send_sms(json!({"phone_number": "+213770123456", "message": "next"}))
        .await;
    hub.wait_state(&next, "sent").await;
    let sent = emulator.sent();
    assert_eq!(
        sent.iter().filter(|it| it.content == "maybe sent").count(),
        1,
        "{sent:?}"
    );
    let (_, again) = hub.get(&format!("/api/sms/{lost}")).await;
    assert_eq!(
        (&again["state"], &again["attempts"]),
        (&json!("failed"), &json!(1))
    );

    // The connection drops after the request went out: the same.
    emulator.drop_next(1);
    let dropped = hub
        .send_sms(json!({"phone_number": "+213770123456", "message": "dropped"}))
        .await;
    let failed = hub.wait_state(&dropped, "failed").await;
    assert_eq!(failed["error"]["code"], "outcome_unknown", "{failed}");
    let last = hub
        .send_sms(json!({"phone_number": "+213770123456", "message": "last"}))
        .await;
    hub.wait_state(&last, "sent").await;
    assert_eq!(
        emulator
            .sent()
            .iter()
            .filter(|it| it.content == "dropped")
            .count(),
        1
    );
}
