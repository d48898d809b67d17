//! Device protocol v1 over a real WebSocket: authentication, sessions, the job protocol and
//! its guarantees across disconnects, replacements and restarts.
//! Each runs twice, on SQLite and on PostgreSQL (`on_both_databases!`).

use std::time::Duration;

use serde_json::{Value, json};
use smshub_protocol::device::{
    Battery, Delivered, DeviceFrame, Failed, HeldJob, HeldPhase, HubFrame, Incoming, JobIds,
    Rejected, ReportKind, Sent, Status,
};

use crate::support::{RawPhone, TestHub};

async fn wrong_or_missing_tokens_are_refused_before_the_upgrade() {
    let hub = TestHub::spawn().await;
    let (id, token) = hub.add_device("phone").await;
    let (other, _) = hub.add_device("other").await;
    for (device, secret) in [
        (id.as_str(), "shd_wrong"),
        (other.as_str(), token.as_str()),
        ("no-such-device", token.as_str()),
    ] {
        let err = RawPhone::connect(&hub.base, device, secret)
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains("401"), "{err}");
    }
    // Without any token: 401 with the JSON error shape.
    let response = hub
        .http
        .get(hub.url(&format!("/ws/device/{id}")))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    // `?token=` is accepted for clients that cannot set headers.
    let url = format!(
        "{}/ws/device/{id}?token={token}",
        hub.base.replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("query token accepted");
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"type":"hello","protocol":[1]}"#,
    ))
    .await
    .unwrap();
}

async fn malformed_frames_get_errors_and_the_session_goes_on() {
    let hub = TestHub::spawn().await;
    let (id, token) = hub.add_device("phone").await;
    let mut phone = RawPhone::connect(&hub.base, &id, &token).await.unwrap();
    phone.send_text(r#"{"type":"heartbeat"}"#).await;
    let check_error = |frame: HubFrame, code: &str| match frame {
        HubFrame::Error(err) => assert_eq!(err.code, code, "{err:?}"),
        other => panic!("expected error {code}, got {other:?}"),
    };
    check_error(phone.recv().await, "hello_required");
    phone.send_text("{{{{").await;
    check_error(phone.recv().await, "invalid_frame");
    phone.hello(4, None).await;
    for garbage in [
        "not json",
        r#"{"no":"type"}"#,
        r#"{"type":"warp-drive"}"#,
        r#"{"type":"sent"}"#,
        r#"{"type":"status","battery":{"level":"full"}}"#,
        "[1,2,3]",
        r#"{"type":"hello","protocol":[1]}"#,
    ] {
        phone.send_text(garbage).await;
        check_error(phone.recv().await, "invalid_frame");
    }
    phone
        .send_text(r#"{"type":"sent","id":"not-a-uuid"}"#)
        .await;
    check_error(phone.recv().await, "unknown_job");
    assert!(
        matches!(phone.recv().await, HubFrame::Ack(_)),
        "a report about an unknown id is acked so it stops"
    );
    // Still alive: heartbeats are answered.
    phone
        .send_text(r#"{"type":"heartbeat","extra":"ignored"}"#)
        .await;
    let (_, devices) = hub.get("/api/devices").await;
    assert_eq!(devices["devices"][0]["online"], true);

    // A phone speaking only an unknown version is told so and closed.
    let (id2, token2) = hub.add_device("future").await;
    let mut future = RawPhone::connect(&hub.base, &id2, &token2).await.unwrap();
    future
        .send_text(r#"{"type":"hello","protocol":[7,8]}"#)
        .await;
    check_error(future.recv().await, "unsupported_version");
    assert_eq!(future.closed().await, Some(4002));
}

async fn a_message_goes_from_api_to_phone_to_delivered() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("pixel", 80, false, -70, 4).await;
    let id =
        hub.send_sms(json!({"phone_number": "+14155552671", "message": "Hello €uro", "delivery_report": true})).await;

    let job = phone.expect_offer().await;
    assert_eq!(job.id, id);
    assert_eq!(job.to, "+14155552671");
    assert_eq!(job.text, "Hello €uro");
    assert!(job.delivery_report);
    assert_eq!(job.parts, 1);
    assert_eq!(job.sim_slot, Some(0));
    let message = hub.wait_state(&id, "dispatched").await;
    assert_eq!(message["device_id"], phone.id.as_str());

    phone.accept(&id).await;
    hub.wait_state(&id, "accepted").await;
    phone
        .send(&DeviceFrame::Sent(Sent {
            id: id.clone(),
            parts: 1,
            at: None,
        }))
        .await;
    expect_ack(&mut phone, &id, ReportKind::Sent).await;
    hub.wait_state(&id, "sent").await;
    phone
        .send(&DeviceFrame::Delivered(Delivered {
            id: id.clone(),
            at: None,
        }))
        .await;
    expect_ack(&mut phone, &id, ReportKind::Delivered).await;
    let message = hub.wait_state(&id, "delivered").await;
    for state in ["queued", "dispatched", "accepted", "sent", "delivered"] {
        assert!(
            message["states"][state].is_string(),
            "no time for {state}: {message}"
        );
    }
    assert!(message["error"].is_null());

    // Late and repeated reports are acknowledged and change nothing.
    phone
        .send(&DeviceFrame::Sent(Sent {
            id: id.clone(),
            parts: 1,
            at: None,
        }))
        .await;
    expect_ack(&mut phone, &id, ReportKind::Sent).await;
    phone
        .send(&DeviceFrame::Failed(Failed {
            id: id.clone(),
            code: "radio_off".into(),
            temporary: Some(true),
            reason: None,
        }))
        .await;
    expect_ack(&mut phone, &id, ReportKind::Failed).await;
    let after = hub.wait_state(&id, "delivered").await;
    assert_eq!(after["states"], message["states"]);
    assert!(after["error"].is_null());

    let (_, devices) = hub.get("/api/devices").await;
    let device = &devices["devices"][0];
    assert_eq!(device["sent_count"], 1);
    assert_eq!(device["failed_count"], 0);
    assert_eq!(device["battery"]["level"], 80);
    assert_eq!(device["sims"][0]["signal_dbm"], -70);
}

async fn failures_are_recorded_with_their_reason() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("pixel", 80, false, -70, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "hi"}))
        .await;
    phone.expect_offer().await;
    phone.accept(&id).await;
    phone
        .send(&DeviceFrame::Failed(Failed {
            id: id.clone(),
            code: "invalid_recipient".into(),
            temporary: None,
            reason: Some("RESULT_ERROR_GENERIC_FAILURE from SmsManager".into()),
        }))
        .await;
    expect_ack(&mut phone, &id, ReportKind::Failed).await;
    let message = hub.wait_state(&id, "failed").await;
    assert_eq!(message["error"]["code"], "invalid_recipient");
    assert_eq!(message["error"]["temporary"], false);
    assert_eq!(
        message["error"]["message"],
        "RESULT_ERROR_GENERIC_FAILURE from SmsManager"
    );
    let (_, devices) = hub.get("/api/devices").await;
    assert_eq!(devices["devices"][0]["failed_count"], 1);
}

async fn a_second_connection_replaces_the_first() {
    let hub = TestHub::spawn().await;
    let (id, token) = hub.add_device("phone").await;
    let mut first = RawPhone::connect(&hub.base, &id, &token).await.unwrap();
    first.hello(4, None).await;
    first.status(90, true, -60).await;
    let mut second = RawPhone::connect(&hub.base, &id, &token).await.unwrap();
    second.hello(4, None).await;
    second.status(90, true, -60).await;
    assert_eq!(
        first.closed().await,
        Some(4000),
        "the older socket is closed as replaced"
    );

    let sms = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "to the new session"}))
        .await;
    assert_eq!(second.expect_offer().await.id, sms);
    let (_, devices) = hub.get("/api/devices").await;
    assert_eq!(devices["devices"].as_array().unwrap().len(), 1);
    assert_eq!(devices["devices"][0]["online"], true);
}

async fn an_offer_lost_before_acceptance_goes_to_another_phone() {
    let hub = TestHub::spawn().await;
    let mut strong = hub.phone("strong", 100, true, -55, 4).await;
    let sms = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "hop"}))
        .await;
    let offered = strong.expect_offer().await;
    assert_eq!(offered.id, sms);
    let strong_id = strong.id.clone();
    strong.drop_connection();

    let mut weak = hub.phone("weak", 40, false, -100, 4).await;
    let job = weak.expect_offer().await;
    assert_eq!(job.id, sms, "the lost offer is offered again");
    weak.accept(&sms).await;
    let message = hub.wait_state(&sms, "accepted").await;
    assert_eq!(message["device_id"], weak.id.as_str());
    assert_eq!(message["attempts"], 2);
    assert_ne!(message["device_id"], strong_id.as_str());
}

async fn a_returning_phone_is_told_to_drop_an_offer_given_to_another() {
    let hub = TestHub::spawn().await;
    let (strong_id, strong_token) = hub.add_device("strong").await;
    let mut strong = RawPhone::connect(&hub.base, &strong_id, &strong_token)
        .await
        .unwrap();
    strong.hello(4, None).await;
    strong.status(100, true, -55).await;
    let sms = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "hop"}))
        .await;
    assert_eq!(strong.expect_offer().await.id, sms);
    strong.drop_connection();

    let mut weak = hub.phone("weak", 40, false, -100, 4).await;
    assert_eq!(weak.expect_offer().await.id, sms);
    weak.accept(&sms).await;

    let mut back = RawPhone::connect(&hub.base, &strong_id, &strong_token)
        .await
        .unwrap();
    back.hello(
        4,
        Some(vec![HeldJob {
            id: sms.clone(),
            phase: HeldPhase::Accepted,
        }]),
    )
    .await;
    match back.recv().await {
        HubFrame::Revoke(revoke) => assert_eq!(revoke.ids, vec![sms.clone()]),
        other => panic!("expected revoke, got {other:?}"),
    }
    let message = hub.wait_state(&sms, "accepted").await;
    assert_eq!(message["device_id"], weak.id.as_str());
}

async fn an_accepted_job_stays_with_its_phone_across_a_reconnect() {
    let hub = TestHub::spawn().await;
    let (id, token) = hub.add_device("owner").await;
    let mut owner = RawPhone::connect(&hub.base, &id, &token).await.unwrap();
    owner.hello(4, None).await;
    owner.status(100, true, -55).await;
    let sms = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "mine"}))
        .await;
    assert_eq!(owner.expect_offer().await.id, sms);
    owner.accept(&sms).await;
    owner.drop_connection();

    // Another healthy phone is online, but the job is not offered to it: it may already
    // have gone out from the first phone.
    let mut other = hub.phone("other", 100, true, -50, 4).await;
    assert!(
        other.try_recv(Duration::from_millis(500)).await.is_none(),
        "an accepted job was offered again"
    );

    let mut back = RawPhone::connect(&hub.base, &id, &token).await.unwrap();
    back.hello(
        4,
        Some(vec![HeldJob {
            id: sms.clone(),
            phase: HeldPhase::Committed,
        }]),
    )
    .await;
    // The job is still the phone's: no revoke, and no second commit (it already has one).
    assert!(
        back.try_recv(Duration::from_millis(300)).await.is_none(),
        "the phone was told something about its own job"
    );
    back.send(&DeviceFrame::Sent(Sent {
        id: sms.clone(),
        parts: 1,
        at: None,
    }))
    .await;
    expect_ack(&mut back, &sms, ReportKind::Sent).await;
    let message = hub.wait_state(&sms, "sent").await;
    assert_eq!(message["device_id"], id.as_str());
    assert_eq!(message["attempts"], 1);
}

async fn incoming_sms_are_stored_once_and_acked() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("pixel", 80, false, -70, 4).await;
    let frame = DeviceFrame::Incoming(Incoming {
        id: "in-1".into(),
        from: "+14155550123".into(),
        text: "STOP".into(),
        sim_slot: Some(0),
        received_at: Some("2026-11-22T10:00:00Z".into()),
    });
    phone.send(&frame).await;
    expect_ack(&mut phone, "in-1", ReportKind::Incoming).await;
    phone.send(&frame).await;
    expect_ack(&mut phone, "in-1", ReportKind::Incoming).await;
    let (_, inbox) = hub.get("/api/sms/inbox").await;
    assert_eq!(inbox["total"], 1, "{inbox}");
    assert_eq!(inbox["messages"][0]["sender"], "+14155550123");
    assert_eq!(inbox["messages"][0]["message"], "STOP");
    assert_eq!(
        inbox["messages"][0]["received_at"],
        "2026-11-22T10:00:00.000Z"
    );

    // `q` searches the sender and the text, case-blind, `%` and `_` taken literally.
    phone
        .send(&DeviceFrame::Incoming(Incoming {
            id: "in-2".into(),
            from: "+14155550999".into(),
            text: "50% off_today".into(),
            sim_slot: Some(0),
            received_at: Some("2026-11-22T10:05:00Z".into()),
        }))
        .await;
    expect_ack(&mut phone, "in-2", ReportKind::Incoming).await;
    for (q, senders) in [
        ("stop", vec!["+14155550123"]),
        ("0123", vec!["+14155550123"]),
        ("OFF_", vec!["+14155550999"]),
        ("%25", vec!["+14155550999"]),
        ("_", vec!["+14155550999"]),
        ("%25off", vec![]),
        ("%2B1415555", vec!["+14155550999", "+14155550123"]),
    ] {
        let (status, body) = hub.get(&format!("/api/sms/inbox?q={q}")).await;
        assert_eq!(status, 200, "{q}: {body}");
        let found: Vec<&str> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|it| it["sender"].as_str().unwrap())
            .collect();
        assert_eq!(found, senders, "q={q}");
        assert_eq!(body["total"], senders.len(), "q={q}");
    }
    let long = "x".repeat(101);
    for bad in [
        "q=".to_string(),
        format!("q={long}"),
        "q=stop&since=2026-11-22T00:00:00Z".to_string(),
    ] {
        let (status, body) = hub.get(&format!("/api/sms/inbox?{bad}")).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (400, json!("invalid_query")),
            "{bad}"
        );
    }
}

async fn shutdown_closes_device_sockets_and_queued_work_survives_a_restart() {
    let mut hub = TestHub::spawn().await;
    let (id, token) = hub.add_device("phone").await;
    let mut phone = RawPhone::connect(&hub.base, &id, &token).await.unwrap();
    phone.hello(1, None).await;
    phone.status(80, false, -70).await;
    let first = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "one"}))
        .await;
    let second = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "two"}))
        .await;
    assert_eq!(phone.expect_offer().await.id, first);
    phone.accept(&first).await;
    // max_in_flight is 1, so `second` waits in the queue.
    assert!(phone.try_recv(Duration::from_millis(200)).await.is_none());

    let restarted = {
        let closing = tokio::spawn(async move { phone.closed().await });
        hub.shutdown().await;
        assert_eq!(
            closing.await.unwrap(),
            Some(1001),
            "devices are told the hub is going away"
        );
        hub.restart().await
    };
    let mut phone = RawPhone::connect(&restarted.base, &id, &token)
        .await
        .unwrap();
    phone
        .hello(
            1,
            Some(vec![HeldJob {
                id: first.clone(),
                phase: HeldPhase::Committed,
            }]),
        )
        .await;
    phone.status(80, false, -70).await;
    phone
        .send(&DeviceFrame::Sent(Sent {
            id: first.clone(),
            parts: 1,
            at: None,
        }))
        .await;
    expect_ack(&mut phone, &first, ReportKind::Sent).await;
    // With the slot free, the queued message rebuilt from the database is offered.
    assert_eq!(phone.expect_offer().await.id, second);
    restarted.wait_state(&first, "sent").await;
}

/// An offer out when the hub stops (a restart, or a cluster's leader dying) was lost by the
/// hub, not the phone: it goes back to the queue without using up an attempt, so failovers
/// never exhaust `max_attempts`.
async fn an_offer_out_at_a_restart_costs_no_attempt() {
    let mut hub = TestHub::spawn().await;
    let (id, token) = hub.add_device("phone").await;
    let sms = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "again and again"}))
        .await;
    for _ in 0..3 {
        let mut phone = RawPhone::connect(&hub.base, &id, &token).await.unwrap();
        phone.hello(1, None).await;
        phone.status(80, false, -70).await;
        assert_eq!(phone.expect_offer().await.id, sms);
        // Not accepted: the hub goes away with the offer out.
        let closing = tokio::spawn(async move { phone.closed().await });
        hub.shutdown().await;
        closing.await.unwrap();
        hub = hub.restart().await;
        let (_, message) = hub.get(&format!("/api/sms/{sms}")).await;
        assert_eq!(
            (&message["state"], &message["attempts"]),
            (&json!("queued"), &json!(0)),
            "{message}"
        );
    }
    let mut phone = RawPhone::connect(&hub.base, &id, &token).await.unwrap();
    phone.hello(1, None).await;
    phone.status(80, false, -70).await;
    assert_eq!(phone.expect_offer().await.id, sms);
    phone.accept(&sms).await;
    let message = hub.wait_state(&sms, "accepted").await;
    assert_eq!(message["attempts"], 1, "{message}");
}

/// A phone that says `accepted` again for a job it already reported `sent` gets no second
/// `commit`, and its `rejected unknown_job` for that job (what the spec tells it to answer a
/// commit it does not hold) cannot move the message back from `sent`.
async fn a_repeated_acceptance_after_sent_changes_nothing() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("pixel", 80, false, -70, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "hi"}))
        .await;
    phone.expect_offer().await;
    phone.accept(&id).await;
    phone
        .send(&DeviceFrame::Sent(Sent {
            id: id.clone(),
            parts: 1,
            at: None,
        }))
        .await;
    expect_ack(&mut phone, &id, ReportKind::Sent).await;
    let sent = hub.wait_state(&id, "sent").await;

    phone
        .send(&DeviceFrame::Accepted(JobIds {
            ids: vec![id.clone()],
        }))
        .await;
    if let Some(frame) = phone.try_recv(Duration::from_millis(500)).await {
        panic!("a repeated acceptance after sent was answered with {frame:?}");
    }
    phone
        .send(&DeviceFrame::Rejected(Rejected {
            ids: vec![id.clone()],
            reason: Some("unknown_job".into()),
        }))
        .await;
    let _ = phone.try_recv(Duration::from_millis(500)).await;
    let after = hub.wait_state(&id, "sent").await;
    assert_eq!(after["states"], sent["states"]);
    assert!(after["error"].is_null(), "{after}");
    let (_, devices) = hub.get("/api/devices").await;
    assert_eq!(devices["devices"][0]["failed_count"], 0);
    assert_eq!(devices["devices"][0]["in_flight"], 0);
}

/// A phone whose status lists no SIM has no slot to send with (spec 8.1: a slot missing from
/// `sims` is unavailable): it gets no job, and the message says why it waits.
async fn a_phone_that_reports_no_sim_gets_no_job() {
    let hub = TestHub::spawn().await;
    let (device, token) = hub.add_device("simless").await;
    let mut phone = RawPhone::connect(&hub.base, &device, &token)
        .await
        .expect("phone connects");
    phone.hello(4, None).await;
    phone
        .send(&DeviceFrame::Status(Status {
            battery: Some(Battery {
                level: 90,
                charging: true,
            }),
            sims: Vec::new(),
            connection: None,
        }))
        .await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "hi"}))
        .await;
    if let Some(frame) = phone.try_recv(Duration::from_millis(500)).await {
        panic!("a phone with no SIM was sent {frame:?}");
    }
    let message = hub.wait_state(&id, "queued").await;
    let reason = message["waiting_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("reports no SIM"), "{message}");

    let mut other = hub.phone("with-sim", 50, false, -90, 4).await;
    assert_eq!(other.expect_offer().await.id, id);
}

/// Liveness is judged by protocol frames (spec 2.3, 4.3): a phone that only sends WebSocket
/// pings is closed with 4003 after 3 heartbeat intervals without a frame, and goes offline.
async fn a_phone_that_only_pings_is_closed_as_silent() {
    let hub = TestHub::spawn_with(|config| config.heartbeat_s = 1).await;
    let mut phone = hub.phone("pinger", 80, false, -70, 4).await;
    let started = tokio::time::Instant::now();
    let closed = loop {
        phone.ping().await;
        if let Some(code) = tokio::time::timeout(Duration::from_millis(300), phone.closed())
            .await
            .ok()
            .flatten()
        {
            break Some(code);
        }
        if started.elapsed() > Duration::from_secs(8) {
            break None;
        }
    };
    assert_eq!(
        closed,
        Some(4003),
        "a pinging but silent phone stayed connected"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, devices) = hub.get("/api/devices").await;
        if devices["devices"][0]["online"] == false {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still online: {devices}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A frame over the 64 KiB limit is answered with close code 1009 (RFC 6455 "message too
/// big"), not a dropped connection.
async fn a_frame_over_the_limit_is_closed_with_1009() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("big", 80, false, -70, 4).await;
    phone.send_text(&"x".repeat(70 * 1024)).await;
    assert_eq!(phone.closed().await, Some(1009));
}

/// A `sent` with more parts than a concatenated SMS can have is refused as a bad frame (not
/// acked, so the device keeps it), instead of being stored as a wrapped number.
async fn a_sent_report_with_impossible_parts_is_refused() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("pixel", 80, false, -70, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "hi"}))
        .await;
    phone.expect_offer().await;
    phone.accept(&id).await;
    phone
        .send(&DeviceFrame::Sent(Sent {
            id: id.clone(),
            parts: u32::MAX,
            at: None,
        }))
        .await;
    match phone.recv().await {
        HubFrame::Error(error) => assert_eq!(error.code, "invalid_frame"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(hub.wait_state(&id, "accepted").await["state"], "accepted");
    phone
        .send(&DeviceFrame::Sent(Sent {
            id: id.clone(),
            parts: 1,
            at: None,
        }))
        .await;
    expect_ack(&mut phone, &id, ReportKind::Sent).await;
    assert_eq!(hub.wait_state(&id, "sent").await["parts"], 1);
}

async fn expect_ack(phone: &mut RawPhone, id: &str, kind: ReportKind) {
    match phone.recv().await {
        HubFrame::Ack(ack) => {
            assert_eq!(ack.reports.len(), 1);
            assert_eq!(ack.reports[0].id, id);
            assert_eq!(ack.reports[0].report, kind);
        }
        other => panic!("expected ack of {kind:?} for {id}, got {other:?}"),
    }
}

/// Sends `text` to +14155552671 through `phone`, the only phone: it takes the offer, accepts
/// it and reports it sent; returns once the hub has stored `sent`.
async fn sent_through(hub: &TestHub, phone: &mut RawPhone, text: &str) {
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": text}))
        .await;
    let job = phone.expect_offer().await;
    assert_eq!(job.id, id);
    phone.accept(&id).await;
    phone
        .send(&DeviceFrame::Sent(Sent {
            id: id.clone(),
            parts: 1,
            at: None,
        }))
        .await;
    expect_ack(phone, &id, ReportKind::Sent).await;
    hub.wait_state(&id, "sent").await;
}

/// A device's entry in `GET /api/devices` (issue 19): each SIM's limits and how much of each
/// it used, while the device is online, and what it sent and failed in the last 24 h.
#[tokio::test]
async fn a_devices_entry_shows_its_quota_used_and_its_last_day() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("counted", 80, false, -70, 4).await;
    let limits = hub
        .http
        .put(hub.url(&format!("/api/devices/{}/limits", phone.id)))
        .header("X-API-Key", &hub.api_key)
        .json(&json!({"per_hour": 3, "per_day": 5, "recipients_per_day": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(limits.status(), 200);
    let entry = |body: &Value| -> Value {
        body["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|it| it["name"] == "counted")
            .cloned()
            .expect("the device is listed")
    };
    let (_, body) = hub.get("/api/devices").await;
    let device = entry(&body);
    assert_eq!(
        device["quota"],
        json!([{"slot": 0,
            "limits": {"min_interval_ms": 0, "jitter_ms": 0, "per_hour": 3, "per_day": 5, "recipients_per_day": 2},
            "used_minute": 0, "used_hour": 0, "used_day": 0, "recipients_day": 0, "paced_until": null}]),
    );
    assert_eq!(
        (device["sent_24h"].clone(), device["failed_24h"].clone()),
        (json!(0), json!(0))
    );

    sent_through(&hub, &mut phone, "counted once").await;
    let (_, body) = hub.get("/api/devices").await;
    let quota = entry(&body)["quota"][0].clone();
    assert_eq!(
        [
            &quota["used_minute"],
            &quota["used_hour"],
            &quota["used_day"],
            &quota["recipients_day"]
        ],
        [&json!(1); 4],
        "{quota}"
    );
    // The last day comes from the hub's sampler, every 5 s.
    let device = crate::support::eventually("the last day to count the sent message", || async {
        let (_, body) = hub.get("/api/devices").await;
        let device = entry(&body);
        (device["sent_24h"] == 1).then_some(device)
    })
    .await;
    assert_eq!(device["failed_24h"], 0);
    assert_eq!(device["sent_count"], 1);

    // Offline, no quota is shown (the windows stay with the dispatcher).
    phone.drop_connection();
    crate::support::eventually("the device to be offline", || async {
        let (_, body) = hub.get("/api/devices").await;
        let device = entry(&body);
        (device["online"] == false).then_some(device)
    })
    .await;
    let (_, body) = hub.get("/api/devices").await;
    assert_eq!(entry(&body)["quota"], json!([]));
}

/// `GET /api/devices/{id}/history` (issue 19): a phone's minutes online, battery, signal and
/// what it sent, from the hub's 5 s sampler; a bad window is `400 invalid_window`, an unknown
/// device `404 not_found`, and a deleted device's history is gone with it.
#[tokio::test]
async fn a_devices_history_shows_it_online_with_its_battery_signal_and_what_it_sent() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("historian", 64, false, -77, 4).await;
    sent_through(&hub, &mut phone, "for the record").await;

    let path = format!("/api/devices/{}/history?window=1h", phone.id);
    let body = crate::support::eventually("the history to count the sent message", || async {
        let (status, body) = hub.get(&path).await;
        assert_eq!(status, 200, "{body}");
        let points = body["points"].as_array().expect("points");
        let sent: u64 = points.iter().map(|it| it["sent"].as_u64().unwrap()).sum();
        (sent == 1).then_some(body)
    })
    .await;
    assert_eq!(body["window"], "1h");
    assert_eq!(body["step_s"], 60);
    assert_eq!(body["device_id"], phone.id.as_str());
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 60);
    let last = points
        .iter()
        .rev()
        .find(|it| it["sampled_minutes"] == 1)
        .expect("a sampled minute");
    assert_eq!(last["battery"], 64, "{last}");
    assert_eq!(last["signal"], json!([{"slot": 0, "dbm": -77}]), "{last}");
    assert!(last["online_minutes"].as_f64().unwrap() > 0.0, "{last}");
    assert_eq!(
        points
            .iter()
            .map(|it| it["failed"].as_u64().unwrap())
            .sum::<u64>(),
        0
    );
    let periods = body["periods"].as_array().unwrap();
    // The current minute may not be sampled yet: online is the last state but unknown.
    let states: Vec<&str> = periods
        .iter()
        .map(|it| it["state"].as_str().unwrap())
        .collect();
    assert!(
        states.ends_with(&["online"]) || states.ends_with(&["online", "unknown"]),
        "{states:?}"
    );
    let minutes: u64 = periods
        .iter()
        .map(|it| it["minutes"].as_u64().unwrap())
        .sum();
    assert_eq!(minutes, 60);

    let (status, day) = hub
        .get(&format!("/api/devices/{}/history?window=24h", phone.id))
        .await;
    assert_eq!((status, day["step_s"].clone()), (200, json!(900)));
    assert_eq!(day["points"].as_array().unwrap().len(), 96);
    let (status, bad) = hub
        .get(&format!("/api/devices/{}/history?window=2d", phone.id))
        .await;
    assert_eq!(
        (status, bad["error"]["code"].clone()),
        (400, json!("invalid_window"))
    );
    let (status, bad) = hub
        .get(&format!("/api/devices/{}/history?days=1", phone.id))
        .await;
    assert_eq!(
        (status, bad["error"]["code"].clone()),
        (400, json!("invalid_query"))
    );
    for unknown in [
        "/api/devices/nosuch/history",
        "/api/devices/no%20such/history",
    ] {
        let (status, body) = hub.get(unknown).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (404, json!("not_found")),
            "{unknown}"
        );
    }
    let deleted = hub
        .http
        .delete(hub.url(&format!("/api/devices/{}", phone.id)))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, _) = hub.get(&path).await;
    assert_eq!(status, 404);
}

crate::on_both_databases!(
    wrong_or_missing_tokens_are_refused_before_the_upgrade,
    malformed_frames_get_errors_and_the_session_goes_on,
    a_message_goes_from_api_to_phone_to_delivered,
    failures_are_recorded_with_their_reason,
    a_second_connection_replaces_the_first,
    an_offer_lost_before_acceptance_goes_to_another_phone,
    a_returning_phone_is_told_to_drop_an_offer_given_to_another,
    an_accepted_job_stays_with_its_phone_across_a_reconnect,
    incoming_sms_are_stored_once_and_acked,
    shutdown_closes_device_sockets_and_queued_work_survives_a_restart,
    an_offer_out_at_a_restart_costs_no_attempt,
    a_repeated_acceptance_after_sent_changes_nothing,
    a_phone_that_reports_no_sim_gets_no_job,
    a_phone_that_only_pings_is_closed_as_silent,
    a_frame_over_the_limit_is_closed_with_1009,
    a_sent_report_with_impossible_parts_is_refused,
);
