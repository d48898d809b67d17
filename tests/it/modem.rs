//! Serial modems as devices, end to end: a real hub, the modem transport driving an emulated
//! modem over a pty (`modem_emulator.rs`), and the REST API that exists today.
//!
//! Covered: a modem becomes an online device of kind "modem"; a long message sent through
//! `POST /api/send-sms` goes out as concatenated PDUs and becomes `sent`, then `delivered`
//! from status reports (`+CDSI` stored or `+CDS` direct, as the modem's `AT+CNMI` allows);
//! incoming SMS (`+CMTI`, and one whose notification was lost, found by the sweep) reach
//! `GET /api/sms/inbox`; USSD and balance (Huawei packed GSM 7-bit, and plain with an extra
//! release notice); a temporary CMS error retried, a permanent one failed, and a PDU never
//! answered (`outcome_unknown`, never resent);
//! unplug and replug. Waits are event-driven with a deadline (the pty runs in real time).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use smshub::transport::modem::{ModemConfig, ModemState, ModemStatus, Modems, Timeouts};

use crate::modem_emulator::{Emulator, profile};
use crate::support::{TestHub, eventually};

fn fast_config() -> ModemConfig {
    ModemConfig {
        timeouts: Timeouts {
            command: Duration::from_secs(2),
            sim: Duration::from_secs(3),
            radio: Duration::from_secs(3),
            prompt: Duration::from_secs(2),
            send: Duration::from_secs(2),
            ussd: Duration::from_secs(5),
            list: Duration::from_secs(3),
        },
        refresh: Duration::from_secs(1),
        sweep: Duration::from_millis(500),
        retry: Duration::from_millis(200),
        ..ModemConfig::default()
    }
}

/// A hub with one emulated modem attached and ready.
async fn hub_with_modem(model: &str) -> (TestHub, Arc<Modems>, Emulator, ModemStatus) {
    // Temporary failures come back quickly for a second attempt.
    let hub = TestHub::spawn_with(|config| {
        config.dispatch.retry_base_ms = 100;
        config.dispatch.retry_cap_ms = 200;
    })
    .await;
    let modems = Arc::new(Modems::new(fast_config()));
    let emulator = Emulator::start(profile(model));
    let status = modems.connect(hub.hub.clone(), &emulator.path).await;
    assert_eq!(
        status.state,
        ModemState::Ready,
        "{status:?}\ncommands: {:?}",
        emulator.commands()
    );
    (hub, modems, emulator, status)
}

async fn device(hub: &TestHub, id: &str) -> Value {
    let (status, body) = hub.get("/api/devices").await;
    assert_eq!(status, 200, "{body}");
    body["devices"]
        .as_array()
        .and_then(|it| it.iter().find(|d| d["id"] == id).cloned())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_modem_is_an_online_device_that_sends_long_messages_and_reports_delivery() {
    let (hub, _modems, emulator, status) = hub_with_modem("huawei_e1752").await;
    let device_id = status.device_id.clone().expect("a device id");
    assert_eq!(status.imei.as_deref(), Some("867701000000017"));
    assert_eq!(
        status.sim.iccid.as_deref(),
        Some("89324102234690160476"),
        "^ICCID un-swapped"
    );
    assert_eq!(
        status.sim.operator.as_deref(),
        Some("Djezzy"),
        "603-02 from the IMSI"
    );
    // ModemManager's test string: submode 41 (WCDMA) reads as UMTS, whatever its name says.
    assert_eq!(status.network.network_type.as_deref(), Some("umts"));
    assert_eq!(status.storage.as_deref(), Some("ME"));

    let listed = device(&hub, &device_id).await;
    assert_eq!(listed["kind"], "modem", "{listed}");
    assert_eq!(listed["online"], true, "{listed}");
    assert_eq!(listed["model"], "huawei E1752", "{listed}");

    // 400 GSM 7-bit characters: three parts of at most 153.
    let text: String = (0..400)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let id = hub
        .send_sms(json!({
            "phone_number": "+213770123456",
            "message": text,
            "device_id": device_id,
            "delivery_report": true,
        }))
        .await;
    let sent = hub.wait_state(&id, "sent").await;
    assert_eq!(sent["parts"], 3, "{sent}");
    let messages = emulator.sent();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].to, "+213770123456");
    assert_eq!(
        messages[0].text, text,
        "the emulator reassembles the parts by reference and number"
    );
    assert_eq!(messages[0].parts, 3);
    assert!(messages[0].reference.is_some() && messages[0].status_report);
    assert!(emulator.errors().is_empty(), "{:?}", emulator.errors());

    // The modem stores reports (+CDSI, CNMI ds=2); Huawei indexes start at 0.
    assert_eq!(emulator.report_all(0x00), 3);
    hub.wait_state(&id, "delivered").await;
    eventually("the reports to be deleted from the modem", || async {
        emulator.stored_indexes().is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn direct_status_reports_and_failed_deliveries() {
    // SIM800 accepts only ds=1: reports come as +CDS with their PDU.
    let (hub, _modems, emulator, status) = hub_with_modem("simcom_sim800").await;
    assert_eq!(status.cnmi.as_deref(), Some("2,1,0,1,0"));
    assert_eq!(status.sim.iccid.as_deref(), Some("89324102234690160476"));
    let device_id = status.device_id.expect("device id");
    let delivered = hub
        .send_sms(json!({"phone_number": "+213661234567", "message": "Salam", "device_id": device_id, "delivery_report": true}))
        .await;
    hub.wait_state(&delivered, "sent").await;
    assert_eq!(emulator.report_all(0x00), 1);
    hub.wait_state(&delivered, "delivered").await;

    let expired = hub
        .send_sms(json!({"phone_number": "+213661234567", "message": "Late", "device_id": device_id, "delivery_report": true}))
        .await;
    hub.wait_state(&expired, "sent").await;
    assert_eq!(
        emulator.report_all(0x46),
        1,
        "TP-ST 0x46: validity period expired"
    );
    let failed = hub.wait_state(&expired, "failed").await;
    assert_eq!(failed["error"]["code"], "delivery_failed", "{failed}");
}

#[tokio::test]
async fn incoming_messages_reach_the_inbox_even_when_the_notification_is_lost() {
    let (hub, _modems, emulator, status) = hub_with_modem("huawei_e1752").await;
    let device_id = status.device_id.expect("device id");
    let index = emulator.deliver("+213661234567", "Salam, ça va ?", true);
    assert_eq!(index, 0, "Huawei storage starts at 0");
    let inbox = eventually("the first message in the inbox", || async {
        let (_, body) = hub.get("/api/sms/inbox").await;
        (body["total"] == 1).then_some(body)
    })
    .await;
    let first = &inbox["messages"][0];
    assert_eq!(
        (first["sender"].as_str(), first["message"].as_str()),
        (Some("+213661234567"), Some("Salam, ça va ?"))
    );
    assert_eq!(first["device_id"], device_id.as_str());

    // Stored without +CMTI: only the AT+CMGL=4 sweep can find it.
    emulator.deliver("+213550000000", "Lost notification", false);
    eventually("the swept message in the inbox", || async {
        let (_, body) = hub.get("/api/sms/inbox").await;
        (body["total"] == 2).then_some(())
    })
    .await;
    eventually("the messages to be deleted from the modem", || async {
        emulator.stored_indexes().is_empty().then_some(())
    })
    .await;
    // A sweep that finds it again (deletion is after storing) does not store it twice.
    let (_, body) = hub.get("/api/sms/inbox").await;
    assert_eq!(body["total"], 2, "{body}");
}

#[tokio::test]
async fn ussd_and_balance_in_both_forms() {
    // Huawei: packed GSM 7-bit hex both ways.
    let (_hub, modems, emulator, status) = hub_with_modem("huawei_e1752").await;
    let answer = modems.ussd(&status.port, "*710#").await.expect("ussd");
    assert_eq!(answer.text.as_deref(), Some("Internet: 2.5 Go restants"));
    assert!(
        emulator
            .commands()
            .iter()
            .any(|it| it.starts_with("AT+CUSD=1,\"") && !it.contains('*')),
        "sent packed"
    );
    let balance = modems.balance(&status.port).await.expect("balance");
    assert_eq!(
        (balance.operator.as_deref(), balance.code.as_str()),
        (Some("Djezzy"), "*100#")
    );
    assert_eq!(balance.amount, Some(1250.5), "{balance:?}");
    assert!(modems.ussd(&status.port, "rm -rf").await.is_err());

    // SIM800: plain text, and an extra "+CUSD: 2,"Initiating Release"" before the answer.
    let (_hub2, modems2, _emulator2, status2) = hub_with_modem("simcom_sim800").await;
    let balance = modems2.balance(&status2.port).await.expect("balance");
    assert_eq!(
        (balance.operator.as_deref(), balance.amount),
        (Some("Mobilis"), Some(320.0)),
        "{balance:?}"
    );
    let answer = modems2.ussd(&status2.port, "*222#").await.expect("ussd");
    assert_eq!(
        (answer.status, answer.text.as_deref()),
        ("done", Some("Solde 45 DA"))
    );
}

#[tokio::test]
async fn errors_are_classified_and_an_unanswered_pdu_is_never_resent() {
    let (hub, _modems, emulator, status) = hub_with_modem("simcom_sim800").await;
    let device_id = status.device_id.expect("device id");

    // CMS 38 "network out of order" is temporary: back to the queue, sent on the next attempt.
    emulator.refuse_next_pdu(38);
    let retried = hub
        .send_sms(
            json!({"phone_number": "+213661234567", "message": "one", "device_id": device_id}),
        )
        .await;
    let sent = hub.wait_state(&retried, "sent").await;
    assert_eq!(sent["attempts"], 2, "{sent}");
    assert_eq!(emulator.pdu_count(), 2);

    // CMS 1 "unassigned number" is permanent for this recipient.
    emulator.refuse_next_pdu(1);
    let refused = hub
        .send_sms(
            json!({"phone_number": "+213661234567", "message": "two", "device_id": device_id}),
        )
        .await;
    let failed = hub.wait_state(&refused, "failed").await;
    assert_eq!(
        (
            failed["error"]["code"].as_str(),
            failed["error"]["temporary"].as_bool()
        ),
        (Some("invalid_recipient"), Some(false)),
        "{failed}"
    );
    assert_eq!(emulator.pdu_count(), 3);

    emulator.swallow_next_pdu();
    let lost = hub
        .send_sms(
            json!({"phone_number": "+213661234567", "message": "three", "device_id": device_id}),
        )
        .await;
    let failed = hub.wait_state(&lost, "failed").await;
    assert_eq!(
        (
            failed["error"]["code"].as_str(),
            failed["error"]["temporary"].as_bool()
        ),
        (Some("outcome_unknown"), Some(false)),
        "{failed}"
    );
    assert_eq!(
        emulator.pdu_count(),
        4,
        "the unanswered PDU was written once"
    );

    // The modem goes on working.
    let ok = hub
        .send_sms(
            json!({"phone_number": "+213661234567", "message": "four", "device_id": device_id}),
        )
        .await;
    hub.wait_state(&ok, "sent").await;
    assert_eq!(emulator.pdu_count(), 5);
}

#[tokio::test]
async fn unplug_takes_the_modem_offline_and_replug_brings_it_back() {
    let (hub, modems, emulator, status) = hub_with_modem("huawei_e1752").await;
    let device_id = status.device_id.clone().expect("device id");
    assert_eq!(device(&hub, &device_id).await["online"], true);

    // Pulled out while a PDU waits for its answer: the message may have gone out.
    emulator.swallow_next_pdu();
    let cut = hub
        .send_sms(
            json!({"phone_number": "+213661234567", "message": "cut", "device_id": device_id}),
        )
        .await;
    eventually("the PDU to be written", || async {
        (emulator.pdu_count() == 1).then_some(())
    })
    .await;
    emulator.unplug();
    eventually("the modem to go offline", || async {
        (device(&hub, &device_id).await["online"] == false).then_some(())
    })
    .await;
    let failed = hub.wait_state(&cut, "failed").await;
    assert_eq!(failed["error"]["code"], "outcome_unknown", "{failed}");
    assert_ne!(
        modems.status(&device_id).map(|it| it.state).ok(),
        Some(ModemState::Ready)
    );

    // The same stick comes back (a new pty; the kernel may even give it the same path).
    let again = Emulator::start(profile("huawei_e1752"));
    let back = modems.connect(hub.hub.clone(), &again.path).await;
    assert_eq!(back.state, ModemState::Ready, "{back:?}");
    assert_eq!(
        back.device_id.as_deref(),
        Some(device_id.as_str()),
        "the IMEI keys the device"
    );
    eventually("the modem to be online again", || async {
        (device(&hub, &device_id).await["online"] == true).then_some(())
    })
    .await;
    let (_, devices) = hub.get("/api/devices").await;
    let modems_listed = devices["devices"]
        .as_array()
        .map_or(0, |it| it.iter().filter(|d| d["kind"] == "modem").count());
    assert_eq!(modems_listed, 1, "one device per IMEI: {devices}");

    // Detaching ends the session for good; so does stopping every modem.
    modems.disconnect(&device_id).await.expect("detached");
    eventually("the modem to go offline", || async {
        (device(&hub, &device_id).await["online"] == false).then_some(())
    })
    .await;
    modems.stop_all().await;
    assert!(modems.status_list().is_empty());
}
