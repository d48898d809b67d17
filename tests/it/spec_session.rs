//! The example session of the spec (android-client-spec/README.md, section 12) replayed
//! against a real hub: every `device>` frame is sent as written (its ids mapped to the real
//! hub's), every `hub>` frame is checked against what the hub sends. The transcript is read
//! from the spec file, so the example cannot drift from the hub.
//! Each runs twice, on SQLite and on PostgreSQL (`on_both_databases!`).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::support::{RawPhone, TestHub};

/// The `device>` and `hub>` lines of section 12's transcript, in order.
fn transcript() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/android-client-spec/README.md");
    let spec = std::fs::read_to_string(path).expect("the spec");
    let section = spec
        .split("## 12. Example session")
        .nth(1)
        .expect("section 12");
    let block = section
        .split("```text")
        .nth(1)
        .and_then(|it| it.split("```").next())
        .expect("the transcript block");
    block
        .lines()
        .filter_map(|line| {
            let (who, frame) = line.split_once("> ")?;
            matches!(who, "device" | "hub").then(|| (who.to_string(), frame.to_string()))
        })
        .collect()
}

/// `text` with every id of the spec replaced by the real hub's.
fn mapped(text: &str, ids: &HashMap<String, String>) -> String {
    let mut text = text.to_string();
    for (spec, real) in ids {
        text = text.replace(spec.as_str(), real);
    }
    text
}

/// A hub frame without what differs from run to run: the clock, and `valid_until` (only its
/// presence is compared).
fn comparable(mut frame: Value) -> Value {
    if let Some(object) = frame.as_object_mut() {
        object.remove("server_time");
        if let Some(until) = object.get_mut("valid_until") {
            *until = json!("(present)");
        }
    }
    frame
}

async fn the_spec_example_session_replays_against_a_real_hub() {
    let lines = transcript();
    assert!(lines.len() > 20, "the transcript was not found: {lines:?}");
    let hub = TestHub::spawn().await;
    let (device, token) = hub.add_device("k7q2").await;
    let mut ids: HashMap<String, String> = HashMap::new();
    let first_hello: Value = serde_json::from_str(&lines[0].1).unwrap();
    assert_eq!(first_hello["type"], "hello");
    // The spec's device id, from its welcome.
    let welcome: Value = serde_json::from_str(&lines[1].1).unwrap();
    ids.insert(
        welcome["device_id"].as_str().unwrap().to_string(),
        device.clone(),
    );

    let mut phone = RawPhone::connect(&hub.base, &device, &token)
        .await
        .expect("phone connects");
    let mut other: Option<RawPhone> = None;
    let mut hellos = 0;
    for (who, frame) in &lines {
        let expected: Value = serde_json::from_str(frame).expect("transcript frames are JSON");
        if who == "device" {
            if expected["type"] == "hello" {
                hellos += 1;
                if hellos > 1 {
                    // The connection drops; a second phone is there to take what the hub
                    // never committed, and the phone reconnects.
                    let mut second = hub.phone("another", 90, true, -70, 4).await;
                    phone.drop_connection();
                    let job = second.expect_offer().await;
                    assert_eq!(
                        job.id, ids["c81f5b0e-2d7a-4c93-8e16-a4b2f7d05e39"],
                        "the job never committed goes to the other phone"
                    );
                    other = Some(second);
                    phone = RawPhone::connect(&hub.base, &device, &token)
                        .await
                        .expect("phone reconnects");
                }
            }
            phone.send_text(&mapped(frame, &ids)).await;
            continue;
        }
        if expected["type"] == "send" {
            // An application submits the message the hub is about to offer.
            let mut body = json!({
                "phone_number": expected["to"],
                "message": expected["text"],
                "delivery_report": expected["delivery_report"],
            });
            if expected.get("valid_until").is_some() {
                body["ttl"] = json!(600);
            }
            let real = hub.send_sms(body).await;
            ids.insert(expected["id"].as_str().unwrap().to_string(), real);
        }
        let got = phone.recv_any().await;
        let got: Value = serde_json::from_str(&got.to_json()).unwrap();
        let want: Value = serde_json::from_str(&mapped(frame, &ids)).unwrap();
        assert_eq!(comparable(got), comparable(want), "hub> {frame}");
    }
    assert_eq!(hellos, 2);
    assert!(other.is_some());

    // The story's end, as REST sees it: A delivered, B sent, C with the other phone.
    let a = ids["0b6f1c3e-5a8d-4e2f-9c71-3d2a8e4b7f10"].clone();
    let b = ids["7d3e9a21-c4b6-4f08-a5e3-62f1b09d8c45"].clone();
    let c = ids["c81f5b0e-2d7a-4c93-8e16-a4b2f7d05e39"].clone();
    hub.wait_state(&a, "delivered").await;
    hub.wait_state(&b, "sent").await;
    let (_, c) = hub.get(&format!("/api/sms/{c}")).await;
    assert_ne!(c["device_id"], device.as_str(), "{c}");
    let (_, inbox) = hub.get("/api/sms/inbox").await;
    assert_eq!(inbox["total"], 1);
}

crate::on_both_databases!(the_spec_example_session_replays_against_a_real_hub,);
