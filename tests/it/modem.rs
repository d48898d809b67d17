//! Serial modems as devices, end to end: a real hub, the modem transport driving an emulated
//! modem over a pty (`modem_emulator.rs`), and the REST API that exists today.
//!
//! Covered: a modem becomes an online device of kind "modem"; a long message sent through
//! `POST /api/send-sms` goes out as concatenated PDUs and becomes `sent`, then `delivered`
//! from status reports (`+CDSI` stored or `+CDS` direct, as the modem's `AT+CNMI` allows);
//! incoming SMS (`+CMTI`, and one whose notification was lost, found by the sweep) reach
//! `GET /api/sms/inbox`; USSD and balance (Huawei packed GSM 7-bit, and plain with an extra
//! release notice); a temporary CMS error retried, a permanent one failed, and a PDU never
//! answered (`outcome_unknown`, never resent); unplug and replug. Also: status reports matched
//! after a hub restart, a modem reopen and an MR wrap (references are stored); a long incoming
//! message reassembled from parts out of order (one found by the sweep) into one inbox entry,
//! and an incomplete one stored with what arrived after the wait; Huawei `^HCSQ` signal
//! (queried and unsolicited) when `+CSQ` says 99. libGammu reads every PDU the emulator
//! received in the send tests (`gammu.rs`). Waits are event-driven with a deadline (the pty
//! runs in real time).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use smshub::transport::attached::Modems;
use smshub::transport::hilink::HilinkConfig;
use smshub::transport::modem::{ModemConfig, Timeouts};
use smshub::transport::radio::{ModemState, ModemStatus};

use smshub_protocol::pdu::Address;

use crate::gammu::{Expected, check_received};
use crate::modem_emulator::{Emulator, profile};
use crate::support::{TestHub, eventually};

pub(crate) fn fast_config() -> ModemConfig {
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
    hub_with_modem_config(model, fast_config()).await
}

/// A hub with one emulated modem, driven with `config`, attached and ready.
pub(crate) async fn hub_with_modem_config(
    model: &str,
    config: ModemConfig,
) -> (TestHub, Arc<Modems>, Emulator, ModemStatus) {
    // Temporary failures come back quickly for a second attempt.
    let hub = TestHub::spawn_with(|config| {
        config.dispatch.retry_base_ms = 100;
        config.dispatch.retry_cap_ms = 200;
    })
    .await;
    let modems = Arc::new(Modems::new(
        config,
        HilinkConfig::default(),
        hub.link.clone(),
    ));
    let emulator = Emulator::start(profile(model));
    let status = modems.connect(&emulator.path).await;
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

    // A long UCS-2 text without a report, then libGammu reads every PDU the modem received.
    let arabic = "مرحبا بكم في خدمة الرسائل القصيرة، هذه رسالة طويلة تتجاوز سبعين حرفا. ".repeat(2);
    let second = hub
        .send_sms(json!({
            "phone_number": "+213550123456",
            "message": arabic,
            "device_id": device_id,
        }))
        .await;
    assert_eq!(hub.wait_state(&second, "sent").await["parts"], 3);
    check_received(
        &emulator,
        &[
            Expected {
                to: "+213770123456",
                text: &text,
                status_report: true,
            },
            Expected {
                to: "+213550123456",
                text: &arabic,
                status_report: false,
            },
        ],
    );
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
    check_received(
        &emulator,
        &[
            Expected {
                to: "+213661234567",
                text: "Salam",
                status_report: true,
            },
            Expected {
                to: "+213661234567",
                text: "Late",
                status_report: true,
            },
        ],
    );
}

#[tokio::test]
async fn status_reports_find_their_message_after_a_restart_a_reopen_and_an_mr_wrap() {
    // SIM800: reports come as +CDS with their PDU, straight to whoever holds the port.
    let hub = TestHub::spawn_with(|config| config.modems = fast_config()).await;
    let emulator = Emulator::start(profile("simcom_sim800"));
    let status = hub.modems.connect(&emulator.path).await;
    assert_eq!(status.state, ModemState::Ready, "{status:?}");
    let device_id = status.device_id.expect("device id");
    let text: String = "Rendez-vous demain a 10h, salle B. ".repeat(6);
    let long = hub
        .send_sms(json!({"phone_number": "+213661234567", "message": text, "device_id": device_id, "delivery_report": true}))
        .await;
    assert_eq!(hub.wait_state(&long, "sent").await["parts"], 2);
    assert_eq!(emulator.awaiting_reports().len(), 2);

    // The hub restarts on the same database before the network reports.
    let hub = hub.restart().await;
    let status = hub.modems.connect(&emulator.path).await;
    assert_eq!(status.state, ModemState::Ready, "{status:?}");
    assert_eq!(status.device_id.as_deref(), Some(device_id.as_str()));
    let (mr, _) = emulator.awaiting_reports()[0].clone();
    emulator.report(mr, &Address::parse("+213661234567").unwrap(), 0x00);
    // One part of two is not yet a delivery: its reference is settled, the other waits.
    let uuid = uuid::Uuid::parse_str(&long).unwrap();
    eventually("the first report to be taken", || async {
        let waiting = hub.store.modem_refs_of(uuid).await.ok()?;
        (waiting.len() == 1).then_some(())
    })
    .await;
    let (_, body) = hub.get(&format!("/api/sms/{long}")).await;
    assert_eq!(body["state"], "sent", "{body}");
    assert_eq!(emulator.report_all(0x00), 1);
    hub.wait_state(&long, "delivered").await;

    // The modem is detached and attached again (a reopen) before the report comes.
    let short = hub
        .send_sms(json!({"phone_number": "+213661234567", "message": "Court", "device_id": device_id, "delivery_report": true}))
        .await;
    hub.wait_state(&short, "sent").await;
    hub.modems.disconnect(&device_id).await.expect("detached");
    let status = hub.modems.connect(&emulator.path).await;
    assert_eq!(status.state, ModemState::Ready, "{status:?}");
    assert_eq!(emulator.report_all(0x00), 1);
    hub.wait_state(&short, "delivered").await;

    // The MR wraps at 255: three parts get MR 7. A report names the MR and the recipient, and
    // the newest message to that recipient takes it.
    let mut sent = Vec::new();
    for (to, body) in [
        ("+213661234567", "old"),
        ("+213550000000", "other"),
        ("+213661234567", "new"),
    ] {
        emulator.set_next_mr(7);
        let id = hub
            .send_sms(json!({"phone_number": to, "message": body, "device_id": device_id, "delivery_report": true}))
            .await;
        hub.wait_state(&id, "sent").await;
        sent.push(id);
    }
    emulator.report(7, &Address::parse("+213550000000").unwrap(), 0x00);
    hub.wait_state(&sent[1], "delivered").await;
    emulator.report(7, &Address::parse("0661234567").unwrap(), 0x00);
    hub.wait_state(&sent[2], "delivered").await;
    let (_, old) = hub.get(&format!("/api/sms/{}", sent[0])).await;
    assert_eq!(
        old["state"], "sent",
        "the older message keeps waiting: {old}"
    );
    // A report for a reference nobody waits for changes nothing.
    emulator.report(200, &Address::parse("+213661234567").unwrap(), 0x00);
    let (_, old) = hub.get(&format!("/api/sms/{}", sent[0])).await;
    assert_eq!(old["state"], "sent", "{old}");
}

#[tokio::test]
async fn a_long_incoming_message_reaches_the_inbox_once_and_leaves_the_modem() {
    let (hub, _modems, emulator, status) = hub_with_modem("huawei_e1752").await;
    let device_id = status.device_id.expect("device id");
    let whole: String = (0..400)
        .map(|i| char::from(b'A' + (i % 26) as u8))
        .collect();
    let parts = [&whole[..153], &whole[153..306], &whole[306..]];
    // Out of order, and part 1's notification is lost: only the sweep finds it.
    let indexes = emulator.deliver_long(
        "+213661234567",
        &parts,
        42,
        &[(3, true), (1, false), (2, true)],
    );
    assert_eq!(indexes, vec![0, 1, 2], "Huawei storage starts at 0");
    let inbox = eventually("the reassembled message in the inbox", || async {
        let (_, body) = hub.get("/api/sms/inbox").await;
        (body["total"] == 1).then_some(body)
    })
    .await;
    let message = &inbox["messages"][0];
    assert_eq!(message["message"], whole.as_str(), "{inbox}");
    assert_eq!(message["sender"], "+213661234567", "{inbox}");
    assert_eq!(message["device_id"], device_id.as_str(), "{inbox}");
    eventually("the parts to be deleted from the modem", || async {
        emulator.stored_indexes().is_empty().then_some(())
    })
    .await;
    // Sweeps after that find nothing more, and nothing is stored twice.
    let sweeps = emulator
        .commands()
        .iter()
        .filter(|it| *it == "AT+CMGL=4")
        .count();
    eventually("two more sweeps", || async {
        (emulator
            .commands()
            .iter()
            .filter(|it| *it == "AT+CMGL=4")
            .count()
            >= sweeps + 2)
            .then_some(())
    })
    .await;
    let (_, body) = hub.get("/api/sms/inbox").await;
    assert_eq!(body["total"], 1, "{body}");
}

#[tokio::test]
async fn an_incomplete_long_message_is_stored_with_what_arrived_after_the_wait() {
    let config = ModemConfig {
        parts_wait: Duration::from_secs(1),
        ..fast_config()
    };
    let (hub, _modems, emulator, _status) = hub_with_modem_config("huawei_e1752", config).await;
    // Part 2 of 3 never comes; the sweep reads parts 1 and 3 again every 500 ms, which must
    // not keep them waiting forever.
    emulator.deliver_long(
        "+213550000000",
        &["Debut du message, ", "(perdu) ", "et la fin."],
        7,
        &[(1, true), (3, false)],
    );
    let inbox = eventually("the incomplete message in the inbox", || async {
        let (_, body) = hub.get("/api/sms/inbox").await;
        (body["total"] == 1).then_some(body)
    })
    .await;
    assert_eq!(
        inbox["messages"][0]["message"],
        "Debut du message, […]et la fin. [incomplete: 2 of 3 parts]",
        "{inbox}"
    );
    eventually("the parts to be deleted from the modem", || async {
        emulator.stored_indexes().is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn huawei_lte_signal_comes_from_hcsq_when_csq_is_unknown() {
    // No periodic refresh in this test: only the modem's own ^HCSQ line can change the signal.
    let config = ModemConfig {
        refresh: Duration::from_secs(600),
        ..fast_config()
    };
    let (hub, modems, emulator, status) = hub_with_modem_config("huawei_e3372", config).await;
    let device_id = status.device_id.clone().expect("device id");
    // "+CSQ: 99,99" on LTE; ^HCSQ: "LTE",49,50,102,28.
    assert_eq!(status.network.signal_dbm, Some(-72), "{status:?}");
    assert_eq!(status.network.network_type.as_deref(), Some("lte"));
    let details = status
        .network
        .signal_details
        .clone()
        .expect("^HCSQ details");
    assert_eq!(
        (
            details.mode.as_str(),
            details.rsrp_dbm,
            details.rsrq_db,
            details.sinr_db
        ),
        ("LTE", Some(-91), Some(-6.0), Some(0.2))
    );
    assert!(emulator.commands().iter().any(|it| it == "AT^HCSQ?"));
    let sim = &device(&hub, &device_id).await["sims"][0];
    assert_eq!(sim["signal_dbm"], -72, "the dispatcher sees it: {sim}");

    emulator.urc("^HCSQ: \"LTE\",60,70,150,30");
    eventually("the unsolicited ^HCSQ to be taken", || async {
        let now = modems.status(&device_id).ok()?;
        (now.network.signal_dbm == Some(-61)).then_some(now)
    })
    .await;
    let now = modems.status(&device_id).unwrap();
    assert_eq!(
        now.network.signal_details.and_then(|it| it.rsrp_dbm),
        Some(-71)
    );
    eventually("the registry to show it", || async {
        (device(&hub, &device_id).await["sims"][0]["signal_dbm"] == -61).then_some(())
    })
    .await;
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
    let back = modems.connect(&again.path).await;
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
