//! Access control (issue 16): every route against every kind of credential, tenancy,
//! restricted keys, rotation, rate limits, logins, lockout and the audit log, on a real hub.

use serde_json::{Value, json};
use smshub::auth::keys::KeySpec;
use smshub::auth::tokens::{Claims, HUB_ISSUER, HubTokens, JWT_SECRET_NAME};
use smshub::auth::{self, KeyLimits, Scope, Scopes};
use smshub::dispatch::AllowedDevices;
use smshub::domain::{DeviceKind, now_millis};

use crate::support::{RawPhone, TestHub};

pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// A credential a request carries.
#[derive(Clone, Debug)]
pub enum Cred {
    None,
    Key(String),
    Bearer(String),
    /// A session cookie, with the CSRF token or without.
    Cookie(String, Option<String>),
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

pub async fn call(
    hub: &TestHub,
    method: &str,
    path: &str,
    cred: &Cred,
    body: Option<Value>,
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = hub.http.request(method, hub.url(path));
    request = match cred {
        Cred::None => request,
        Cred::Key(key) => request.header("X-API-Key", key),
        Cred::Bearer(token) => request.header("Authorization", format!("Bearer {token}")),
        Cred::Cookie(cookie, csrf) => {
            let request = request.header("Cookie", format!("smshub_session={cookie}"));
            match csrf {
                Some(csrf) => request.header("X-CSRF-Token", csrf),
                None => request,
            }
        }
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        body,
        headers,
    }
}

pub async fn spawn() -> TestHub {
    TestHub::spawn_with(|config| {
        config.first_admin = true;
        config.admin_password = Some(ADMIN_PASSWORD.into());
    })
    .await
}

pub async fn key(hub: &TestHub, scopes: &str) -> String {
    let mut spec = KeySpec::admin(scopes);
    spec.scopes = Scopes::parse(scopes).unwrap();
    auth::create_key(&hub.store, &spec, None)
        .await
        .unwrap()
        .secret
}

/// Logs in; returns (session id, CSRF token).
pub async fn login(hub: &TestHub, username: &str, password: &str) -> (String, String) {
    let response = hub
        .http
        .post(hub.url("/api/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "no TLS here: {cookie}");
    let id = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("smshub_session=")
        .to_string();
    let body: Value = response.json().await.unwrap();
    (id, body["csrf_token"].as_str().unwrap().to_string())
}

async fn hub_jwt(hub: &TestHub) -> String {
    let answer = call(
        hub,
        "POST",
        "/api/auth/token",
        &Cred::None,
        Some(json!({ "username": "admin", "password": ADMIN_PASSWORD })),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["token"].as_str().unwrap().to_string()
}

/// A route: method, path, body, the scope it needs (`None`: any credential), the status
/// when allowed.
type Route = (&'static str, String, Option<Value>, Option<Scope>, u16);

/// Every API route × every kind of credential, each with the status it must get.
#[tokio::test]
async fn every_route_answers_every_credential_as_it_should() {
    let hub = spawn().await;
    let missing = uuid::Uuid::new_v4();
    // (method, path, body, the scope it needs (None: any credential), status when allowed)
    let routes: Vec<Route> = vec![
        (
            "POST",
            "/api/send-sms".into(),
            Some(json!({"phone_number": "+14155552671", "message": "hi"})),
            Some(Scope::MessagesSend),
            202,
        ),
        (
            "GET",
            "/api/sms".into(),
            None,
            Some(Scope::MessagesRead),
            200,
        ),
        (
            "GET",
            "/api/sms/outbox".into(),
            None,
            Some(Scope::MessagesRead),
            200,
        ),
        (
            "GET",
            "/api/sms/inbox".into(),
            None,
            Some(Scope::InboxRead),
            200,
        ),
        (
            "GET",
            format!("/api/sms/{missing}"),
            None,
            Some(Scope::MessagesRead),
            404,
        ),
        (
            "DELETE",
            format!("/api/sms/{missing}"),
            None,
            Some(Scope::MessagesSend),
            404,
        ),
        (
            "GET",
            "/api/devices".into(),
            None,
            Some(Scope::DevicesRead),
            200,
        ),
        (
            "POST",
            "/api/devices".into(),
            Some(json!({"name": "matrix"})),
            Some(Scope::DevicesWrite),
            201,
        ),
        (
            "DELETE",
            "/api/devices/nosuch".into(),
            None,
            Some(Scope::DevicesWrite),
            404,
        ),
        (
            "PUT",
            "/api/devices/nosuch/limits".into(),
            Some(Value::Null),
            Some(Scope::DevicesWrite),
            404,
        ),
        (
            "GET",
            "/api/stats".into(),
            None,
            Some(Scope::DevicesRead),
            200,
        ),
        (
            "GET",
            "/api/modems/status".into(),
            None,
            Some(Scope::DevicesRead),
            200,
        ),
        (
            "GET",
            "/api/modems/nosuch/status".into(),
            None,
            Some(Scope::DevicesRead),
            404,
        ),
        (
            "GET",
            "/api/modems/nosuch/balance".into(),
            None,
            Some(Scope::ModemsWrite),
            404,
        ),
        (
            "POST",
            "/api/modems/nosuch/ussd".into(),
            Some(json!({"code": "*100#"})),
            Some(Scope::ModemsWrite),
            404,
        ),
        ("GET", "/api/keys".into(), None, Some(Scope::KeysAdmin), 200),
        (
            "POST",
            "/api/keys".into(),
            Some(json!({"name": "made", "scopes": ["keys:admin"]})),
            Some(Scope::KeysAdmin),
            201,
        ),
        (
            "GET",
            "/api/keys/shk_NOSUCH".into(),
            None,
            Some(Scope::KeysAdmin),
            404,
        ),
        (
            "DELETE",
            "/api/keys/shk_NOSUCH".into(),
            None,
            Some(Scope::KeysAdmin),
            404,
        ),
        (
            "POST",
            "/api/keys/shk_NOSUCH/rotate".into(),
            None,
            Some(Scope::KeysAdmin),
            404,
        ),
        (
            "POST",
            "/api/generate-api-key".into(),
            None,
            Some(Scope::KeysAdmin),
            201,
        ),
        ("GET", "/api/audit".into(), None, Some(Scope::Admin), 200),
        ("GET", "/api/users".into(), None, Some(Scope::Admin), 200),
        (
            "POST",
            "/api/users".into(),
            Some(json!({"username": "admin", "password": "long enough", "role": "viewer"})),
            Some(Scope::Admin),
            409,
        ),
        (
            "PATCH",
            "/api/users/nosuch".into(),
            Some(json!({"role": "viewer"})),
            Some(Scope::Admin),
            404,
        ),
        (
            "DELETE",
            "/api/users/nosuch".into(),
            None,
            Some(Scope::Admin),
            404,
        ),
        (
            "POST",
            "/api/devices/nosuch/rest".into(),
            Some(json!({"minutes": 5})),
            Some(Scope::DevicesWrite),
            404,
        ),
        (
            "DELETE",
            "/api/devices/nosuch/rest".into(),
            None,
            Some(Scope::DevicesWrite),
            404,
        ),
        (
            "GET",
            "/api/devices/nosuch/history".into(),
            None,
            Some(Scope::DevicesRead),
            404,
        ),
        ("GET", "/api/auth/me".into(), None, None, 200),
    ];

    let revoked = key(&hub, "admin").await;
    assert!(auth::revoke_api_key(&hub.store, &revoked).await.unwrap());
    let mut expired_spec = KeySpec::admin("expired");
    expired_spec.expires_at = Some(now_millis() - 1000);
    let expired = auth::create_key(&hub.store, &expired_spec, None)
        .await
        .unwrap()
        .secret;
    let device = auth::create_device(&hub.store, "phone", DeviceKind::Android)
        .await
        .unwrap();
    let (session, csrf) = login(&hub, "admin", ADMIN_PASSWORD).await;
    let jwt = hub_jwt(&hub).await;
    let secret = hub.store.secret(JWT_SECRET_NAME).await.unwrap().unwrap();
    let now = now_millis() / 1000;
    let expired_jwt = HubTokens::new(&secret).unwrap().issue(&Claims {
        iss: HUB_ISSUER.into(),
        sub: uuid::Uuid::new_v4().to_string(),
        name: "admin".into(),
        role: "admin".into(),
        scope: "admin".into(),
        iat: now - 120,
        exp: now - 60,
    });
    let forged_jwt = HubTokens::new("not the hub's secret")
        .unwrap()
        .issue(&Claims {
            iss: HUB_ISSUER.into(),
            sub: uuid::Uuid::new_v4().to_string(),
            name: "admin".into(),
            role: "admin".into(),
            scope: "admin".into(),
            iat: now,
            exp: now + 600,
        });

    let mut failures = Vec::new();
    for (method, path, body, scope, allowed) in &routes {
        let unsafe_method = *method != "GET";
        let mut cases: Vec<(&str, Cred, u16, &str)> = vec![
            ("no credential", Cred::None, 401, "unauthorized"),
            (
                "wrong key",
                Cred::Key("shk_wrongwrongwrong".into()),
                401,
                "unauthorized",
            ),
            (
                "revoked key",
                Cred::Key(revoked.clone()),
                401,
                "unauthorized",
            ),
            (
                "expired key",
                Cred::Key(expired.clone()),
                401,
                "unauthorized",
            ),
            (
                "device token",
                Cred::Key(device.token.clone()),
                401,
                "unauthorized",
            ),
            (
                "device token as bearer",
                Cred::Bearer(device.token.clone()),
                401,
                "unauthorized",
            ),
            ("hub JWT", Cred::Bearer(jwt.clone()), *allowed, ""),
            (
                "expired hub JWT",
                Cred::Bearer(expired_jwt.clone()),
                401,
                "unauthorized",
            ),
            (
                "forged hub JWT",
                Cred::Bearer(forged_jwt.clone()),
                401,
                "unauthorized",
            ),
            (
                "session with CSRF token",
                Cred::Cookie(session.clone(), Some(csrf.clone())),
                *allowed,
                "",
            ),
            (
                "unknown session",
                Cred::Cookie("shs_nosuch".into(), Some(csrf.clone())),
                401,
                "unauthorized",
            ),
        ];
        if unsafe_method {
            cases.push((
                "session without CSRF token",
                Cred::Cookie(session.clone(), None),
                403,
                "csrf",
            ));
            cases.push((
                "session with a wrong CSRF token",
                Cred::Cookie(session.clone(), Some("nope".into())),
                403,
                "csrf",
            ));
        } else {
            cases.push((
                "session without CSRF token (safe method)",
                Cred::Cookie(session.clone(), None),
                *allowed,
                "",
            ));
        }
        match scope {
            Some(scope) => {
                // A key with every scope but this one (and not `admin`).
                let others: Vec<&str> = Scope::ALL
                    .iter()
                    .filter(|it| **it != *scope && **it != Scope::Admin)
                    .filter(|it| !(*scope == Scope::MessagesRead && **it == Scope::MessagesReadAll))
                    .map(|it| it.as_str())
                    .collect();
                let without = key(&hub, &others.join(" ")).await;
                let with = key(&hub, scope.as_str()).await;
                cases.push((
                    "key without the scope",
                    Cred::Key(without),
                    403,
                    "forbidden",
                ));
                cases.push(("key with the scope", Cred::Key(with.clone()), *allowed, ""));
                cases.push((
                    "key with the scope as bearer",
                    Cred::Bearer(with),
                    *allowed,
                    "",
                ));
            }
            None => {
                let any = key(&hub, "inbox:read").await;
                cases.push(("any valid key", Cred::Key(any), *allowed, ""));
            }
        }
        for (what, cred, status, code) in cases {
            let answer = call(&hub, method, path, &cred, body.clone()).await;
            let code_ok = code.is_empty() || answer.body["error"]["code"] == code;
            if answer.status != status || !code_ok {
                failures.push(format!(
                    "{method} {path} with {what}: got {} {}, want {status} {code}",
                    answer.status, answer.body
                ));
            }
            if what == "expired key"
                && !answer.body["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("expired")
            {
                failures.push(format!(
                    "{method} {path}: an expired key is not said to be expired"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Without `messages:read_all` a key sees, lists and cancels only its own messages; another
/// key's are as absent as messages that never existed.
#[tokio::test]
async fn a_key_sees_and_cancels_only_its_own_messages() {
    let hub = spawn().await;
    let alice = Cred::Key(key(&hub, "messages:send messages:read").await);
    let bob = Cred::Key(key(&hub, "messages:send messages:read").await);
    let sent = call(
        &hub,
        "POST",
        "/api/send-sms",
        &alice,
        Some(json!({"phone_number": "+14155552671", "message": "mine"})),
    )
    .await;
    assert_eq!(sent.status, 202);
    let id = sent.body["id"].as_str().unwrap().to_string();

    let theirs = call(&hub, "GET", &format!("/api/sms/{id}"), &bob, None).await;
    assert_eq!(
        (theirs.status, theirs.body["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    let cancel = call(&hub, "DELETE", &format!("/api/sms/{id}"), &bob, None).await;
    assert_eq!(cancel.status, 404);
    let list = call(&hub, "GET", "/api/sms", &bob, None).await;
    assert_eq!(list.body["total"], 0, "{}", list.body);
    let outbox = call(&hub, "GET", "/api/sms/outbox", &bob, None).await;
    assert_eq!(outbox.body["total"], 0);

    let mine = call(&hub, "GET", "/api/sms", &alice, None).await;
    assert_eq!(mine.body["total"], 1);
    assert_eq!(
        call(&hub, "GET", &format!("/api/sms/{id}"), &alice, None)
            .await
            .status,
        200
    );
    // `messages:read_all` sees everyone's.
    let all = call(
        &hub,
        "GET",
        &format!("/api/sms/{id}"),
        &Cred::Key(hub.api_key.clone()),
        None,
    )
    .await;
    assert_eq!(all.status, 200);
    let cancel = call(&hub, "DELETE", &format!("/api/sms/{id}"), &alice, None).await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    assert_eq!(cancel.body["state"], "cancelled");
}

/// `GET /api/sms?api_key_id=…` lists the messages one key sent; a caller without
/// `messages:read_all` still sees only its own, whatever key it names; a malformed id is
/// `400 invalid_query`.
#[tokio::test]
async fn messages_filter_by_the_key_that_sent_them_within_the_callers_tenant() {
    let hub = spawn().await;
    let alice = Cred::Key(key(&hub, "messages:send messages:read").await);
    let bob = Cred::Key(key(&hub, "messages:send messages:read").await);
    let admin = Cred::Key(hub.api_key.clone());
    let owner = |me: Answer| me.body["owner"].as_str().unwrap().to_string();
    let alice_id = owner(call(&hub, "GET", "/api/auth/me", &alice, None).await);
    let bob_id = owner(call(&hub, "GET", "/api/auth/me", &bob, None).await);
    for (cred, n) in [(&alice, 2), (&bob, 1)] {
        for _ in 0..n {
            let sent = call(
                &hub,
                "POST",
                "/api/send-sms",
                cred,
                Some(json!({"phone_number": "+14155552671", "message": "whose?"})),
            )
            .await;
            assert_eq!(sent.status, 202, "{}", sent.body);
        }
    }
    let total = |answer: Answer| {
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body["total"].as_u64().unwrap()
    };
    let path = |id: &str| format!("/api/sms?api_key_id={id}");
    // An admin (`messages:read_all`) picks any key's messages.
    assert_eq!(
        total(call(&hub, "GET", &path(&alice_id), &admin, None).await),
        2
    );
    assert_eq!(
        total(call(&hub, "GET", &path(&bob_id), &admin, None).await),
        1
    );
    assert_eq!(total(call(&hub, "GET", "/api/sms", &admin, None).await), 3);
    // The outbox takes the filter too.
    assert_eq!(
        total(
            call(
                &hub,
                "GET",
                &format!("/api/sms/outbox?api_key_id={bob_id}"),
                &admin,
                None
            )
            .await
        ),
        0
    );
    // Bob names Alice's key: still only his own, so nothing.
    assert_eq!(
        total(call(&hub, "GET", &path(&alice_id), &bob, None).await),
        0
    );
    assert_eq!(
        total(call(&hub, "GET", &path(&bob_id), &bob, None).await),
        1
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        total(call(&hub, "GET", &path(&unknown), &admin, None).await),
        0
    );
    for bad in ["nope", "shk_123", "12345678-1234"] {
        let refused = call(&hub, "GET", &path(bad), &admin, None).await;
        assert_eq!(
            (refused.status, refused.body["error"]["code"].clone()),
            (400, json!("invalid_query")),
            "{bad}: {}",
            refused.body
        );
    }
}

/// A key restricted to one device sends only through it: pinned elsewhere is `403`, unpinned
/// messages go to it alone, and the restriction survives a restart.
#[tokio::test]
async fn a_restricted_key_sends_only_through_its_devices_even_after_a_restart() {
    let hub = spawn().await;
    let (a, a_token) = hub.add_device("a").await;
    let (b, b_token) = hub.add_device("b").await;
    let mut spec = KeySpec::admin("only b");
    spec.scopes = Scopes::parse("messages:send messages:read").unwrap();
    spec.devices = AllowedDevices::parse(&b).unwrap();
    let restricted = auth::create_key(&hub.store, &spec, None)
        .await
        .unwrap()
        .secret;
    let cred = Cred::Key(restricted.clone());

    let pinned = call(
        &hub,
        "POST",
        "/api/send-sms",
        &cred,
        Some(json!({"phone_number": "+14155552671", "message": "x", "device_id": a})),
    )
    .await;
    assert_eq!(
        (pinned.status, pinned.body["error"]["code"].clone()),
        (403, json!("forbidden"))
    );

    // Queued while no phone is online, then the hub restarts.
    let mut ids = Vec::new();
    for n in 0..3 {
        let sent = call(
            &hub,
            "POST",
            "/api/send-sms",
            &cred,
            Some(json!({"phone_number": format!("+1415555{:04}", 3000 + n), "message": "to b"})),
        )
        .await;
        assert_eq!(sent.status, 202, "{}", sent.body);
        ids.push(sent.body["id"].as_str().unwrap().to_string());
    }
    let hub = hub.restart().await;

    // Device a comes first: it gets an unrestricted message sent after them, so dispatch
    // passes ran while it was free, and none of the restricted ones.
    let mut phone_a = RawPhone::connect(&hub.base, &a, &a_token).await.unwrap();
    phone_a.hello(10, None).await;
    phone_a.status(100, true, -60).await;
    let other = hub
        .send_sms(json!({"phone_number": "+14155559999", "message": "anyone"}))
        .await;
    let offer = phone_a.expect_offer().await;
    assert_eq!(
        offer.id, other,
        "device a got a message of the restricted key"
    );

    let mut phone_b = RawPhone::connect(&hub.base, &b, &b_token).await.unwrap();
    phone_b.hello(10, None).await;
    phone_b.status(100, true, -60).await;
    for id in &ids {
        let body = hub.wait_state(id, "dispatched").await;
        assert_eq!(body["device_id"], b.as_str(), "{body}");
    }
}

/// Rotation: the new key works at once and the old one is refused from the next request;
/// lists show the prefix, status and last use, never the secret.
#[tokio::test]
async fn a_rotated_key_replaces_the_old_one_at_once() {
    let hub = spawn().await;
    let admin = Cred::Key(hub.api_key.clone());
    let created = call(
        &hub,
        "POST",
        "/api/keys",
        &admin,
        Some(json!({"name": "app", "scopes": "messages:send,devices:read", "expires_at": "30d"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let old = created.body["key"].as_str().unwrap().to_string();
    let prefix = created.body["prefix"].as_str().unwrap().to_string();
    assert!(old.starts_with(&prefix) && prefix.starts_with("shk_"));
    assert_eq!(
        created.body["scopes"],
        json!(["messages:send", "devices:read"])
    );
    assert!(created.body["expires_at"].is_string());
    assert_eq!(
        call(&hub, "GET", "/api/devices", &Cred::Key(old.clone()), None)
            .await
            .status,
        200
    );

    let shown = call(&hub, "GET", &format!("/api/keys/{prefix}"), &admin, None).await;
    assert_eq!(shown.status, 200);
    assert!(shown.body["last_used_at"].is_string(), "{}", shown.body);
    assert!(shown.body.get("key").is_none());

    let rotated = call(
        &hub,
        "POST",
        &format!("/api/keys/{prefix}/rotate"),
        &admin,
        None,
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = rotated.body["key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(
        rotated.body["scopes"],
        json!(["messages:send", "devices:read"])
    );
    assert_eq!(
        call(&hub, "GET", "/api/devices", &Cred::Key(old), None)
            .await
            .status,
        401
    );
    assert_eq!(
        call(&hub, "GET", "/api/devices", &Cred::Key(new.clone()), None)
            .await
            .status,
        200
    );

    let list = call(&hub, "GET", "/api/keys", &admin, None).await;
    let keys = list.body["keys"].as_array().unwrap();
    let status_of = |p: &str| keys.iter().find(|it| it["prefix"] == p).unwrap()["status"].clone();
    assert_eq!(status_of(&prefix), "revoked");
    assert_eq!(status_of(&new[..10]), "active");
    assert!(
        !list.body.to_string().contains(&new),
        "a list never shows a secret"
    );

    // A key cannot grant what its creator lacks.
    let limited = Cred::Key(key(&hub, "keys:admin messages:send").await);
    let refused = call(
        &hub,
        "POST",
        "/api/keys",
        &limited,
        Some(json!({"name": "more", "scopes": ["messages:read_all"]})),
    )
    .await;
    assert_eq!(
        (refused.status, refused.body["error"]["code"].clone()),
        (403, json!("forbidden"))
    );
    let refused = call(
        &hub,
        "POST",
        &format!("/api/keys/{}/rotate", &new[..10]),
        &limited,
        None,
    )
    .await;
    assert_eq!(refused.status, 403);
    let bad = call(
        &hub,
        "POST",
        "/api/keys",
        &admin,
        Some(json!({"name": "x", "scopes": ["messages:write"]})),
    )
    .await;
    assert_eq!(
        (bad.status, bad.body["error"]["code"].clone()),
        (400, json!("invalid_scope"))
    );
}

/// `X-RateLimit-*` on every authenticated answer (errors too), `429 rate_limited` with
/// `Retry-After` past the limit, per-key overrides, and message limits.
#[tokio::test]
async fn rate_limits_count_requests_and_messages_per_key() {
    let hub = TestHub::spawn_with(|config| {
        config.rate_limits = KeyLimits {
            requests_per_minute: Some(3),
            ..KeyLimits::default()
        };
    })
    .await;
    let admin = Cred::Key(hub.api_key.clone());
    let first = call(&hub, "GET", "/api/stats", &admin, None).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.headers["x-ratelimit-limit"], "3");
    assert_eq!(first.headers["x-ratelimit-remaining"], "2");
    assert!(
        first.headers["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    let error = call(&hub, "GET", "/api/sms/not-an-id", &admin, None).await;
    assert_eq!(error.status, 404);
    assert_eq!(error.headers["x-ratelimit-remaining"], "1");
    call(&hub, "GET", "/api/stats", &admin, None).await;
    let limited = call(&hub, "GET", "/api/stats", &admin, None).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.body["error"]["code"], "rate_limited");
    assert_eq!(limited.headers["x-ratelimit-remaining"], "0");
    assert!(
        limited.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // No credential: no limit to tell.
    let anonymous = call(&hub, "GET", "/api/stats", &Cred::None, None).await;
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.headers.get("x-ratelimit-limit").is_none());

    // Another key has its own bucket; its own limits override the defaults.
    let mut spec = KeySpec::admin("own limits");
    spec.limits = KeyLimits {
        requests_per_minute: Some(0),
        messages_per_minute: Some(2),
        ..KeyLimits::default()
    };
    let own = Cred::Key(
        auth::create_key(&hub.store, &spec, None)
            .await
            .unwrap()
            .secret,
    );
    for _ in 0..5 {
        let answer = call(&hub, "GET", "/api/stats", &own, None).await;
        assert_eq!(answer.status, 200);
        assert!(
            answer.headers.get("x-ratelimit-limit").is_none(),
            "0 is no limit"
        );
    }
    let three = call(&hub, "POST", "/api/send-sms", &own, Some(json!({"phone_numbers": ["+14155550001", "+14155550002", "+14155550003"], "message": "x"}))).await;
    assert_eq!(
        (three.status, three.body["error"]["code"].clone()),
        (429, json!("rate_limited"))
    );
    assert!(three.headers.contains_key("retry-after"));
    let two = call(
        &hub,
        "POST",
        "/api/send-sms",
        &own,
        Some(json!({"phone_numbers": ["+14155550001", "+14155550002"], "message": "x"})),
    )
    .await;
    assert_eq!(two.status, 202, "{}", two.body);
    let more = call(
        &hub,
        "POST",
        "/api/send-sms",
        &own,
        Some(json!({"phone_number": "+14155550003", "message": "x"})),
    )
    .await;
    assert_eq!(more.status, 429);
    // A refused send stored nothing.
    let listed = call(&hub, "GET", "/api/sms", &own, None).await;
    assert_eq!(listed.body["total"], 2);
}

/// Every scoped operation of the OpenAPI document (so every route added later too): no
/// credential and a wrong key get `401`, a key with every other scope gets `403 forbidden`
/// naming the missing scope, and a key with the scope gets past access control.
#[tokio::test]
async fn every_scoped_operation_needs_exactly_its_scope() {
    use smshub::api::openapi::SCOPES;
    let hub = spawn().await;
    let mut failures = Vec::new();
    for (method, template, scope) in SCOPES {
        let path: String = template
            .split('/')
            .map(|segment| {
                if segment == "{index}" {
                    "1"
                } else if segment.starts_with('{') {
                    "nosuch"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = method.to_uppercase();
        let others: Vec<&str> = Scope::ALL
            .iter()
            .filter(|it| **it != *scope && **it != Scope::Admin)
            .filter(|it| !(*scope == Scope::MessagesRead && **it == Scope::MessagesReadAll))
            .map(|it| it.as_str())
            .collect();
        let without = key(&hub, &others.join(" ")).await;
        let with = key(&hub, scope.as_str()).await;
        let cases = [
            ("no credential", Cred::None),
            ("a wrong key", Cred::Key("shk_wrongwrongwrong".into())),
            ("a key without the scope", Cred::Key(without)),
            ("a key with the scope", Cred::Key(with)),
        ];
        for (what, cred) in cases {
            let (status, body) = head_of(&hub, &method, &path, &cred).await;
            let ok = match what {
                "no credential" | "a wrong key" => {
                    status == 401 && body["error"]["code"] == "unauthorized"
                }
                "a key without the scope" => {
                    status == 403
                        && body["error"]["code"] == "forbidden"
                        && body["error"]["message"]
                            .as_str()
                            .unwrap_or("")
                            .contains(scope.as_str())
                }
                _ => status != 401 && status != 403 && status < 500,
            };
            if !ok {
                failures.push(format!("{method} {path} with {what}: got {status} {body}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The status and (unless it is a stream) the JSON body of a request with an empty JSON
/// body on unsafe methods.
async fn head_of(hub: &TestHub, method: &str, path: &str, cred: &Cred) -> (u16, Value) {
    let mut request = hub
        .http
        .request(method.parse().unwrap(), hub.url(path))
        .header("Content-Type", "application/json");
    request = match cred {
        Cred::Key(key) => request.header("X-API-Key", key),
        _ => request,
    };
    if method != "GET" {
        request = request.body("{}");
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let streams = response
        .headers()
        .get("content-type")
        .is_some_and(|it| it.as_bytes().starts_with(b"text/event-stream"));
    let body = if streams {
        Value::Null
    } else {
        response.json().await.unwrap_or(Value::Null)
    };
    (status, body)
}
