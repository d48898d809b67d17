//! The spec's frame table (android-client-spec, section 8.3: every frame × every session
//! state → what the hub does), one test per row, in the table's order. Rows covered by a test
//! elsewhere name it.

use std::time::Duration;

use serde_json::json;
use smshub_protocol::device::{
    Capabilities, DeviceFrame, Failed, HeldJob, HeldPhase, Hello, HubFrame, Incoming, JobIds,
    Rejected, ReportKind, Sent, UssdError, UssdResult,
};

use crate::support::{RawPhone, TestHub};

/// A connected socket that has not said `hello`.
async fn fresh(hub: &TestHub, name: &str) -> RawPhone {
    let (id, token) = hub.add_device(name).await;
    RawPhone::connect(&hub.base, &id, &token)
        .await
        .expect("phone connects")
}

fn hello(protocol: Vec<u32>, jobs: Option<Vec<HeldJob>>) -> DeviceFrame {
    DeviceFrame::Hello(Hello {
        protocol,
        app_version: None,
        device: Default::default(),
        sims: Vec::new(),
        capabilities: Capabilities::default(),
        jobs,
    })
}

async fn expect_error(phone: &mut RawPhone, code: &str) -> Vec<String> {
    match phone.recv().await {
        HubFrame::Error(error) => {
            assert_eq!(error.code, code, "{error:?}");
            error.ids
        }
        other => panic!("expected error {code}, got {other:?}"),
    }
}

async fn expect_ack(phone: &mut RawPhone, id: &str, report: ReportKind) {
    match phone.recv().await {
        HubFrame::Ack(ack) => {
            assert_eq!(ack.reports[0].id, id);
            assert_eq!(ack.reports[0].report, report);
        }
        other => panic!("expected ack, got {other:?}"),
    }
}

/// The session still answers: a heartbeat gets a heartbeat.
async fn still_open(phone: &mut RawPhone) {
    phone.send_text(r#"{"type":"heartbeat"}"#).await;
    assert!(matches!(phone.recv_any().await, HubFrame::Heartbeat(_)));
}

/// An offered and accepted job on `phone`, returning its id.
async fn committed_job(hub: &TestHub, phone: &mut RawPhone) -> String {
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "table"}))
        .await;
    assert_eq!(phone.expect_offer().await.id, id);
    phone.accept(&id).await;
    id
}

// Row: hello, before hello, a version in common → welcome.
#[tokio::test]
async fn hello_opens_the_session() {
    let hub = TestHub::spawn().await;
    let mut phone = fresh(&hub, "p").await;
    phone.send(&hello(vec![1, 7], Some(Vec::new()))).await;
    match phone.recv().await {
        HubFrame::Welcome(welcome) => {
            assert_eq!(welcome.protocol, 1);
            assert_eq!(welcome.heartbeat_s, 30);
            assert_eq!(welcome.device_id, phone.id);
        }
        other => panic!("expected welcome, got {other:?}"),
    }
}

// Row: hello, before hello, no version in common → error unsupported_version, close 4002.
#[tokio::test]
async fn hello_without_a_common_version_is_closed_4002() {
    let hub = TestHub::spawn().await;
    let mut phone = fresh(&hub, "p").await;
    phone.send(&hello(vec![2], None)).await;
    expect_error(&mut phone, "unsupported_version").await;
    assert_eq!(phone.closed().await, Some(4002));
}

// Row: hello, before hello, more than 1000 held jobs → welcome, error too_many_ids, close 1008.
#[tokio::test]
async fn hello_with_too_many_jobs_is_closed_1008() {
    let hub = TestHub::spawn().await;
    let mut phone = fresh(&hub, "p").await;
    let jobs = (0..1001)
        .map(|_| HeldJob {
            id: uuid::Uuid::new_v4().to_string(),
            phase: HeldPhase::Accepted,
        })
        .collect();
    phone.send(&hello(vec![1], Some(jobs))).await;
    assert!(matches!(phone.recv().await, HubFrame::Welcome(_)));
    expect_error(&mut phone, "too_many_ids").await;
    assert_eq!(phone.closed().await, Some(1008));
}

// Row: hello, session open → error invalid_frame, ignored, the session goes on.
#[tokio::test]
async fn a_second_hello_is_an_error_and_changes_nothing() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("p", 80, false, -70, 4).await;
    phone.send(&hello(vec![1], Some(Vec::new()))).await;
    expect_error(&mut phone, "invalid_frame").await;
    still_open(&mut phone).await;
}

// Row: any other frame, before hello → error hello_required, ignored; then hello works.
#[tokio::test]
async fn frames_before_hello_get_hello_required() {
    let hub = TestHub::spawn().await;
    let mut phone = fresh(&hub, "p").await;
    for frame in [
        r#"{"type":"heartbeat"}"#,
        r#"{"type":"status","sims":[]}"#,
        r#"{"type":"accepted","ids":["x"]}"#,
        r#"{"type":"sent","id":"x"}"#,
    ] {
        phone.send_text(frame).await;
        expect_error(&mut phone, "hello_required").await;
    }
    // Not JSON, or an unknown type: invalid_frame, before hello too.
    phone.send_text("{nope").await;
    expect_error(&mut phone, "invalid_frame").await;
    // A binary frame before hello is ignored.
    phone.send_binary(b"\x00\x01").await;
    phone.hello(4, Some(Vec::new())).await;
}

// Row: a text frame over 64 KiB, before hello → close 1009 (open session: see
// device::a_frame_over_the_limit_is_closed_with_1009).
#[tokio::test]
async fn a_frame_over_the_limit_before_hello_is_closed_1009() {
    let hub = TestHub::spawn().await;
    let mut phone = fresh(&hub, "p").await;
    phone.send_text(&"x".repeat(70 * 1024)).await;
    assert_eq!(phone.closed().await, Some(1009));
}

// Row: status, session open → stored, used for routing, no answer; battery absent or null →
// unknown; battery.level over 100 → error invalid_frame, status ignored.
#[tokio::test]
async fn status_is_stored_and_a_battery_over_100_is_refused() {
    let hub = TestHub::spawn().await;
    let mut phone = fresh(&hub, "p").await;
    phone.hello(4, Some(Vec::new())).await;
    phone
        .send_text(
            r#"{"type":"status","battery":{"level":150,"charging":false},"sims":[{"slot":0}]}"#,
        )
        .await;
    expect_error(&mut phone, "invalid_frame").await;
    let (_, devices) = hub.get("/api/devices").await;
    assert!(devices["devices"][0]["battery"].is_null(), "{devices}");

    phone
        .send_text(r#"{"type":"status","battery":null,"sims":[{"slot":0,"signal_dbm":-70}]}"#)
        .await;
    // With battery unknown the phone is eligible: a job comes.
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "hi"}))
        .await;
    assert_eq!(phone.expect_offer().await.id, id);

    phone
        .send_text(
            r#"{"type":"status","battery":{"level":100,"charging":true},"sims":[{"slot":0}]}"#,
        )
        .await;
    assert!(phone.try_recv(Duration::from_millis(200)).await.is_none());
    crate::support::eventually("the status to show", || async {
        let (_, devices) = hub.get("/api/devices").await;
        (devices["devices"][0]["battery"]["level"] == 100).then_some(())
    })
    .await;
}

// Row: accepted, an offered id → commit (device::a_message_goes_from_api_to_phone_to_delivered);
// an id never offered in this session → revoke not_assigned at once; not a UUID → error
// unknown_job and revoke unknown_job; more than 1000 ids → error too_many_ids
// (flood::a_frame_with_too_many_ids_is_refused).
#[tokio::test]
async fn accepted_for_ids_never_offered() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("p", 80, false, -70, 4).await;
    let stranger = uuid::Uuid::new_v4().to_string();
    phone
        .send(&DeviceFrame::Accepted(JobIds {
            ids: vec![stranger.clone(), "not-a-uuid".into()],
        }))
        .await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(phone.recv().await);
    }
    assert!(seen.iter().any(|it| matches!(it, HubFrame::Revoke(r) if r.ids == vec![stranger.clone()] && r.reason.as_deref() == Some("not_assigned"))), "{seen:?}");
    assert!(seen.iter().any(|it| matches!(it, HubFrame::Error(e) if e.code == "unknown_job" && e.ids == vec!["not-a-uuid".to_string()])), "{seen:?}");
    assert!(
        seen.iter().any(
            |it| matches!(it, HubFrame::Revoke(r) if r.reason.as_deref() == Some("unknown_job"))
        ),
        "{seen:?}"
    );
}

// Row: rejected, an offered id → no answer; the job is offered elsewhere, this device only as
// a last resort; not a UUID → error unknown_job.
#[tokio::test]
async fn rejected_offers_go_elsewhere() {
    let hub = TestHub::spawn().await;
    let mut first = hub.phone("first", 100, true, -55, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "no"}))
        .await;
    assert_eq!(first.expect_offer().await.id, id);
    let mut second = hub.phone("second", 50, false, -90, 4).await;
    first
        .send(&DeviceFrame::Rejected(Rejected {
            ids: vec![id.clone(), "bad".into()],
            reason: Some("busy".into()),
        }))
        .await;
    expect_error(&mut first, "unknown_job").await;
    assert_eq!(second.expect_offer().await.id, id);
}

// Row: sent, failed, delivered → stored, ack; not a UUID → error unknown_job and ack; about a
// job that is not this worker's → ack, nothing changes.
#[tokio::test]
async fn reports_are_acked_whatever_they_name() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("p", 80, false, -70, 4).await;
    let mut other = hub.phone("q", 10, false, -70, 4).await;
    let id = committed_job(&hub, &mut phone).await;
    // The other phone reports on a job that is not its own: acked, nothing changes.
    other
        .send(&DeviceFrame::Failed(Failed {
            id: id.clone(),
            code: "rejected".into(),
            temporary: Some(false),
            reason: None,
        }))
        .await;
    expect_ack(&mut other, &id, ReportKind::Failed).await;
    assert_eq!(hub.wait_state(&id, "accepted").await["state"], "accepted");
    phone
        .send(&DeviceFrame::Sent(Sent {
            id: id.clone(),
            parts: 1,
            at: None,
        }))
        .await;
    expect_ack(&mut phone, &id, ReportKind::Sent).await;
    phone
        .send_text(r#"{"type":"delivered","id":"not-a-uuid"}"#)
        .await;
    expect_error(&mut phone, "unknown_job").await;
    expect_ack(&mut phone, "not-a-uuid", ReportKind::Delivered).await;
}

// Row: incoming → stored once, ack (device::incoming_sms_are_stored_once_and_acked); over the
// rate → error rate_limited (flood::incoming_sms_are_rate_limited_per_device); an id empty or
// over 128 characters → error invalid_frame, no ack.
#[tokio::test]
async fn incoming_with_a_bad_id_is_refused() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("p", 80, false, -70, 4).await;
    phone
        .send(&DeviceFrame::Incoming(Incoming {
            id: "x".repeat(129),
            from: "+14155550123".into(),
            text: "hi".into(),
            sim_slot: None,
            received_at: None,
        }))
        .await;
    expect_error(&mut phone, "invalid_frame").await;
    let (_, inbox) = hub.get("/api/sms/inbox").await;
    assert_eq!(inbox["total"], 0);
}

// Row: heartbeat → heartbeat.
#[tokio::test]
async fn heartbeat_is_answered() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("p", 80, false, -70, 4).await;
    still_open(&mut phone).await;
}

// Row: unknown type, invalid JSON, a field of the wrong type, session open → error
// invalid_frame, ignored, the session goes on.
#[tokio::test]
async fn malformed_frames_are_invalid_frame() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("p", 80, false, -70, 4).await;
    for frame in [
        r#"{"type":"teleport"}"#,
        "[1,2]",
        r#"{"type":"sent","id":7}"#,
    ] {
        phone.send_text(frame).await;
        expect_error(&mut phone, "invalid_frame").await;
    }
    still_open(&mut phone).await;
}

// Row: a binary frame, session open → error invalid_frame, ignored.
#[tokio::test]
async fn a_binary_frame_is_invalid_frame() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("p", 80, false, -70, 4).await;
    phone.send_binary(b"{\"type\":\"heartbeat\"}").await;
    expect_error(&mut phone, "invalid_frame").await;
    still_open(&mut phone).await;
}

// Row (hub → worker): send to a worker that said delivery_reports: false → delivery_report is
// false, whatever the client asked.
#[tokio::test]
async fn no_delivery_report_is_asked_of_a_worker_without_them() {
    let hub = TestHub::spawn().await;
    let mut phone = fresh(&hub, "p").await;
    let capabilities = Capabilities {
        delivery_reports: false,
        ..Capabilities::default()
    };
    phone.hello_with(capabilities, Some(Vec::new())).await;
    phone.status(90, true, -70).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "hi", "delivery_report": true}))
        .await;
    let job = phone.expect_offer().await;
    assert_eq!(job.id, id);
    assert!(!job.delivery_report);
    assert!(job.sim_slot.is_some(), "the hub always names the SIM");
}

// Row (hub → worker): `ussd` goes only to a worker that announced `capabilities.ussd`; the
// others get none, and the API says 409 `ussd_unsupported`.
#[tokio::test]
async fn ussd_goes_only_to_workers_that_announced_it() {
    let hub = TestHub::spawn().await;
    let mut plain = fresh(&hub, "plain").await;
    plain
        .hello_with(Capabilities::default(), Some(Vec::new()))
        .await;
    let (status, body) = hub
        .post(
            &format!("/api/modems/{}/ussd", plain.id),
            json!({"code": "*100#"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "ussd_unsupported", "{body}");
    // Nothing was sent to it: the next frame is the answer to its heartbeat.
    still_open(&mut plain).await;

    let mut able = fresh(&hub, "able").await;
    let capabilities = Capabilities {
        ussd: true,
        ..Capabilities::default()
    };
    able.hello_with(capabilities, Some(Vec::new())).await;
    let path = format!("/api/modems/{}/ussd", able.id);
    let answer = |text: Option<&str>| {
        let text = text.map(str::to_string);
        move |request: smshub_protocol::device::UssdCommand| {
            let error = match text {
                Some(_) => None,
                None => Some(UssdError {
                    code: "network_timeout".into(),
                    message: "no answer".into(),
                }),
            };
            DeviceFrame::UssdResult(UssdResult {
                id: request.id,
                text: text.clone(),
                error,
            })
        }
    };
    for (body, reply, slot) in [
        (json!({"code": "*100#"}), answer(Some("Solde: 12 DA")), 0),
        (json!({"code": "*222#", "sim": 1}), answer(None), 1),
    ] {
        let device = async {
            match able.recv().await {
                HubFrame::Ussd(request) => {
                    assert_eq!(request.sim, slot, "{request:?}");
                    assert_eq!(request.code, body["code"], "{request:?}");
                    // An answer to no request is ignored, then the real one.
                    able.send(&reply(smshub_protocol::device::UssdCommand {
                        id: "nobody".into(),
                        ..request.clone()
                    }))
                    .await;
                    able.send(&reply(request)).await;
                }
                other => panic!("expected ussd, got {other:?}"),
            }
        };
        let ((status, answer), ()) = tokio::join!(hub.post(&path, body.clone()), device);
        if slot == 0 {
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["text"], "Solde: 12 DA", "{answer}");
            assert_eq!(answer["code"], "*100#", "{answer}");
        } else {
            assert_eq!(status, 502, "{answer}");
            assert_eq!(answer["error"]["code"], "modem_error", "{answer}");
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("network_timeout"), "{answer}");
        }
    }
    still_open(&mut able).await;
}

// Section 2.5: a device removed by an operator is closed with 4001.
#[tokio::test]
async fn a_removed_device_is_closed_4001() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("p", 80, false, -70, 4).await;
    let response = hub
        .http
        .delete(hub.url(&format!("/api/devices/{}", phone.id)))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    assert_eq!(phone.closed().await, Some(4001));
}

// Section 2.3: receivers MUST accept any RFC 3339 offset.
#[tokio::test]
async fn times_with_any_offset_are_accepted() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("p", 80, false, -70, 4).await;
    phone
        .send(&DeviceFrame::Incoming(Incoming {
            id: "in-offset".into(),
            from: "+14155550123".into(),
            text: "hi".into(),
            sim_slot: Some(0),
            received_at: Some("2026-11-22T11:30:00.250+01:30".into()),
        }))
        .await;
    expect_ack(&mut phone, "in-offset", ReportKind::Incoming).await;
    let (_, inbox) = hub.get("/api/sms/inbox").await;
    assert_eq!(
        inbox["messages"][0]["received_at"],
        "2026-11-22T10:00:00.250Z"
    );
}
