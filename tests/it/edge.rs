//! CORS, pairing codes and device tokens rotated and revoked, against a real hub with real
//! HTTP and WebSocket clients.

use serde_json::json;

use crate::support::{RawPhone, TestHub};

#[tokio::test]
async fn cors_is_off_by_default() {
    let hub = TestHub::spawn().await;
    let answer = hub
        .http
        .get(hub.url("/api/devices"))
        .header("Origin", "https://app.example")
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let preflight = hub
        .http
        .request(reqwest::Method::OPTIONS, hub.url("/api/send-sms"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn cors_answers_preflights_and_marks_answers_for_allowed_origins() {
    let hub = TestHub::spawn_with(|config| {
        config.cors_origins = vec!["https://app.example".into()];
    })
    .await;
    let preflight = hub
        .http
        .request(reqwest::Method::OPTIONS, hub.url("/api/send-sms"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "x-api-key, content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let headers = preflight.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "x-api-key",
        "authorization",
        "idempotency-key",
        "x-csrf-token",
        "content-type",
    ] {
        assert!(allowed.contains(name), "{name} in {allowed}");
    }

    // The real request: marked for the allowed origin, with the rate-limit headers exposed.
    let answer = hub
        .http
        .get(hub.url("/api/devices"))
        .header("Origin", "https://app.example")
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let exposed = answer.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(
        exposed.contains("X-RateLimit-Remaining") && exposed.contains("Retry-After"),
        "{exposed}"
    );

    // Another origin: its preflight is refused and its answers carry no CORS headers.
    let other = hub
        .http
        .request(reqwest::Method::OPTIONS, hub.url("/api/send-sms"))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let body: serde_json::Value = other.json().await.unwrap();
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    let answer = hub
        .http
        .get(hub.url("/api/devices"))
        .header("Origin", "https://evil.example")
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn cors_star_allows_any_origin() {
    let hub = TestHub::spawn_with(|config| config.cors_origins = vec!["*".into()]).await;
    let preflight = hub
        .http
        .request(reqwest::Method::OPTIONS, hub.url("/api/sms"))
        .header("Origin", "http://localhost:5173")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
}

/// Redeems `code` at the unauthenticated endpoint.
async fn redeem(hub: &TestHub, body: serde_json::Value) -> (u16, serde_json::Value) {
    let answer = hub
        .http
        .post(hub.url("/api/devices/pair"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_pairing_code_gives_a_phone_its_id_and_token_once() {
    let hub = TestHub::spawn().await;
    let (status, pairing) = hub
        .post("/api/devices/pairing", json!({ "name": "hall phone" }))
        .await;
    assert_eq!(status, 201, "{pairing}");
    let code = pairing["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 9, "{code}");
    assert_eq!(&code[4..5], "-");
    let payload: serde_json::Value =
        serde_json::from_str(pairing["qr_payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["code"], code.as_str());
    assert_eq!(payload["hub"], hub.base.as_str());
    assert!(pairing["qr_svg"].as_str().unwrap().starts_with("<?xml"));
    assert_eq!(pairing["expires_in_s"], 600);

    // Typed by a person: lower case, without the dash.
    let (status, paired) = redeem(
        &hub,
        json!({ "code": code.to_lowercase().replace('-', "") }),
    )
    .await;
    assert_eq!(status, 201, "{paired}");
    assert_eq!(paired["name"], "hall phone");
    let id = paired["device_id"].as_str().unwrap();
    let token = paired["token"].as_str().unwrap();
    assert_eq!(
        paired["ws_url"],
        format!("{}/ws/device/{id}", hub.base.replacen("http", "ws", 1))
    );
    // The credentials work.
    let mut phone = RawPhone::connect(&hub.base, id, token).await.unwrap();
    phone.hello(1, None).await;

    let (status, again) = redeem(&hub, json!({ "code": code })).await;
    assert_eq!(status, 410, "{again}");
    assert_eq!(again["error"]["code"], "pairing_code_used");
    let (status, wrong) = redeem(&hub, json!({ "code": "ABCD-EFGH" })).await;
    assert_eq!(status, 404, "{wrong}");
    assert_eq!(wrong["error"]["code"], "invalid_pairing_code");
    let (status, bad) = redeem(&hub, json!({ "nope": 1 })).await;
    assert_eq!(status, 400, "{bad}");
}

#[tokio::test]
async fn pairing_needs_a_key_and_guesses_are_rate_limited() {
    let hub = TestHub::spawn().await;
    let answer = hub
        .http
        .post(hub.url("/api/devices/pairing"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let (status, body) = hub
        .post("/api/devices/pairing", json!({ "ttl_s": 0 }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_ttl"))
    );

    let mut statuses = Vec::new();
    for _ in 0..15 {
        let (status, body) = redeem(&hub, json!({ "code": "ZZZZ-ZZZZ" })).await;
        if status == 429 {
            assert_eq!(body["error"]["code"], "rate_limited");
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..10], &[404; 10], "{statuses:?}");
    assert!(statuses[10..].iter().all(|it| *it == 429), "{statuses:?}");
}

#[tokio::test]
async fn a_rotated_token_closes_the_socket_and_only_the_new_one_connects() {
    let hub = TestHub::spawn().await;
    let (id, token) = hub.add_device("rotated").await;
    let mut phone = RawPhone::connect(&hub.base, &id, &token).await.unwrap();
    phone.hello(4, None).await;
    phone.status(90, true, -70).await;
    // An offer in flight goes back to the queue when the socket closes.
    let sms = hub
        .send_sms(json!({ "phone_number": "+14155552671", "message": "hi" }))
        .await;
    let offer = phone.expect_offer().await;
    assert_eq!(offer.id.to_string(), sms);

    let (status, rotated) = hub
        .post(&format!("/api/devices/{id}/token"), json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_token = rotated["token"].as_str().unwrap();
    assert_ne!(new_token, token);
    assert_eq!(phone.closed().await, Some(4004));
    hub.wait_state(&sms, "queued").await;

    assert!(RawPhone::connect(&hub.base, &id, &token).await.is_err());
    let mut phone = RawPhone::connect(&hub.base, &id, new_token).await.unwrap();
    phone.hello(4, None).await;
    phone.status(90, true, -70).await;
    let offer = phone.expect_offer().await;
    assert_eq!(offer.id.to_string(), sms);
}

#[tokio::test]
async fn a_revoked_token_closes_the_socket_and_connects_no_more() {
    let hub = TestHub::spawn().await;
    let (id, token) = hub.add_device("revoked").await;
    let mut phone = RawPhone::connect(&hub.base, &id, &token).await.unwrap();
    phone.hello(4, None).await;
    let answer = hub
        .http
        .delete(hub.url(&format!("/api/devices/{id}/token")))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
    assert_eq!(phone.closed().await, Some(4004));
    assert!(RawPhone::connect(&hub.base, &id, &token).await.is_err());

    let answer = hub
        .http
        .delete(hub.url("/api/devices/nosuchdevice/token"))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    let answer = hub
        .http
        .delete(hub.url(&format!("/api/devices/{id}/token")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
}

// The CLI runs as a blocking process: the hub needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_pairs_a_phone_and_rotates_and_revokes_tokens() {
    let hub = TestHub::spawn().await;
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_smshub"))
            .args(args)
            .args(["--hub", &hub.base, "--api-key", &hub.api_key])
            .output()
            .expect("smshub runs");
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let printed = cli(&[
        "devices",
        "pair",
        "--name",
        "cli phone",
        "--ttl",
        "2m",
        "--json",
    ]);
    let pairing: serde_json::Value = serde_json::from_str(printed.trim()).unwrap();
    assert_eq!(pairing["expires_in_s"], 120);
    let people = cli(&["devices", "pair"]);
    assert!(people.contains("Pairing code: "), "{people}");

    let (status, paired) = redeem(&hub, json!({ "code": pairing["code"] })).await;
    assert_eq!(status, 201, "{paired}");
    assert_eq!(paired["name"], "cli phone");
    let id = paired["device_id"].as_str().unwrap();

    let rotated = cli(&["devices", "token", "rotate", id, "--json"]);
    let rotated: serde_json::Value = serde_json::from_str(rotated.trim()).unwrap();
    let token = rotated["token"].as_str().unwrap();
    assert!(
        RawPhone::connect(&hub.base, id, paired["token"].as_str().unwrap())
            .await
            .is_err()
    );
    let mut phone = RawPhone::connect(&hub.base, id, token).await.unwrap();
    phone.hello(1, None).await;
    cli(&["devices", "token", "revoke", id]);
    assert_eq!(phone.closed().await, Some(4004));
    assert!(RawPhone::connect(&hub.base, id, token).await.is_err());
}
