//! Issue 13's serving items: key revocation takes effect at once, `405` names the methods
//! allowed, health probes tell the truth.

use std::process::Command;

use crate::support::TestHub;

/// A key revoked from the command line while the hub runs is refused on the very next request.
#[tokio::test]
async fn a_revoked_key_is_refused_on_the_next_request() {
    let hub = TestHub::spawn().await;
    let (status, body) = hub.get("/api/stats").await;
    assert_eq!(status, 200, "{body}");
    // Twice, so any cache of keys seen before would hold it.
    let (status, _) = hub.get("/api/stats").await;
    assert_eq!(status, 200);

    let prefix: String = hub.api_key.chars().take(10).collect();
    let output = Command::new(env!("CARGO_BIN_EXE_smshub"))
        .args(["keys", "revoke", &prefix, "--database-url"])
        .arg(&hub.config.database_url)
        .output()
        .expect("smshub keys revoke runs");
    assert!(output.status.success(), "{output:?}");

    let (status, body) = hub.get("/api/stats").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");

    // Revoking it again names nothing left to revoke.
    let again = Command::new(env!("CARGO_BIN_EXE_smshub"))
        .args(["keys", "revoke", &prefix, "--database-url"])
        .arg(&hub.config.database_url)
        .output()
        .expect("smshub keys revoke runs");
    assert!(!again.status.success(), "{again:?}");
}

/// A `405` says which methods the resource takes (RFC 9110), on every kind of route.
#[tokio::test]
async fn a_405_names_the_allowed_methods() {
    let hub = TestHub::spawn().await;
    let cases = [
        ("PATCH", "/api/send-sms", "POST"),
        ("PUT", "/api/sms", "GET, POST"),
        (
            "PUT",
            "/api/sms/0190a1b2-0000-7000-8000-000000000000",
            "GET, DELETE",
        ),
        ("DELETE", "/api/devices", "GET, POST"),
        ("GET", "/api/devices/abc/limits", "PUT"),
        ("POST", "/health", "GET, HEAD"),
        ("DELETE", "/health/ready", "GET, HEAD"),
        ("POST", "/api/stats", "GET"),
        ("GET", "/api/modems/connect", "POST"),
        ("POST", "/api/modems/x/balance", "GET"),
        ("POST", "/ws/device/abc", "GET"),
        ("POST", "/", "GET"),
    ];
    for (method, path, allowed) in cases {
        let response = hub
            .http
            .request(method.parse().unwrap(), hub.url(path))
            .header("X-API-Key", &hub.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method} {path}");
        assert_eq!(
            response
                .headers()
                .get("allow")
                .map(|it| it.to_str().unwrap()),
            Some(allowed),
            "{method} {path}"
        );
    }
}

/// Liveness and readiness are separate probes, all of them answer `HEAD`, and `/health`
/// sums them up.
#[tokio::test]
async fn health_has_liveness_and_readiness_probes() {
    let hub = TestHub::spawn().await;
    for path in ["/health", "/health/live", "/health/ready"] {
        let response = hub.http.get(hub.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let head = hub.http.head(hub.url(path)).send().await.unwrap();
        assert_eq!(head.status().as_u16(), 200, "HEAD {path}");
    }
    let (_, body) = hub.get("/health").await;
    assert_eq!(body["live"], true, "{body}");
    assert_eq!(body["ready"], true, "{body}");
    assert_eq!(body["writable"], true, "{body}");
    assert_eq!(body["devices_can_connect"], true, "{body}");
}

/// A database writer that panics is restarted: the hub does not stay up refusing every write.
#[tokio::test]
async fn a_writer_that_panics_is_restarted() {
    let hub = TestHub::spawn().await;
    hub.send_sms(serde_json::json!({"phone_number": "+14155552671", "message": "before"}))
        .await;
    hub.store.crash_writer().await;
    let deadline = tokio::time::Instant::now() + crate::support::PATIENCE;
    let mut answers = Vec::new();
    loop {
        let (status, body) = hub
            .post(
                "/api/send-sms",
                serde_json::json!({"phone_number": "+14155552671", "message": "after"}),
            )
            .await;
        if status == 202 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sends never succeeded again after the writer panicked: {status} {body}"
        );
        answers.push((status, body));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for (status, body) in &answers {
        assert_eq!(
            (*status, body["error"]["code"].as_str()),
            (503, Some("store_unavailable")),
            "while the writer restarts: {body}"
        );
    }
    let live = hub.http.get(hub.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status().as_u16(), 200);
    assert_eq!(hub.message_count().await, 2);
}

/// A `sim_slot` that no device able to take the message has is refused at once, instead of a
/// `202` for a message that waits forever (issue 13, defect 13).
#[tokio::test]
async fn a_sim_slot_no_device_has_is_refused() {
    let hub = TestHub::spawn().await;
    let phone = hub.phone("one-sim", 80, true, -70, 4).await;
    let pinned = |slot: u8| {
        serde_json::json!({"phone_number": "+14155552671", "message": "hi",
            "device_id": phone.id, "sim_slot": slot})
    };
    let (status, body) = hub.post("/api/send-sms", pinned(7)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_sim_slot", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("slots [0]"),
        "{body}"
    );
    let any = serde_json::json!({"phone_number": "+14155552671", "message": "hi", "sim_slot": 7});
    let (status, body) = hub.post("/api/send-sms", any.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_sim_slot", "{body}");
    let (status, body) = hub.post("/api/send-sms", pinned(0)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(hub.message_count().await, 1);

    // A device that never said which SIMs it has may have slot 7.
    hub.add_device("not-yet-connected").await;
    let (status, body) = hub.post("/api/send-sms", any).await;
    assert_eq!(status, 202, "{body}");
}
