//! Dispatch: health-aware balancing, pinning, waiting and push.
//! Each runs twice, on SQLite and on PostgreSQL (`on_both_databases!`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use smshub::simulate::{self, Behaviour, Profile, SimStats};

use smshub_protocol::device::Capabilities;

use crate::support::{PATIENCE, RawPhone, TestHub};

async fn healthy_idle_phones_get_more_than_weak_ones() {
    let hub = TestHub::spawn().await;
    let stats = Arc::new(SimStats::default());
    let behaviour = Behaviour {
        latency: Duration::from_millis(5),
        fail_rate: 0.0,
        delivery_rate: 1.0,
    };
    // Room for every burst on every phone, so the choice is made on health, not on who has
    // a free slot (a saturated fleet is balanced by load instead).
    let profile = |battery, charging, signal_dbm| Profile {
        battery,
        charging,
        signal_dbm,
        max_in_flight: 20,
    };
    let profiles = [
        ("healthy", profile(100, true, -60)),
        ("medium", profile(60, false, -85)),
        ("weak", profile(25, false, -104)),
        ("flat", profile(8, false, -60)),
        ("no-signal", profile(90, true, -113)),
    ];
    let mut phones = Vec::new();
    for (n, (name, profile)) in profiles.iter().enumerate() {
        let credentials = simulate::register_devices(&hub.base, &hub.api_key, name, 1)
            .await
            .unwrap()
            .remove(0);
        phones.push(simulate::spawn_phone(
            &hub.base,
            credentials,
            *profile,
            behaviour.clone(),
            stats.clone(),
            n as u64,
        ));
    }
    wait_online(&hub, profiles.len()).await;

    // Bursts of 10 to an idle fleet, 24 times. Every message has its own recipient, so sticky
    // routing (a recipient's replies stay on one SIM) plays no part: this is health alone.
    let total = 240;
    for burst in 0..total / 10 {
        let recipients: Vec<String> = (0..10)
            .map(|n| format!("+1415555{:04}", 2000 + burst * 10 + n))
            .collect();
        let (status, body) = hub
            .post(
                "/api/send-sms",
                json!({"phone_numbers": recipients, "message": format!("burst {burst}")}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while SimStats::get(&stats.reported_sent) < (burst + 1) * 10 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "burst {burst} not sent"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut counts = Vec::new();
    for phone in &phones {
        counts.push(phone.sent.lock().await.len());
    }
    eprintln!("sent per phone (healthy, medium, weak, flat, no-signal): {counts:?}");
    let [healthy, medium, weak, flat, no_signal] = counts[..] else {
        unreachable!()
    };
    assert_eq!(
        flat, 0,
        "a phone below the battery floor got work: {counts:?}"
    );
    assert_eq!(no_signal, 0, "a phone without signal got work: {counts:?}");
    assert!(healthy > medium && medium > weak, "{counts:?}");
    assert!(healthy >= 2 * weak, "{counts:?}");
    assert!(
        weak > 0,
        "a weak but eligible phone should still get some: {counts:?}"
    );
    assert_eq!(SimStats::get(&stats.cross_device_duplicates), 0);
}

async fn pinned_messages_go_only_to_their_device() {
    let hub = TestHub::spawn().await;
    let mut strong = hub.phone("strong", 100, true, -55, 4).await;
    let mut weak = hub.phone("weak", 30, false, -100, 4).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            hub.send_sms(json!({"phone_number": "+14155552671", "message": format!("pinned {n}"), "device_id": weak.id, "sim_slot": 0}))
                .await,
        );
    }
    for id in &ids {
        let job = weak.expect_offer().await;
        assert_eq!(&job.id, id);
        assert_eq!(job.sim_slot, Some(0));
    }
    assert!(
        strong.try_recv(Duration::from_millis(300)).await.is_none(),
        "a pinned message went elsewhere"
    );
}

async fn messages_wait_for_an_eligible_device_and_go_out_the_moment_one_appears() {
    let hub = TestHub::spawn().await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "waiting"}))
        .await;
    let mut tired = hub.phone("tired", 5, false, -70, 4).await;
    assert!(
        tired.try_recv(Duration::from_millis(300)).await.is_none(),
        "a phone at 5% battery got a job"
    );
    let (_, stats) = hub.get("/api/stats").await;
    assert_eq!(stats["waiting"], 1, "{stats}");
    assert_eq!(hub.wait_state(&id, "queued").await["attempts"], 0);

    // Plugging the phone in makes it eligible: the job is pushed at once, no polling.
    tired.status(5, true, -70).await;
    let job = tired
        .try_recv(Duration::from_secs(2))
        .await
        .expect("pushed as soon as the phone is eligible");
    match job {
        smshub_protocol::device::HubFrame::Send(job) => assert_eq!(job.id, id),
        other => panic!("expected the waiting job, got {other:?}"),
    }
}

async fn wait_online(hub: &TestHub, count: usize) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, devices) = hub.get("/api/devices").await;
        let online = devices["devices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|it| it["online"] == true)
            .count();
        if online == count {
            // Give each phone's status frame a moment to reach the dispatcher.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {online} of {count} phones online"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A phone that cannot send multipart messages (issue 15, bug 7).
async fn single_part_phone(hub: &TestHub, name: &str) -> RawPhone {
    let (id, token) = hub.add_device(name).await;
    let mut phone = RawPhone::connect(&hub.base, &id, &token)
        .await
        .expect("phone connects");
    let capabilities = Capabilities {
        max_in_flight: 4,
        multipart: false,
        ..Capabilities::default()
    };
    phone.hello_with(capabilities, None).await;
    phone.status(90, true, -70).await;
    phone
}

/// Issue 15, bug 7: a two-part job pinned to a phone that cannot send multipart can never be
/// sent by it. It fails at once with `unsupported` (saying why) instead of waiting as
/// "eligible", and the one-part job pinned behind it goes out.
async fn a_pinned_job_its_device_cannot_send_fails_and_blocks_nothing() {
    let hub = TestHub::spawn().await;
    let mut phone = single_part_phone(&hub, "mono").await;
    let long = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "a".repeat(200), "device_id": phone.id}))
        .await;
    let short = hub
        .send_sms(
            json!({"phone_number": "+14155552671", "message": "short", "device_id": phone.id}),
        )
        .await;
    let job = phone.expect_offer().await;
    assert_eq!(job.id, short, "the one-part job behind waits no more");
    let failed = hub.wait_state(&long, "failed").await;
    assert_eq!(failed["error"]["code"], "unsupported", "{failed}");
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("multipart"), "{failed}");
    assert!(
        phone.try_recv(Duration::from_millis(300)).await.is_none(),
        "the two-part job was offered"
    );
}

/// Issue 15, bug 7, for jobs any device may take: many multipart jobs that no connected phone
/// can send (more than a dispatch pass looks past) wait with a true reason and do not hold up
/// the one-part job behind them.
async fn multipart_jobs_no_phone_can_send_do_not_block_the_queue() {
    let hub = TestHub::spawn().await;
    let mut phone = single_part_phone(&hub, "mono").await;
    let numbers: Vec<String> = (0..100).map(|n| format!("+1415555{n:04}")).collect();
    let (status, body) = hub
        .post(
            "/api/send-sms",
            json!({"phone_numbers": numbers, "message": "b".repeat(200)}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let first_long = body["messages"][0]["id"].as_str().unwrap().to_string();
    let short = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "short"}))
        .await;
    let job = phone.expect_offer().await;
    assert_eq!(job.id, short);
    let waiting = hub.wait_state(&first_long, "queued").await;
    let reason = waiting["waiting_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("does not send multipart messages"),
        "{waiting}"
    );
}

/// `POST /api/devices/{id}/rest`: a rested phone gets no offer (even of a message pinned to
/// it) while another does; the device list says until when and why; after
/// `DELETE /api/devices/{id}/rest` it gets offers again.
async fn an_operator_rests_a_phone_and_ends_its_rest() {
    let hub = TestHub::spawn().await;
    let mut rested = hub.phone("rested", 100, true, -55, 4).await;
    let mut other = hub.phone("other", 60, true, -80, 4).await;
    wait_online(&hub, 2).await;

    let (status, body) = hub
        .post(
            &format!("/api/devices/{}/rest", rested.id),
            json!({"minutes": 30, "reason": "changing the SIM"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rest_reason"], "changing the SIM");
    assert!(body["rested_until"].is_string(), "{body}");
    for (body, code) in [
        (json!({"minutes": 0}), "invalid_minutes"),
        (json!({"minutes": 10081}), "invalid_minutes"),
        (json!({"reason": "x".repeat(201)}), "invalid_reason"),
        (json!({"hours": 1}), "invalid_request"),
    ] {
        let (status, answer) = hub
            .post(&format!("/api/devices/{}/rest", rested.id), body)
            .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], code);
    }
    let (status, _) = hub.post("/api/devices/nosuch/rest", json!({})).await;
    assert_eq!(status, 404);

    let free = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "free"}))
        .await;
    assert_eq!(other.expect_offer().await.id, free);
    let pinned = hub
        .send_sms(
            json!({"phone_number": "+14155552671", "message": "pinned", "device_id": rested.id}),
        )
        .await;
    assert!(
        rested.try_recv(Duration::from_millis(500)).await.is_none(),
        "a rested phone got an offer"
    );
    let (_, devices) = hub.get("/api/devices").await;
    let device = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|it| it["id"] == rested.id.as_str())
        .unwrap()
        .clone();
    assert_eq!(device["rest_reason"], "changing the SIM", "{device}");
    assert!(device["rested_until"].is_string(), "{device}");
    let (_, message) = hub.get(&format!("/api/sms/{pinned}")).await;
    assert!(
        message["waiting_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("changing the SIM"),
        "{message}"
    );

    let response = hub
        .http
        .delete(hub.url(&format!("/api/devices/{}/rest", rested.id)))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(rested.expect_offer().await.id, pinned);
    let (_, devices) = hub.get("/api/devices").await;
    let device = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|it| it["id"] == rested.id.as_str())
        .unwrap()
        .clone();
    assert!(device["rested_until"].is_null(), "{device}");
}

crate::on_both_databases!(
    healthy_idle_phones_get_more_than_weak_ones,
    pinned_messages_go_only_to_their_device,
    messages_wait_for_an_eligible_device_and_go_out_the_moment_one_appears,
    a_pinned_job_its_device_cannot_send_fails_and_blocks_nothing,
    multipart_jobs_no_phone_can_send_do_not_block_the_queue,
    an_operator_rests_a_phone_and_ends_its_rest,
);
