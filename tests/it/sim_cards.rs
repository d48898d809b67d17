//! SIM cards as things an operator manages and routing by number, against a real hub with a
//! dual-SIM phone: a disabled SIM gets no job, a SIM's own limit holds, a send pinned to a
//! card goes through it, a routing rule sends +49 numbers only through the labelled SIM and a
//! message no SIM under its rule can take waits with a `waiting_reason` naming the rule; bad
//! input gets stable 4xx codes and changes nothing.
//! Each runs twice, on SQLite and on PostgreSQL (`on_both_databases!`).

use serde_json::{Value, json};
use smshub_protocol::device::{
    Battery, Capabilities, DeviceFrame, Hello, HubFrame, SimInfo, SimStatus, Status,
};

use crate::support::{RawPhone, TestHub, eventually};

const ICCID_0: &str = "89490200001111111111";
const ICCID_1: &str = "89490200002222222222";

/// A phone with two SIMs: slot 0 (Telekom, strong signal), slot 1 (Vodafone, weak), both
/// reported with their ICCIDs; returns it once the hub has both cards.
async fn dual_sim_phone(hub: &TestHub) -> RawPhone {
    let (id, token) = hub.add_device("dual").await;
    let mut phone = RawPhone::connect(&hub.base, &id, &token)
        .await
        .expect("phone connects");
    let sim = |slot: u8, iccid: &str, operator: &str| SimInfo {
        slot,
        operator: Some(operator.into()),
        iccid: Some(iccid.into()),
        ..Default::default()
    };
    phone
        .send(&DeviceFrame::Hello(Hello {
            protocol: vec![1],
            app_version: Some("test/1".into()),
            device: Default::default(),
            sims: vec![sim(0, ICCID_0, "Telekom"), sim(1, ICCID_1, "Vodafone")],
            capabilities: Capabilities {
                max_in_flight: 20,
                ..Capabilities::default()
            },
            jobs: None,
        }))
        .await;
    match phone.recv().await {
        HubFrame::Welcome(_) => {}
        other => panic!("expected welcome, got {other:?}"),
    }
    let signal = |slot: u8, dbm: i32| SimStatus {
        slot,
        signal_dbm: Some(dbm),
        registered: true,
        ..Default::default()
    };
    phone
        .send(&DeviceFrame::Status(Status {
            battery: Some(Battery {
                level: 90,
                charging: true,
            }),
            sims: vec![signal(0, -60), signal(1, -100)],
            connection: Some("wifi".into()),
        }))
        .await;
    eventually("both SIMs become cards", || async {
        let (_, cards) = hub.get("/api/sim-cards").await;
        (cards.as_array().map_or(0, Vec::len) == 2).then_some(())
    })
    .await;
    phone
}

/// The id of the card with this ICCID.
async fn card_id(hub: &TestHub, iccid: &str) -> String {
    let (_, cards) = hub.get("/api/sim-cards").await;
    cards
        .as_array()
        .unwrap()
        .iter()
        .find(|it| it["iccid"] == iccid)
        .and_then(|it| it["id"].as_str())
        .expect("the card")
        .to_string()
}

async fn patch(hub: &TestHub, path: &str, body: Value) -> (u16, Value) {
    let response = hub
        .http
        .patch(hub.url(path))
        .header("X-API-Key", &hub.api_key)
        .json(&body)
        .send()
        .await
        .expect("PATCH");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends to `to` and returns the slot of the offer the phone gets.
async fn offered_slot(hub: &TestHub, phone: &mut RawPhone, body: Value) -> Option<u8> {
    hub.send_sms(body).await;
    phone.expect_offer().await.sim_slot
}

async fn cards_list_live_signal_and_operator() {
    let hub = TestHub::spawn().await;
    let phone = dual_sim_phone(&hub).await;
    let id = card_id(&hub, ICCID_0).await;
    let (status, card) = hub.get(&format!("/api/sim-cards/{id}")).await;
    assert_eq!(status, 200, "{card}");
    assert_eq!(card["device_id"], phone.id.as_str());
    assert_eq!(card["slot"], 0);
    assert_eq!(card["operator"], "Telekom");
    assert_eq!(card["status"], "active");
    assert_eq!(card["online"], true);
    assert_eq!(card["signal_dbm"], -60);
    assert_eq!(card["sent_today"], 0);
}

async fn a_disabled_sim_gets_no_jobs_and_pinning_picks_the_card() {
    let hub = TestHub::spawn().await;
    let mut phone = dual_sim_phone(&hub).await;
    let strong = card_id(&hub, ICCID_0).await;
    let weak = card_id(&hub, ICCID_1).await;
    let to = |n: u32| json!({"phone_number": format!("+3361234{n:04}"), "message": "hi"});

    // The strong SIM takes everything while enabled.
    assert_eq!(offered_slot(&hub, &mut phone, to(1)).await, Some(0));
    let (status, body) = patch(
        &hub,
        &format!("/api/sim-cards/{strong}"),
        json!({"enabled": false}),
    )
    .await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("disabled")),
        "{body}"
    );
    for n in 2..5 {
        assert_eq!(offered_slot(&hub, &mut phone, to(n)).await, Some(1));
    }
    // A send pinned to a disabled card is refused, and stores nothing.
    let before = hub.message_count().await;
    let (status, body) = hub
        .post(
            "/api/send-sms",
            json!({"phone_number": "+33612340009", "message": "x", "sim_card_id": strong}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("sim_card_disabled"))
    );
    assert_eq!(hub.message_count().await, before);

    // Enabled again; pinned by id or by label, the weak SIM is used though the strong one
    // is better.
    patch(
        &hub,
        &format!("/api/sim-cards/{strong}"),
        json!({"status": "active"}),
    )
    .await;
    let (status, _) = patch(
        &hub,
        &format!("/api/sim-cards/{weak}"),
        json!({"label": "backup"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(offered_slot(&hub, &mut phone, to(5)).await, Some(0));
    let mut pinned = to(6);
    pinned["sim_card_id"] = json!(weak);
    assert_eq!(offered_slot(&hub, &mut phone, pinned).await, Some(1));
    let mut by_label = to(7);
    by_label["sim"] = json!("backup");
    assert_eq!(offered_slot(&hub, &mut phone, by_label).await, Some(1));

    // An idempotency key is bound to the card too: the same key naming another card is a
    // conflict, not a replay of the first send.
    let keyed = |card: &str| {
        let mut body = to(8);
        body["sim_card_id"] = json!(card);
        hub.http
            .post(hub.url("/api/send-sms"))
            .header("X-API-Key", &hub.api_key)
            .header("Idempotency-Key", "card-bound")
            .json(&body)
            .send()
    };
    assert_eq!(keyed(&weak).await.unwrap().status().as_u16(), 202);
    assert_eq!(keyed(&weak).await.unwrap().status().as_u16(), 200);
    assert_eq!(keyed(&strong).await.unwrap().status().as_u16(), 409);
}

async fn a_sims_own_limit_is_honoured() {
    let hub = TestHub::spawn().await;
    let mut phone = dual_sim_phone(&hub).await;
    let strong = card_id(&hub, ICCID_0).await;
    let (status, body) = patch(
        &hub,
        &format!("/api/sim-cards/{strong}"),
        json!({"limits": {"per_hour": 2}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["limits"]["per_hour"], 2);
    let mut slots = Vec::new();
    for n in 0..5 {
        let body = json!({"phone_number": format!("+3361234{n:04}"), "message": "hi"});
        slots.push(offered_slot(&hub, &mut phone, body).await);
    }
    assert_eq!(slots, vec![Some(0), Some(0), Some(1), Some(1), Some(1)]);
}

async fn a_routing_rule_sends_a_prefix_through_the_labelled_sim_or_holds_it() {
    let hub = TestHub::spawn().await;
    let mut phone = dual_sim_phone(&hub).await;
    let weak = card_id(&hub, ICCID_1).await;
    patch(
        &hub,
        &format!("/api/sim-cards/{weak}"),
        json!({"label": "de-sim"}),
    )
    .await;
    let (status, rule) = hub
        .post(
            "/api/routing-rules",
            json!({"name": "germany", "prefixes": ["+49"], "via_label": "de-sim", "priority": 10}),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    let german = |n: u32| json!({"phone_number": format!("+491511234{n:04}"), "message": "hallo"});
    for n in 0..3 {
        assert_eq!(offered_slot(&hub, &mut phone, german(n)).await, Some(1));
    }
    // Other numbers still take the best SIM.
    let french = json!({"phone_number": "+33612345678", "message": "salut"});
    assert_eq!(offered_slot(&hub, &mut phone, french).await, Some(0));

    // With the labelled SIM disabled, a German number waits, and says which rule holds it.
    patch(
        &hub,
        &format!("/api/sim-cards/{weak}"),
        json!({"enabled": false}),
    )
    .await;
    let id = hub.send_sms(german(9)).await;
    let reason = eventually("a waiting reason", || async {
        let (_, body) = hub.get(&format!("/api/sms/{id}")).await;
        body["waiting_reason"].as_str().map(str::to_string)
    })
    .await;
    assert!(reason.contains("routing rule \"germany\""), "{reason}");
    assert!(reason.contains("SIM 1 is disabled"), "{reason}");
    assert!(
        phone
            .try_recv(std::time::Duration::from_millis(300))
            .await
            .is_none()
    );

    // Deleting the rule lets the next German number through the best SIM.
    let rule_id = rule["id"].as_str().unwrap();
    let response = hub
        .http
        .delete(hub.url(&format!("/api/routing-rules/{rule_id}")))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    patch(
        &hub,
        &format!("/api/sim-cards/{weak}"),
        json!({"enabled": true}),
    )
    .await;
    let (_, rules) = hub.get("/api/routing-rules").await;
    assert_eq!(rules, json!([]));
}

async fn cards_and_rules_survive_a_restart() {
    let hub = TestHub::spawn().await;
    let phone = dual_sim_phone(&hub).await;
    let device = phone.id.clone();
    let strong = card_id(&hub, ICCID_0).await;
    patch(
        &hub,
        &format!("/api/sim-cards/{strong}"),
        json!({"enabled": false}),
    )
    .await;
    drop(phone);
    let hub = hub.restart().await;
    let (_, card) = hub.get(&format!("/api/sim-cards/{strong}")).await;
    assert_eq!(card["enabled"], false);
    assert_eq!(card["device_id"], device.as_str());
}

async fn bad_input_gets_stable_codes_and_changes_nothing() {
    let hub = TestHub::spawn().await;
    let _phone = dual_sim_phone(&hub).await;
    let id = card_id(&hub, ICCID_0).await;
    let cases = [
        ("/api/sim-cards", json!({}), 400, "missing_sim_identity"),
        (
            "/api/sim-cards",
            json!({"number": "+4915112345678"}),
            400,
            "missing_sim_identity",
        ),
        (
            "/api/sim-cards",
            json!({"iccid": "12"}),
            400,
            "invalid_iccid",
        ),
        (
            "/api/sim-cards",
            json!({"iccid": ICCID_0}),
            409,
            "sim_card_exists",
        ),
        (
            "/api/sim-cards",
            json!({"device_id": "dev_zzzzzzzzzzzzzzzz", "slot": 0}),
            400,
            "unknown_device",
        ),
        (
            "/api/sim-cards",
            json!({"iccid": "89490200003333333333", "slot": 9}),
            400,
            "invalid_sim_slot",
        ),
        (
            "/api/sim-cards",
            json!({"iccid": "89490200003333333333", "status": "maybe"}),
            400,
            "invalid_status",
        ),
        (
            "/api/sim-cards",
            json!({"iccid": "89490200003333333333", "colour": "red"}),
            400,
            "invalid_request",
        ),
        (
            "/api/routing-rules",
            json!({"name": "x", "prefixes": ["+49"]}),
            400,
            "invalid_via",
        ),
        (
            "/api/routing-rules",
            json!({"name": "x", "prefixes": ["49"], "via_label": "a"}),
            400,
            "invalid_prefix",
        ),
        (
            "/api/routing-rules",
            json!({"prefixes": ["+49"], "via_label": "a"}),
            400,
            "invalid_name",
        ),
        (
            "/api/send-sms",
            json!({"phone_number": "+33612345678", "message": "x", "sim_card_id": "nope"}),
            400,
            "unknown_sim_card",
        ),
        (
            "/api/send-sms",
            json!({"phone_number": "+33612345678", "message": "x", "sim_card_id": id, "sim_slot": 1}),
            400,
            "conflicting_sim",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, answer) = hub.post(path, body.clone()).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{path} {body}: {answer}"
        );
    }
    let (status, answer) = patch(
        &hub,
        &format!("/api/sim-cards/{id}"),
        json!({"status": "maybe"}),
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!("invalid_status"))
    );
    let (status, answer) = patch(
        &hub,
        "/api/sim-cards/0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b",
        json!({}),
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (404, &json!("not_found"))
    );
    // A card registered by ICCID that no device has reported cannot be pinned to.
    let (status, card) = hub
        .post(
            "/api/sim-cards",
            json!({"iccid": "89490200004444444444", "label": "spare"}),
        )
        .await;
    assert_eq!(status, 201, "{card}");
    let (status, answer) = hub
        .post(
            "/api/send-sms",
            json!({"phone_number": "+33612345678", "message": "x", "sim": "spare"}),
        )
        .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("sim_card_not_placed"))
    );
    // Nothing else changed: three cards, no rule, no message.
    let (_, cards) = hub.get("/api/sim-cards").await;
    assert_eq!(cards.as_array().unwrap().len(), 3);
    let (_, card) = hub.get(&format!("/api/sim-cards/{id}")).await;
    assert_eq!(card["status"], "active");
    assert_eq!(hub.get("/api/routing-rules").await.1, json!([]));
    assert_eq!(hub.message_count().await, 0);
}

crate::on_both_databases!(
    cards_list_live_signal_and_operator,
    a_disabled_sim_gets_no_jobs_and_pinning_picks_the_card,
    a_sims_own_limit_is_honoured,
    a_routing_rule_sends_a_prefix_through_the_labelled_sim_or_holds_it,
    cards_and_rules_survive_a_restart,
    bad_input_gets_stable_codes_and_changes_nothing,
);
