//! The REST API: authentication, input checking, the message lifecycle as clients see it.
//! Each runs twice, on SQLite and on PostgreSQL (`on_both_databases!`).

use serde_json::{Value, json};

use crate::support::TestHub;

async fn every_api_call_needs_a_key() {
    let hub = TestHub::spawn().await;
    for (method, path) in [
        ("GET", "/api/sms"),
        ("GET", "/api/devices"),
        ("POST", "/api/send-sms"),
        ("GET", "/api/stats"),
    ] {
        let request = match method {
            "GET" => hub.http.get(hub.url(path)),
            _ => hub.http.post(hub.url(path)).json(&json!({})),
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");

        let wrong = match method {
            "GET" => hub.http.get(hub.url(path)),
            _ => hub.http.post(hub.url(path)).json(&json!({})),
        };
        let response = wrong
            .header("X-API-Key", "shk_not-a-key")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path} with a wrong key");
    }
    // Bearer works as well as X-API-Key.
    let response = hub
        .http
        .get(hub.url("/api/devices"))
        .bearer_auth(&hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Health probes and the dashboard need no key.
    assert_eq!(
        hub.http
            .get(hub.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let page = hub.http.get(hub.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("smshub"));
    assert_eq!(
        hub.http
            .get(hub.url("/assets/app.js"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn bad_input_gets_a_clear_error_and_stores_nothing() {
    let hub = TestHub::spawn().await;
    let (device, _) = hub.add_device("phone").await;
    let check = |body: serde_json::Value, code: &'static str| (body, code);
    let cases = [
        check(json!({"message": "hi"}), "missing_recipient"),
        check(
            json!({"phone_number": "12345", "message": "hi"}),
            "invalid_phone_number",
        ),
        check(
            json!({"phone_number": "+1 123", "message": "hi"}),
            "invalid_phone_number",
        ),
        check(
            json!({"phone_numbers": ["+14155552671", "nonsense"], "message": "hi"}),
            "invalid_phone_number",
        ),
        check(json!({"phone_number": "+14155552671"}), "empty_message"),
        check(
            json!({"phone_number": "+14155552671", "message": "   "}),
            "empty_message",
        ),
        check(
            json!({"phone_number": "+14155552671", "message": "a".repeat(153 * 10 + 1)}),
            "message_too_long",
        ),
        check(
            json!({"phone_number": "+14155552671", "message": "я".repeat(67 * 10 + 1)}),
            "message_too_long",
        ),
        check(
            json!({"phone_number": "+14155552671", "message": "hi", "device_id": "nope"}),
            "unknown_device",
        ),
        check(
            json!({"phone_number": "+14155552671", "message": "hi", "device_id": device, "sim_slot": 9}),
            "invalid_sim_slot",
        ),
        check(
            json!({"phone_number": "+14155552671", "message": "hi", "colour": "red"}),
            "invalid_request",
        ),
        check(
            json!({"phone_number": 14155552671u64, "message": "hi"}),
            "invalid_request",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = hub.post("/api/send-sms", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} -> {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|it| !it.is_empty()),
            "{answer}"
        );
    }
    let response = hub
        .http
        .post(hub.url("/api/send-sms"))
        .header("X-API-Key", &hub.api_key)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");
    let (status, body) = hub
        .post(
            "/api/send-sms",
            json!({"phone_number": "+14155552671", "message": "x".repeat(300_000)}),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");

    assert_eq!(
        hub.message_count().await,
        0,
        "a refused request stored something"
    );

    let (status, body) = hub
        .get("/api/sms/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = hub.get("/api/sms?state=lost").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, body) = hub.get("/api/sms?since=yesterday").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, body) = hub.get("/api/nowhere").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

/// Input that a lenient parser would store as something the client did not write is refused
/// with the field's own code, and nothing is stored.
async fn lenient_input_is_refused_with_the_fields_code() {
    let hub = TestHub::spawn().await;
    let cases = [
        (
            json!({"phone_number": "++14155552671", "message": "hi"}),
            "invalid_phone_number",
        ),
        (
            json!({"phone_number": "+1-415-555-2671x", "message": "hi"}),
            "invalid_phone_number",
        ),
        (
            json!({"phone_number": "+14155552671", "message": "\u{0}"}),
            "empty_message",
        ),
        (
            json!({"phone_number": "+14155552671", "message": "\u{200b}"}),
            "empty_message",
        ),
        (
            json!({"phone_number": "+14155552671", "message": " \u{feff}\t"}),
            "empty_message",
        ),
        (
            json!({"phone_number": "+14155552671", "message": "hi", "schedule_at": "9999-12-31T00:00:00Z", "ttl": 60}),
            "invalid_schedule",
        ),
        (
            json!({"phone_number": "+14155552671", "message": "hi", "valid_until": "9999-12-31T00:00:00Z"}),
            "invalid_valid_until",
        ),
        (
            json!({"phone_number": "+14155552671", "message": "hi", "ttl": -5}),
            "invalid_ttl",
        ),
        (
            json!({"phone_number": "+14155552671", "message": "hi", "sim_slot": -1}),
            "invalid_sim_slot",
        ),
        (
            json!({"phone_number": "+14155552671", "message": "hi", "sim_slot": 300}),
            "invalid_sim_slot",
        ),
        (json!([]), "invalid_request"),
        (
            json!([{"phone_number": "+14155552671", "message": "hi"}]),
            "invalid_request",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = hub.post("/api/send-sms", body.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}: {answer}"
        );
    }
    assert_eq!(hub.message_count().await, 0);
    // What people write around digits is still read.
    let (status, answer) = hub
        .post(
            "/api/send-sms",
            json!({"phone_number": "+1 (415) 555-2671", "message": "hi", "ttl": 60}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["phone_number"], "+14155552671");
}

/// An offset past what the database can count is a bad query on every list, not a request
/// that dies without an answer.
async fn an_offset_too_large_for_the_database_is_a_bad_query() {
    let hub = TestHub::spawn().await;
    for list in ["/api/sms", "/api/sms/outbox", "/api/sms/inbox"] {
        let (status, body) = hub.get(&format!("{list}?offset=9223372036854775808")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_query")),
            "{list}: {body}"
        );
        let (status, _) = hub.get(&format!("{list}?offset=9223372036854775807")).await;
        assert_eq!(status, 200, "{list}");
    }
}

/// A header that is not ASCII gets a 400 with a code, and nothing is stored.
async fn a_non_ascii_idempotency_key_is_a_bad_request() {
    let hub = TestHub::spawn().await;
    let response = hub
        .http
        .post(hub.url("/api/send-sms"))
        .header("X-API-Key", &hub.api_key)
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes("clé-1".as_bytes()).unwrap(),
        )
        .json(&json!({"phone_number": "+14155552671", "message": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_header", "{body}");
    assert_eq!(hub.message_count().await, 0);
}

async fn accepted_messages_are_stored_normalised_and_listed_newest_first() {
    let hub = TestHub::spawn_with(|config| {
        config.default_region = smshub::domain::parse_region("DZ").ok();
    })
    .await;
    let (status, body) = hub
        .post(
            "/api/send-sms",
            json!({"phone_numbers": ["0555 12 34 56", "+44 20 7946 0018"], "message": "€ long ".repeat(30)}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(
        body.get("id").is_none(),
        "several recipients have no single id: {body}"
    );
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["phone_number"], "+213555123456");
    assert_eq!(messages[1]["phone_number"], "+442079460018");
    // 30 × "€ long " = 210 characters, 240 septets (each € costs two): two parts.
    assert_eq!(messages[0]["parts"], 2);
    assert_eq!(messages[0]["state"], "queued");

    let first = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "one"}))
        .await;
    let second = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "two"}))
        .await;
    let (_, list) = hub.get("/api/sms?limit=2").await;
    assert_eq!(list["total"], 4);
    let ids: Vec<&str> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![second.as_str(), first.as_str()]);
    let (_, page) = hub.get("/api/sms?limit=2&offset=2").await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    let (_, filtered) = hub
        .get("/api/sms?phone_number=%2B14155552671&state=queued")
        .await;
    assert_eq!(filtered["total"], 2);
    let (_, none) = hub.get("/api/sms?state=delivered").await;
    assert_eq!(none["total"], 0);

    let (_, message) = hub.get(&format!("/api/sms/{first}")).await;
    assert_eq!(message["state"], "queued");
    assert_eq!(message["message"], "one");
    assert!(message["states"]["queued"].is_string());
    assert!(message["device_id"].is_null());
}

async fn devices_are_registered_listed_and_removed() {
    let hub = TestHub::spawn().await;
    let (status, body) = hub.post("/api/devices", json!({"name": ""})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_name"))
    );
    let (status, body) = hub
        .post("/api/devices", json!({"name": "x", "kind": "pager"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_kind"))
    );

    let (id, token) = hub.add_device("rack-1").await;
    assert!(token.starts_with("shd_"));
    let (_, list) = hub.get("/api/devices").await;
    let device = &list["devices"][0];
    assert_eq!(device["id"], id.as_str());
    assert_eq!(device["online"], false);
    assert!(
        device.get("token").is_none(),
        "the token is shown only once"
    );

    let response = hub
        .http
        .delete(hub.url(&format!("/api/devices/{id}")))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = hub
        .http
        .delete(hub.url(&format!("/api/devices/{id}")))
        .header("X-API-Key", &hub.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let (_, list) = hub.get("/api/devices").await;
    assert_eq!(list["devices"].as_array().unwrap().len(), 0);
}

/// HTTP manners a client or a probe relies on: `HEAD /health`, a 401 that names its scheme,
/// the dashboard's security headers, cache-busting query parameters, and a cut page size that
/// the answer states.
async fn http_manners() {
    let hub = TestHub::spawn().await;
    let head = hub.http.head(hub.url("/health")).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);

    let unauthorized = hub.http.get(hub.url("/api/devices")).send().await.unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);
    assert!(
        unauthorized
            .headers()
            .get("www-authenticate")
            .is_some_and(|it| it.to_str().unwrap().starts_with("Bearer")),
        "{:?}",
        unauthorized.headers()
    );

    let page = hub.http.get(hub.url("/")).send().await.unwrap();
    let headers = page.headers();
    // The console's CSP: its own scripts and styles only, nothing inline.
    let csp = headers["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");

    let (status, body) = hub.get("/api/sms?_=1733300000000").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = hub.get("/api/sms?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["limit"], 500, "the page size actually used: {body}");
    let (status, body) = hub.get("/api/sms?stat=failed").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query")),
        "a misspelt filter is still an error: {body}"
    );
}

crate::on_both_databases!(
    every_api_call_needs_a_key,
    bad_input_gets_a_clear_error_and_stores_nothing,
    lenient_input_is_refused_with_the_fields_code,
    an_offset_too_large_for_the_database_is_a_bad_query,
    a_non_ascii_idempotency_key_is_a_bad_request,
    accepted_messages_are_stored_normalised_and_listed_newest_first,
    devices_are_registered_listed_and_removed,
    http_manners,
);
