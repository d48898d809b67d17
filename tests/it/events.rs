//! The event log (issue 17): every change is an event, written in the change's transaction,
//! with a monotonic id, and consumers are woken after the commit.
//! Each runs twice, on SQLite and on PostgreSQL (`on_both_databases!`).

use serde_json::json;
use smshub::store::Event;
use smshub_protocol::device::{DeviceFrame, HubFrame};

use crate::support::{TestHub, eventually};

/// Every event so far, in order.
pub async fn all_events(hub: &TestHub) -> Vec<Event> {
    hub.store
        .events()
        .after(0, 10_000, None, None)
        .await
        .unwrap()
}

/// A message's life, from the key that sent it to its delivery report, is in the log in
/// order, each event naming the message, its device and its owner.
async fn a_message_life_is_in_the_log_in_order() {
    let hub = TestHub::spawn().await;
    let mut woken = hub.store.events().subscribe();
    let mut phone = hub.phone("p1", 80, false, -60, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "hi", "delivery_report": true}))
        .await;
    assert_eq!(phone.expect_offer().await.id, id);
    phone.accept(&id).await;
    phone
        .send(&DeviceFrame::Sent(smshub_protocol::device::Sent {
            id: id.clone(),
            parts: 1,
            at: None,
        }))
        .await;
    assert!(matches!(phone.recv().await, HubFrame::Ack(_)));
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

    // The writer woke subscribers with the last committed id.
    woken.changed().await.unwrap();
    let events = all_events(&hub).await;
    assert_eq!(*woken.borrow(), events.last().unwrap().id);
    assert!(events.windows(2).all(|it| it[0].id < it[1].id));
    let kinds: Vec<&str> = events.iter().map(|it| it.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "key.created",
            "device.created",
            "device.online",
            "message.queued",
            "message.dispatched",
            "message.accepted",
            "message.sent",
            "message.delivered"
        ],
        "{events:#?}"
    );
    let key = events[0].owner.unwrap();
    let device = events[1].device_id.clone().unwrap();
    for event in &events[3..] {
        assert_eq!(event.message_id.unwrap().to_string(), id);
        assert_eq!(event.owner, Some(key));
    }
    for event in &events[4..] {
        assert_eq!(event.device_id.as_deref(), Some(device.as_str()));
    }
}

/// A failure carries its code; a device going away and an incoming SMS are events too, the
/// SMS only once however often the device reports it.
async fn failures_offline_devices_and_incoming_sms_are_events() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("p1", 80, false, -60, 4).await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "no"}))
        .await;
    assert_eq!(phone.expect_offer().await.id, id);
    phone.accept(&id).await;
    phone
        .send(&DeviceFrame::Failed(smshub_protocol::device::Failed {
            id: id.clone(),
            code: "invalid_number".into(),
            temporary: Some(false),
            reason: Some("no such number".into()),
        }))
        .await;
    assert!(matches!(phone.recv().await, HubFrame::Ack(_)));
    for _ in 0..2 {
        phone
            .send(&DeviceFrame::Incoming(smshub_protocol::device::Incoming {
                id: "ext-1".into(),
                sim_slot: Some(0),
                from: "+14155550000".into(),
                text: "hello hub".into(),
                received_at: None,
            }))
            .await;
        assert!(matches!(phone.recv().await, HubFrame::Ack(_)));
    }
    phone.drop_connection();
    let events = eventually("device.offline", || async {
        let events = all_events(&hub).await;
        events
            .iter()
            .any(|it| it.kind == "device.offline")
            .then_some(events)
    })
    .await;
    let failed = events
        .iter()
        .find(|it| it.kind == "message.failed")
        .unwrap();
    assert_eq!(failed.payload.as_ref().unwrap()["code"], "invalid_number");
    let received: Vec<&Event> = events
        .iter()
        .filter(|it| it.kind == "sms.received")
        .collect();
    assert_eq!(received.len(), 1, "{events:#?}");
    assert_eq!(received[0].payload.as_ref().unwrap()["text"], "hello hub");
}

/// Reads SSE frames (`id`, `event`, `data`) from a response until `n` events came.
async fn sse_events(
    response: &mut reqwest::Response,
    n: usize,
) -> Vec<(i64, String, serde_json::Value)> {
    let mut text = String::new();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(crate::support::PATIENCE, response.chunk())
            .await
            .expect("an event in time")
            .expect("stream")
            .expect("not ended");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (0, String::new(), serde_json::Value::Null);
            for line in frame.lines() {
                if let Some(it) = line.strip_prefix("id:") {
                    id = it.trim().parse().unwrap();
                } else if let Some(it) = line.strip_prefix("event:") {
                    kind = it.trim().to_string();
                } else if let Some(it) = line.strip_prefix("data:") {
                    data = serde_json::from_str(it.trim()).unwrap();
                }
            }
            if id > 0 {
                out.push((id, kind, data));
            }
        }
    }
    out
}

/// `GET /api/events` streams new events live; a client that reconnects with
/// `Last-Event-ID` gets exactly what it missed, then the live ones, with no gap or repeat;
/// `types=` filters by prefix.
async fn the_sse_stream_resumes_without_gap_or_repeat() {
    let hub = TestHub::spawn().await;
    let open = |query: &str, last: Option<i64>| {
        let mut request = hub
            .http
            .get(hub.url(&format!("/api/events{query}")))
            .header("X-API-Key", &hub.api_key);
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last.to_string());
        }
        request.send()
    };
    let mut live = open("?types=message.*", None).await.unwrap();
    assert_eq!(live.status(), 200);
    let first = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "one"}))
        .await;
    let got = sse_events(&mut live, 1).await;
    assert_eq!(got[0].1, "message.queued");
    assert_eq!(got[0].2["message_id"], first);
    drop(live);

    // Missed while away: two more messages and a device.
    let second = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "two"}))
        .await;
    hub.add_device("quiet").await;
    let mut resumed = open("?types=message.*", Some(got[0].0)).await.unwrap();
    let third = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "three"}))
        .await;
    let again = sse_events(&mut resumed, 2).await;
    let ids: Vec<&str> = again
        .iter()
        .map(|it| it.2["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str(), third.as_str()], "{again:?}");
    assert!(again[0].0 > got[0].0 && again[1].0 > again[0].0);

    let (status, body) = hub.get("/api/events?types=nope.*").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_types"))
    );
}

/// `GET /ws` sends the same events as JSON text frames, from `?after=`.
async fn the_websocket_stream_replays_after_an_id() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let hub = TestHub::spawn().await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "ws"}))
        .await;
    let mut request = format!(
        "{}/ws?after=0&types=message.queued",
        hub.base.replace("http", "ws")
    )
    .into_client_request()
    .unwrap();
    request
        .headers_mut()
        .insert("X-API-Key", hub.api_key.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let frame = tokio::time::timeout(crate::support::PATIENCE, socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
    assert_eq!(event["type"], "message.queued");
    assert_eq!(event["message_id"], id);
}

/// `GET /api/sms/inbox?after=ID` pages through received SMS oldest first with a cursor, and
/// `since=` starts from a time.
async fn the_inbox_reads_as_a_feed_with_a_cursor() {
    let hub = TestHub::spawn().await;
    let mut phone = hub.phone("p1", 80, false, -60, 4).await;
    for n in 0..3 {
        phone
            .send(&DeviceFrame::Incoming(smshub_protocol::device::Incoming {
                id: format!("ext-{n}"),
                sim_slot: Some(0),
                from: "+14155550000".into(),
                text: format!("sms {n}"),
                received_at: None,
            }))
            .await;
        assert!(matches!(phone.recv().await, HubFrame::Ack(_)));
    }
    let (status, page) = hub
        .get("/api/sms/inbox?since=2000-01-01T00:00:00Z&limit=2")
        .await;
    assert_eq!(status, 200, "{page}");
    let texts = |page: &serde_json::Value| -> Vec<String> {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|it| it["message"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(texts(&page), ["sms 0", "sms 1"]);
    let next = page["next"].as_str().unwrap();
    let (_, rest) = hub.get(&format!("/api/sms/inbox?after={next}")).await;
    assert_eq!(texts(&rest), ["sms 2"]);
    let last = rest["next"].as_str().unwrap();
    let (_, empty) = hub.get(&format!("/api/sms/inbox?after={last}")).await;
    assert_eq!(texts(&empty), Vec::<String>::new());
    assert_eq!(empty["next"], last);
    let (status, bad) = hub.get("/api/sms/inbox?after=nope").await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_after"))
    );
}

crate::on_both_databases!(
    a_message_life_is_in_the_log_in_order,
    failures_offline_devices_and_incoming_sms_are_events,
    the_sse_stream_resumes_without_gap_or_repeat,
    the_websocket_stream_replays_after_an_id,
    the_inbox_reads_as_a_feed_with_a_cursor,
);
