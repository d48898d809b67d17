//! Delivery guarantees through the real API: idempotency, cancel, validity, retries on
//! another device, back-pressure, per-device limits and the circuit breaker.
//! Each runs twice, on SQLite and on PostgreSQL (`on_both_databases!`).

use std::time::Duration;

use serde_json::json;
use smshub_protocol::device::{DeviceFrame, Failed, HubFrame, Rejected, ReportKind};

use crate::support::TestHub;

async fn a_repeated_request_returns_the_same_messages_and_a_conflicting_one_is_refused() {
    let hub = TestHub::spawn().await;
    let body = json!({"phone_numbers": ["+14155552671", "+442079460018"], "message": "once"});
    let send = |key: &'static str, body: serde_json::Value| {
        hub.http
            .post(hub.url("/api/send-sms"))
            .header("X-API-Key", &hub.api_key)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = send("order-42", body.clone()).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = send("order-42", body.clone()).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: serde_json::Value = again.json().await.unwrap();
    let ids = |it: &serde_json::Value| {
        it["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), ids(&again));
    assert_eq!(
        hub.message_count().await,
        2,
        "a repeat must not create messages"
    );

    let conflict = send(
        "order-42",
        json!({"phone_number": "+14155552671", "message": "different"}),
    )
    .await
    .unwrap();
    assert_eq!(conflict.status(), 409);
    let conflict: serde_json::Value = conflict.json().await.unwrap();
    assert_eq!(conflict["error"]["code"], "idempotency_conflict");

    // The body's `id` works the same way.
    let (status, a) = hub
        .post(
            "/api/send-sms",
            json!({"id": "client-7", "phone_number": "+14155552671", "message": "x"}),
        )
        .await;
    assert_eq!(status, 202);
    let (status, b) = hub
        .post(
            "/api/send-sms",
            json!({"id": "client-7", "phone_number": "+14155552671", "message": "x"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(a["id"], b["id"]);
    assert_eq!(hub.message_count().await, 3);
}

async fn request_options_are_checked() {
    let hub = TestHub::spawn().await;
    let past = "2020-01-01T00:00:00Z";
    for (body, code) in [
        (
            json!({"phone_number": "+14155552671", "message": "x", "ttl": 0}),
            "invalid_ttl",
        ),
        (
            json!({"phone_number": "+14155552671", "message": "x", "ttl": 5, "valid_until": "2099-01-01T00:00:00Z"}),
            "invalid_request",
        ),
        (
            json!({"phone_number": "+14155552671", "message": "x", "valid_until": past}),
            "invalid_valid_until",
        ),
        (
            json!({"phone_number": "+14155552671", "message": "x", "schedule_at": "tomorrow"}),
            "invalid_time",
        ),
        (
            json!({"phone_number": "+14155552671", "message": "x", "schedule_at": "2099-01-02T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"}),
            "invalid_schedule",
        ),
        (
            json!({"phone_number": "+14155552671", "message": "x", "priority": 1000}),
            "invalid_priority",
        ),
    ] {
        let (status, answer) = hub.post("/api/send-sms", body.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{body} -> {answer}"
        );
    }
    assert_eq!(hub.message_count().await, 0);
}

async fn a_message_can_be_cancelled_until_a_device_accepts_it() {
    let hub = TestHub::spawn().await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "never mind"}))
        .await;
    let (_, message) = hub.get(&format!("/api/sms/{id}")).await;
    assert_eq!(message["waiting_reason"], "no device is online");
    let response = hub
        .http
        .delete(hub.url(&format!("/api/sms/{id}")))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let message = hub.wait_state(&id, "cancelled").await;
    assert!(message["states"]["cancelled"].is_string());
    // A phone that comes online later is not offered it.
    let mut phone = hub.phone("late", 90, true, -60, 4).await;
    assert!(phone.try_recv(Duration::from_millis(300)).await.is_none());

    let taken = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "too late"}))
        .await;
    let job = phone.expect_offer().await;
    phone.accept(&job.id).await;
    let response = hub
        .http
        .delete(hub.url(&format!("/api/sms/{taken}")))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_cancellable");
    hub.wait_state(&taken, "accepted").await;
}

async fn an_offered_message_that_is_cancelled_is_revoked_from_the_phone() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("slow", 90, true, -60, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "stop"}))
        .await;
    assert_eq!(phone.expect_offer().await.id, id);
    let response = hub
        .http
        .delete(hub.url(&format!("/api/sms/{id}")))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    match phone.recv().await {
        HubFrame::Revoke(revoke) => assert_eq!(revoke.ids, vec![id.clone()]),
        other => panic!("expected revoke, got {other:?}"),
    }
    // Its late acceptance is refused.
    phone
        .send(&DeviceFrame::Accepted(smshub_protocol::device::JobIds {
            ids: vec![id.clone()],
        }))
        .await;
    assert!(matches!(phone.recv().await, HubFrame::Revoke(_)));
    hub.wait_state(&id, "cancelled").await;
}

async fn an_unsent_message_expires_and_is_never_offered() {
    let hub = TestHub::spawn().await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "soon stale", "ttl": 1}))
        .await;
    let message = hub.wait_state(&id, "expired").await;
    assert!(message["states"]["expired"].is_string());
    assert!(
        message["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|it| it["event"] == "expired")
    );
    let mut phone = hub.phone("late", 90, true, -60, 4).await;
    assert!(
        phone.try_recv(Duration::from_millis(300)).await.is_none(),
        "an expired job was offered"
    );
}

async fn a_temporary_failure_is_retried_on_another_phone() {
    let hub = TestHub::spawn_with(|config| config.dispatch.retry_base_ms = 100).await;
    let mut first = hub.phone("first", 100, true, -55, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "again"}))
        .await;
    assert_eq!(first.expect_offer().await.id, id);
    first.accept(&id).await;
    let mut second = hub.phone("second", 40, false, -100, 4).await;
    first
        .send(&DeviceFrame::Failed(Failed {
            id: id.clone(),
            code: "no_service".into(),
            temporary: Some(true),
            reason: Some("RESULT_ERROR_NO_SERVICE".into()),
        }))
        .await;
    match first.recv().await {
        HubFrame::Ack(ack) => assert_eq!(ack.reports[0].report, ReportKind::Failed),
        other => panic!("expected ack, got {other:?}"),
    }
    let job = second.expect_offer().await;
    assert_eq!(job.id, id, "retried on the other phone");
    second.accept(&id).await;
    second
        .send(&DeviceFrame::Sent(smshub_protocol::device::Sent {
            id: id.clone(),
            parts: 1,
            at: None,
        }))
        .await;
    assert!(matches!(second.recv().await, HubFrame::Ack(_)));
    let message = hub.wait_state(&id, "sent").await;
    assert_eq!(message["retried"], true);
    assert_eq!(message["attempts"], 2);
    assert_eq!(message["device_id"], second.id.as_str());
    let history = message["history"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|it| it["event"] == "retry" && it["device_id"] == first.id.as_str()),
        "{history:?}"
    );
    // The first attempt's error stays visible.
    assert_eq!(message["error"]["code"], "no_service");

    // A permanent failure fails at once.
    let permanent = hub
        .send_sms(
            json!({"phone_number": "+14155552671", "message": "doomed", "device_id": second.id}),
        )
        .await;
    assert_eq!(second.expect_offer().await.id, permanent);
    second.accept(&permanent).await;
    second
        .send(&DeviceFrame::Failed(Failed {
            id: permanent.clone(),
            code: "invalid_recipient".into(),
            temporary: None,
            reason: None,
        }))
        .await;
    let message = hub.wait_state(&permanent, "failed").await;
    assert_eq!(message["retried"], false);
    assert_eq!(message["error"]["temporary"], false);
}

/// `failed` without `temporary` is permanent whatever its code (spec §8.1): a phone that did
/// not promise the SMS stayed home never sees it offered again, nor does any other phone.
async fn a_failure_without_temporary_is_never_retried() {
    let hub = TestHub::spawn_with(|config| config.dispatch.retry_base_ms = 100).await;
    let mut first = hub.phone("first", 100, true, -55, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "once"}))
        .await;
    assert_eq!(first.expect_offer().await.id, id);
    first.accept(&id).await;
    let mut second = hub.phone("second", 100, true, -55, 4).await;
    first
        .send(&DeviceFrame::Failed(Failed {
            id: id.clone(),
            code: "generic_failure".into(),
            temporary: None,
            reason: None,
        }))
        .await;
    match first.recv().await {
        HubFrame::Ack(ack) => assert_eq!(ack.reports[0].report, ReportKind::Failed),
        other => panic!("expected ack, got {other:?}"),
    }
    let message = hub.wait_state(&id, "failed").await;
    assert_eq!(message["error"]["code"], "generic_failure");
    assert_eq!(message["error"]["temporary"], false);
    assert_eq!(message["retried"], false);
    for phone in [&mut first, &mut second] {
        assert!(
            phone.try_recv(Duration::from_millis(400)).await.is_none(),
            "a failure without the promise was offered again"
        );
    }
    assert_eq!(hub.wait_state(&id, "failed").await["state"], "failed");
}

async fn beyond_the_queue_limit_the_api_answers_503_with_retry_after() {
    let hub = TestHub::spawn_with(|config| {
        config.max_queued = 3;
    })
    .await;
    for n in 0..3 {
        hub.send_sms(json!({"phone_number": "+14155552671", "message": format!("{n}")}))
            .await;
    }
    // Give the dispatcher a moment to take the messages in.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let response = hub
            .http
            .post(hub.url("/api/send-sms"))
            .header("X-API-Key", &hub.api_key)
            .json(&json!({"phone_number": "+14155552671", "message": "one too many"}))
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            assert_eq!(response.headers()["retry-after"], "5");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "queue_full");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no back-pressure: {}",
            response.status()
        );
    }
    assert_eq!(
        hub.message_count().await,
        3,
        "a refused request stored something"
    );
}

async fn device_limits_are_set_through_the_api_and_a_failing_device_is_rested() {
    let hub = TestHub::spawn_with(|config| {
        config.dispatch.breaker_failures = 2;
        config.dispatch.breaker_rest_ms = 60_000;
    })
    .await;
    let mut phone = hub.phone("flaky", 90, true, -60, 4).await;
    let response = hub
        .http
        .put(hub.url(&format!("/api/devices/{}/limits", phone.id)))
        .header("X-API-Key", &hub.api_key)
        .json(&json!({"per_day": 500, "min_interval_ms": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = hub
        .http
        .put(hub.url(&format!("/api/devices/{}/limits", phone.id)))
        .header("X-API-Key", &hub.api_key)
        .json(&json!({"per_fortnight": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    for n in 0..2 {
        let id = hub
            .send_sms(json!({"phone_number": "+14155552671", "message": format!("{n}")}))
            .await;
        assert_eq!(phone.expect_offer().await.id, id);
        phone.accept(&id).await;
        phone
            .send(&DeviceFrame::Failed(Failed {
                id: id.clone(),
                code: "rejected".into(),
                temporary: Some(false),
                reason: None,
            }))
            .await;
        assert!(matches!(phone.recv().await, HubFrame::Ack(_)));
        hub.wait_state(&id, "failed").await;
    }
    let waiting = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "waits"}))
        .await;
    assert!(
        phone.try_recv(Duration::from_millis(300)).await.is_none(),
        "a rested device got work"
    );
    let (_, devices) = hub.get("/api/devices").await;
    let device = &devices["devices"][0];
    assert_eq!(device["limits"]["per_day"], 500);
    assert!(device["rested_until"].is_string(), "{device}");
    assert!(
        device["rest_reason"]
            .as_str()
            .unwrap()
            .contains("failures in a row"),
        "{device}"
    );
    let (_, message) = hub.get(&format!("/api/sms/{waiting}")).await;
    assert!(
        message["waiting_reason"]
            .as_str()
            .unwrap()
            .contains("rested"),
        "{message}"
    );
}

async fn a_job_a_phone_gives_back_unsent_goes_to_another_phone() {
    let hub = TestHub::spawn_with(|config| config.dispatch.retry_base_ms = 50).await;
    let mut first = hub.phone("first", 100, true, -55, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "hand back"}))
        .await;
    assert_eq!(first.expect_offer().await.id, id);
    first.accept(&id).await;
    let mut second = hub.phone("second", 40, false, -100, 4).await;
    // The phone lost the job before sending it (spec 5.4: `rejected` with `unknown_job`).
    first
        .send(&DeviceFrame::Rejected(smshub_protocol::device::Rejected {
            ids: vec![id.clone()],
            reason: Some("unknown_job".into()),
        }))
        .await;
    assert_eq!(
        second.expect_offer().await.id,
        id,
        "the job was not retried elsewhere"
    );
    let (_, message) = hub.get(&format!("/api/sms/{id}")).await;
    assert_eq!(message["retried"], true, "{message}");
}

async fn the_outbox_lists_what_went_out_newest_send_first() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("sender", 90, true, -60, 4).await;
    let mut sent = Vec::new();
    for text in ["first", "second"] {
        let id = hub
            .send_sms(json!({"phone_number": "+14155552671", "message": text}))
            .await;
        let job = phone.expect_offer().await;
        phone.accept(&job.id).await;
        phone
            .send(&DeviceFrame::Sent(smshub_protocol::device::Sent {
                id: id.clone(),
                parts: 1,
                at: None,
            }))
            .await;
        assert!(matches!(phone.recv().await, HubFrame::Ack(_)));
        hub.wait_state(&id, "sent").await;
        sent.push(id);
    }
    // Offered but not sent: not in the outbox.
    let waiting = hub
        .send_sms(json!({"phone_number": "+442079460018", "message": "not yet"}))
        .await;
    assert_eq!(phone.expect_offer().await.id, waiting);

    let (status, outbox) = hub.get("/api/sms/outbox").await;
    assert_eq!(status, 200, "{outbox}");
    assert_eq!(outbox["total"], 2, "{outbox}");
    let ids: Vec<&str> = outbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [sent[1].as_str(), sent[0].as_str()]);

    let (_, filtered) = hub
        .get("/api/sms/outbox?phone_number=%2B442079460018")
        .await;
    assert_eq!(filtered["total"], 0, "{filtered}");
    let (status, refused) = hub.get("/api/sms/outbox?state=queued").await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["code"], "invalid_query");
}

/// A rejection changes routing: a phone that refuses with `permission_denied` (it cannot send
/// at all) is rested at once and shown so, and the job goes to another phone; a phone that
/// refuses everything for another reason is rested by the breaker after a few offers instead
/// of being offered the same job in a loop.
async fn a_rejection_changes_routing() {
    let hub = TestHub::spawn().await;
    let mut denied = hub.phone("denied", 100, true, -55, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "who sends"}))
        .await;
    assert_eq!(denied.expect_offer().await.id, id);
    denied
        .send(&DeviceFrame::Rejected(Rejected {
            ids: vec![id.clone()],
            reason: Some("permission_denied".into()),
        }))
        .await;
    assert!(
        denied.try_recv(Duration::from_millis(700)).await.is_none(),
        "offered again after permission_denied"
    );
    let (_, devices) = hub.get("/api/devices").await;
    let device = &devices["devices"][0];
    assert!(
        device["rest_reason"]
            .as_str()
            .is_some_and(|it| it.contains("permission_denied")),
        "{device}"
    );
    assert!(device["rested_until"].is_string(), "{device}");
    let mut other = hub.phone("other", 50, false, -90, 4).await;
    assert_eq!(other.expect_offer().await.id, id);

    // One phone that says `busy` to everything: a bounded number of offers, then a rest.
    let hub = TestHub::spawn().await;
    let mut busy = hub.phone("busy", 100, true, -55, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "later"}))
        .await;
    let mut offers = 0;
    while let Some(frame) = busy.try_recv(Duration::from_millis(700)).await {
        if let HubFrame::Send(job) = frame {
            assert_eq!(job.id, id);
            offers += 1;
            busy.send(&DeviceFrame::Rejected(Rejected {
                ids: vec![id.clone()],
                reason: Some("busy".into()),
            }))
            .await;
        }
        assert!(offers <= 5, "offered {offers} times in a row");
    }
    assert!(offers >= 1);
    let (_, devices) = hub.get("/api/devices").await;
    assert!(
        devices["devices"][0]["rested_until"].is_string(),
        "{devices}"
    );
}

/// Issue 15, bug 8: `failed outcome_unknown` (the hub's outcome timeout) says "we do not
/// know". A later `sent` from the phone that owned the job resolves it: the message moves to
/// `sent` (the one step back), then a `delivered` moves it on, and the history keeps both the
/// timeout and the resolution.
async fn a_late_sent_resolves_an_unknown_outcome() {
    let hub = TestHub::spawn_with(|config| config.dispatch.outcome_timeout_ms = 300).await;
    let mut phone = hub.phone("slow", 100, true, -55, 4).await;
    let id = hub
        .send_sms(
            json!({"phone_number": "+14155552671", "message": "late", "delivery_report": true}),
        )
        .await;
    assert_eq!(phone.expect_offer().await.id, id);
    phone.accept(&id).await;
    let failed = hub.wait_state(&id, "failed").await;
    assert_eq!(failed["error"]["code"], "outcome_unknown", "{failed}");

    phone
        .send(&DeviceFrame::Sent(smshub_protocol::device::Sent {
            id: id.clone(),
            parts: 1,
            at: None,
        }))
        .await;
    match phone.recv().await {
        HubFrame::Ack(ack) => assert_eq!(ack.reports[0].report, ReportKind::Sent),
        other => panic!("expected ack, got {other:?}"),
    }
    let sent = hub.wait_state(&id, "sent").await;
    let events: Vec<&str> = sent["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["event"].as_str().unwrap_or_default())
        .collect();
    let unknown = events.iter().position(|it| *it == "outcome_unknown");
    let resolved = events.iter().position(|it| *it == "resolved");
    assert!(
        unknown.is_some() && resolved.is_some() && unknown < resolved,
        "{events:?}"
    );
    phone
        .send(&DeviceFrame::Delivered(
            smshub_protocol::device::Delivered {
                id: id.clone(),
                at: None,
            },
        ))
        .await;
    assert!(matches!(phone.recv().await, HubFrame::Ack(_)));
    hub.wait_state(&id, "delivered").await;
}

/// Issue 15, bug 8: a late `delivered` (its `sent` lost) resolves an unknown outcome too,
/// while another failure stays final: a late `sent` for a job that failed for a real reason
/// changes nothing.
async fn only_an_unknown_outcome_is_resolved_by_a_late_report() {
    let hub = TestHub::spawn_with(|config| config.dispatch.outcome_timeout_ms = 300).await;
    let mut phone = hub.phone("slow", 100, true, -55, 4).await;
    let unknown = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "one"}))
        .await;
    assert_eq!(phone.expect_offer().await.id, unknown);
    phone.accept(&unknown).await;
    hub.wait_state(&unknown, "failed").await;
    phone
        .send(&DeviceFrame::Delivered(
            smshub_protocol::device::Delivered {
                id: unknown.clone(),
                at: None,
            },
        ))
        .await;
    assert!(matches!(phone.recv().await, HubFrame::Ack(_)));
    hub.wait_state(&unknown, "delivered").await;

    let refused = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "two"}))
        .await;
    assert_eq!(phone.expect_offer().await.id, refused);
    phone.accept(&refused).await;
    phone
        .send(&DeviceFrame::Failed(Failed {
            id: refused.clone(),
            code: "invalid_recipient".into(),
            temporary: Some(false),
            reason: None,
        }))
        .await;
    assert!(matches!(phone.recv().await, HubFrame::Ack(_)));
    hub.wait_state(&refused, "failed").await;
    phone
        .send(&DeviceFrame::Sent(smshub_protocol::device::Sent {
            id: refused.clone(),
            parts: 1,
            at: None,
        }))
        .await;
    assert!(matches!(phone.recv().await, HubFrame::Ack(_)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, message) = hub.get(&format!("/api/sms/{refused}")).await;
    assert_eq!(message["state"], "failed", "{message}");
    assert_eq!(message["error"]["code"], "invalid_recipient");
}

/// The events of a message's history, as (event, device) pairs in order.
fn history_of(message: &serde_json::Value) -> Vec<(String, String)> {
    message["history"]
        .as_array()
        .expect("a history")
        .iter()
        .map(|it| {
            (
                it["event"].as_str().unwrap_or_default().to_string(),
                it["device_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Issue 15, bug 9: the REST history is append-only. After a requeue (an offer lost) and a
/// retry (a temporary failure), the earlier attempts' `dispatched` and `accepted` are still
/// there, each with its device, in the order they happened.
async fn history_keeps_every_attempt() {
    let hub = TestHub::spawn_with(|config| config.dispatch.retry_base_ms = 100).await;
    let first = hub.phone("first", 100, true, -55, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "hist"}))
        .await;
    let mut first = first;
    assert_eq!(first.expect_offer().await.id, id);
    let first_id = first.id.clone();
    // The offer is lost: back to the queue, then to the second phone.
    first.drop_connection();
    let mut second = hub.phone("second", 100, true, -60, 4).await;
    assert_eq!(second.expect_offer().await.id, id);
    second.accept(&id).await;
    second
        .send(&DeviceFrame::Failed(Failed {
            id: id.clone(),
            code: "no_service".into(),
            temporary: Some(true),
            reason: None,
        }))
        .await;
    assert!(matches!(second.recv().await, HubFrame::Ack(_)));
    // The retry: only the second phone is online, so it gets the job again.
    assert_eq!(second.expect_offer().await.id, id);
    second.accept(&id).await;
    second
        .send(&DeviceFrame::Sent(smshub_protocol::device::Sent {
            id: id.clone(),
            parts: 1,
            at: None,
        }))
        .await;
    assert!(matches!(second.recv().await, HubFrame::Ack(_)));
    let message = hub.wait_state(&id, "sent").await;
    let two = second.id.clone();
    let expected: Vec<(String, String)> = [
        ("queued", ""),
        ("dispatched", first_id.as_str()),
        ("requeued", first_id.as_str()),
        ("dispatched", two.as_str()),
        ("accepted", two.as_str()),
        ("retry", two.as_str()),
        ("dispatched", two.as_str()),
        ("accepted", two.as_str()),
        ("sent", two.as_str()),
    ]
    .into_iter()
    .map(|(event, device)| (event.to_string(), device.to_string()))
    .collect();
    assert_eq!(history_of(&message), expected, "{message}");
}

crate::on_both_databases!(
    a_repeated_request_returns_the_same_messages_and_a_conflicting_one_is_refused,
    request_options_are_checked,
    a_message_can_be_cancelled_until_a_device_accepts_it,
    an_offered_message_that_is_cancelled_is_revoked_from_the_phone,
    an_unsent_message_expires_and_is_never_offered,
    a_temporary_failure_is_retried_on_another_phone,
    a_failure_without_temporary_is_never_retried,
    beyond_the_queue_limit_the_api_answers_503_with_retry_after,
    device_limits_are_set_through_the_api_and_a_failing_device_is_rested,
    a_job_a_phone_gives_back_unsent_goes_to_another_phone,
    the_outbox_lists_what_went_out_newest_send_first,
    a_rejection_changes_routing,
    a_late_sent_resolves_an_unknown_outcome,
    only_an_unknown_outcome_is_resolved_by_a_late_report,
    history_keeps_every_attempt,
);
