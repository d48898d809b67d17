//! Floods from one device (issue 13, defects 10 and 11): ids per frame are bounded, ids the
//! session never offered cost no database work, a device that keeps sending bad frames is
//! disconnected, and incoming SMS are rate-limited per device.

use std::time::Duration;

use serde_json::json;
use smshub_protocol::device::{DeviceFrame, HubFrame, Incoming, JobIds};

use crate::support::TestHub;

fn random_ids(count: usize) -> Vec<String> {
    (0..count)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect()
}

/// A frame naming more ids than the limit is refused whole with `too_many_ids`, and its ids
/// are not echoed back.
#[tokio::test]
async fn a_frame_with_too_many_ids_is_refused() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("flood", 80, false, -70, 4).await;
    phone
        .send(&DeviceFrame::Accepted(JobIds {
            ids: random_ids(1001),
        }))
        .await;
    match phone.recv().await {
        HubFrame::Error(error) => {
            assert_eq!(error.code, "too_many_ids");
            assert!(error.ids.is_empty());
        }
        other => panic!("expected too_many_ids, got {other:?}"),
    }
    // The session goes on: a real job still works.
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "after"}))
        .await;
    assert_eq!(phone.expect_offer().await.id, id);
    phone.accept(&id).await;
}

/// `accepted` for ids this session never offered is answered `revoke not_assigned` at once
/// (no database work); a device that keeps flooding such frames, or bad frames, is closed
/// with 1008 (policy violation), while another phone keeps its job flowing.
#[tokio::test]
async fn a_device_that_keeps_flooding_is_disconnected() {
    let hub = TestHub::spawn().await;
    let mut flood = hub.phone("flood", 80, false, -70, 4).await;
    let ids = random_ids(3);
    flood
        .send(&DeviceFrame::Accepted(JobIds { ids: ids.clone() }))
        .await;
    match flood.recv().await {
        HubFrame::Revoke(revoke) => {
            assert_eq!(revoke.ids, ids);
            assert_eq!(revoke.reason.as_deref(), Some("not_assigned"));
        }
        other => panic!("expected a revoke, got {other:?}"),
    }
    let mut closed = None;
    for _ in 0..200 {
        flood
            .send(&DeviceFrame::Accepted(JobIds {
                ids: random_ids(1000),
            }))
            .await;
        if let Ok(code) = tokio::time::timeout(Duration::from_millis(20), flood.closed()).await {
            closed = code;
            break;
        }
    }
    if closed.is_none() {
        closed = flood.closed().await;
    }
    assert_eq!(closed, Some(1008), "a flooding device stayed connected");

    let mut other = hub.phone("calm", 80, false, -70, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "calm"}))
        .await;
    assert_eq!(other.expect_offer().await.id, id);
    other.accept(&id).await;
}

/// Incoming SMS are rate-limited per device: past the limit, an `incoming` is not stored and
/// gets an `error` frame `rate_limited` naming it (no ack, so the device keeps it).
#[tokio::test]
async fn incoming_sms_are_rate_limited_per_device() {
    let hub = TestHub::spawn_with(|config| config.incoming_per_minute = 5).await;
    let mut phone = hub.phone("chatty", 80, false, -70, 4).await;
    for n in 0..8 {
        phone
            .send(&DeviceFrame::Incoming(Incoming {
                id: format!("in-{n}"),
                from: "+14155550123".into(),
                text: format!("message {n}"),
                sim_slot: Some(0),
                received_at: None,
            }))
            .await;
    }
    let mut acked = 0;
    let mut limited = Vec::new();
    while acked + limited.len() < 8 {
        match phone.recv().await {
            HubFrame::Ack(_) => acked += 1,
            HubFrame::Error(error) if error.code == "rate_limited" => limited.extend(error.ids),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(acked, 5);
    assert_eq!(limited, vec!["in-5", "in-6", "in-7"]);
    let (_, inbox) = hub.get("/api/sms/inbox").await;
    assert_eq!(inbox["total"], 5, "{inbox}");
}
