//! Access control for people (issue 16): the first admin, sessions with CSRF tokens, hub
//! JWTs, the Flask gateway's routes, roles, lockout, the audit log, and `smshub keys` /
//! `smshub users` at the command line.

use serde_json::{Value, json};
use smshub::auth;

use crate::access::{ADMIN_PASSWORD, Cred, call, login, spawn};

/// People: the first admin, sessions with CSRF, logout, hub JWTs, the Flask aliases, users
/// with roles, lockout after repeated failures, and every step in the audit log.
#[tokio::test]
async fn people_log_in_get_tokens_are_locked_out_and_audited() {
    let hub = spawn().await;
    assert!(
        auth::users::add_user(
            &hub.store,
            "olga",
            "operator-pass",
            auth::users::Role::Operator
        )
        .await
        .unwrap()
    );
    let (session, csrf) = login(&hub, "olga", "operator-pass").await;
    let me = call(
        &hub,
        "GET",
        "/api/auth/me",
        &Cred::Cookie(session.clone(), None),
        None,
    )
    .await;
    assert_eq!(me.body["label"], "user:olga");
    assert_eq!(me.body["via"], "session");
    // An operator sends but does not manage keys.
    let send = call(
        &hub,
        "POST",
        "/api/send-sms",
        &Cred::Cookie(session.clone(), Some(csrf.clone())),
        Some(json!({"phone_number": "+14155552671", "message": "hi"})),
    )
    .await;
    assert_eq!(send.status, 202, "{}", send.body);
    let keys = call(
        &hub,
        "GET",
        "/api/keys",
        &Cred::Cookie(session.clone(), None),
        None,
    )
    .await;
    assert_eq!(keys.status, 403);
    // A session's JWT.
    let token = call(
        &hub,
        "POST",
        "/api/auth/token",
        &Cred::Cookie(session.clone(), Some(csrf.clone())),
        None,
    )
    .await;
    assert_eq!(token.status, 200, "{}", token.body);
    assert_eq!(token.body["role"], "operator");
    let jwt = token.body["token"].as_str().unwrap().to_string();
    assert_eq!(
        call(&hub, "GET", "/api/devices", &Cred::Bearer(jwt), None)
            .await
            .status,
        200
    );
    // Logout ends the session (stored: it survives nothing but is revoked everywhere).
    let out = call(
        &hub,
        "POST",
        "/api/auth/logout",
        &Cred::Cookie(session.clone(), Some(csrf.clone())),
        None,
    )
    .await;
    assert_eq!(out.status, 204);
    assert_eq!(
        call(
            &hub,
            "GET",
            "/api/auth/me",
            &Cred::Cookie(session, None),
            None
        )
        .await
        .status,
        401
    );

    // Sessions are stored: they survive a restart.
    let (admin_session, _) = login(&hub, "admin", ADMIN_PASSWORD).await;
    let hub = hub.restart().await;
    let me = call(
        &hub,
        "GET",
        "/api/auth/me",
        &Cred::Cookie(admin_session, None),
        None,
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.body);

    // The Flask gateway's routes.
    let flask = call(
        &hub,
        "POST",
        "/api/auth",
        &Cred::None,
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
    )
    .await;
    assert_eq!(flask.status, 200);
    assert_eq!(flask.body["role"], "admin");
    let token = flask.body["token"].as_str().unwrap().to_string();
    let generated = call(
        &hub,
        "POST",
        "/api/generate-api-key",
        &Cred::Bearer(token),
        None,
    )
    .await;
    assert_eq!(generated.status, 201, "{}", generated.body);
    let new_key = generated.body["api_key"].as_str().unwrap().to_string();
    assert_eq!(
        call(&hub, "GET", "/api/keys", &Cred::Key(new_key), None)
            .await
            .status,
        200
    );

    // Lockout: five wrong passwords, then even the right one waits.
    for _ in 0..5 {
        let wrong = call(
            &hub,
            "POST",
            "/api/auth/login",
            &Cred::None,
            Some(json!({"username": "admin", "password": "guess"})),
        )
        .await;
        assert_eq!(wrong.status, 401);
    }
    let locked = call(
        &hub,
        "POST",
        "/api/auth/login",
        &Cred::None,
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
    )
    .await;
    assert_eq!(
        (locked.status, locked.body["error"]["code"].clone()),
        (429, json!("rate_limited"))
    );
    assert!(
        locked.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let unknown = call(
        &hub,
        "POST",
        "/api/auth/login",
        &Cred::None,
        Some(json!({"username": "nobody", "password": "x"})),
    )
    .await;
    assert_eq!(unknown.status, 429, "the address is locked out too");

    let audit = call(
        &hub,
        "GET",
        "/api/audit?action=login&limit=50",
        &Cred::Key(hub.api_key.clone()),
        None,
    )
    .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let entries = audit.body["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|it| it["actor"] == "user:olga" && it["ok"] == true)
    );
    assert!(
        entries
            .iter()
            .any(|it| it["actor"] == "admin" && it["ok"] == false)
    );
    let all = call(
        &hub,
        "GET",
        "/api/audit",
        &Cred::Key(hub.api_key.clone()),
        None,
    )
    .await;
    let actions: Vec<&str> = all.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["action"].as_str().unwrap())
        .collect();
    // (`user.add` here went through the library; the CLI test checks its entry.)
    for action in ["login", "logout", "key.create"] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
}

/// `smshub keys …` and `smshub users …` work on the database, and what they do is audited.
#[tokio::test]
async fn keys_and_users_from_the_command_line() {
    let hub = spawn().await;
    let db = hub.config.database_url.clone();
    let smshub = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_smshub"))
            .args(args)
            .args(["--database-url", &db])
            .output()
            .expect("smshub runs");
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let (device, _) = hub.add_device("cli-phone").await;
    let created: Value = serde_json::from_str(&smshub(&[
        "keys",
        "create",
        "--name",
        "cli",
        "--scope",
        "messages:send,messages:read",
        "--scope",
        "inbox:read",
        "--expires",
        "30d",
        "--device",
        &format!("{device}:1"),
        "--messages-per-day",
        "100",
        "--json",
    ]))
    .unwrap();
    assert_eq!(
        created["scopes"],
        json!(["messages:send", "messages:read", "inbox:read"])
    );
    assert_eq!(created["devices"], json!([format!("{device}:1")]));
    assert_eq!(created["rate_limits"]["messages_per_day"], 100);
    let secret = created["key"].as_str().unwrap().to_string();
    let prefix = created["prefix"].as_str().unwrap().to_string();
    let cred = Cred::Key(secret.clone());
    assert_eq!(
        call(&hub, "GET", "/api/sms/inbox", &cred, None)
            .await
            .status,
        200
    );
    assert_eq!(
        call(&hub, "GET", "/api/devices", &cred, None).await.status,
        403
    );
    // Pinned to its device but another SIM: refused.
    let other_sim = call(&hub, "POST", "/api/send-sms", &cred, Some(json!({"phone_number": "+14155552671", "message": "x", "device_id": device, "sim_slot": 0}))).await;
    assert_eq!(other_sim.status, 403, "{}", other_sim.body);

    let list = smshub(&["keys", "list"]);
    assert!(
        list.contains(&prefix) && list.contains("messages:send"),
        "{list}"
    );
    assert!(!list.contains(&secret));
    let rotated = smshub(&["keys", "rotate", &prefix, "--json"]);
    let rotated: Value = serde_json::from_str(&rotated).unwrap();
    assert_eq!(
        call(&hub, "GET", "/api/sms/inbox", &cred, None)
            .await
            .status,
        401
    );
    let new = Cred::Key(rotated["key"].as_str().unwrap().to_string());
    assert_eq!(
        call(&hub, "GET", "/api/sms/inbox", &new, None).await.status,
        200
    );

    let added = smshub(&["users", "add", "vera", "--role", "viewer"]);
    let password = added
        .lines()
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let (session, _) = login(&hub, "vera", &password).await;
    let users: Value = serde_json::from_str(&smshub(&["users", "list", "--json"])).unwrap();
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|it| it["username"] == "vera" && it["role"] == "viewer")
    );
    smshub(&["users", "passwd", "vera", "--password", "a new password"]);
    assert_eq!(
        call(
            &hub,
            "GET",
            "/api/auth/me",
            &Cred::Cookie(session, None),
            None
        )
        .await
        .status,
        401,
        "a new password ends sessions"
    );
    login(&hub, "vera", "a new password").await;
    smshub(&["users", "remove", "vera"]);
    let gone = call(
        &hub,
        "POST",
        "/api/auth/login",
        &Cred::None,
        Some(json!({"username": "vera", "password": "a new password"})),
    )
    .await;
    assert_eq!(gone.status, 401);

    let answer = call(
        &hub,
        "GET",
        "/api/audit?actor=cli",
        &Cred::Key(hub.api_key.clone()),
        None,
    )
    .await;
    let audit: Vec<&str> = answer.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["action"].as_str().unwrap())
        .collect();
    for action in [
        "key.create",
        "key.rotate",
        "user.add",
        "user.passwd",
        "user.remove",
    ] {
        assert!(audit.contains(&action), "{action} missing from {audit:?}");
    }
}

/// The first admin is made once, with a generated password when none is given.
#[tokio::test]
async fn the_first_admin_is_made_once_with_a_generated_password() {
    let hub = crate::support::TestHub::spawn().await;
    let made = auth::users::first_admin(&hub.store, None)
        .await
        .unwrap()
        .expect("no user yet: the first admin is made");
    let password = made.generated_password.expect("generated");
    assert!(password.len() >= 20);
    login(&hub, "admin", &password).await;
    assert!(
        auth::users::first_admin(&hub.store, Some("another password"))
            .await
            .unwrap()
            .is_none()
    );
}

/// `/api/users`: an admin lists, adds, changes the role and password of, and removes people;
/// the last admin can be neither removed nor demoted; every change is audited; other roles
/// are refused.
#[tokio::test]
async fn admins_manage_users_over_the_api() {
    let hub = spawn().await;
    let (session, csrf) = login(&hub, "admin", ADMIN_PASSWORD).await;
    let admin = Cred::Cookie(session.clone(), Some(csrf.clone()));

    let list = call(&hub, "GET", "/api/users", &admin, None).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let users = list.body["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["username"], "admin");
    assert_eq!(users[0]["role"], "admin");
    assert!(users[0]["last_login_at"].is_string(), "{}", list.body);
    assert!(users[0].get("password_hash").is_none());

    let body = json!({"username": "vera", "password": "viewer-pass", "role": "viewer"});
    let added = call(&hub, "POST", "/api/users", &admin, Some(body.clone())).await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["role"], "viewer");
    assert!(added.body["last_login_at"].is_null());
    let again = call(&hub, "POST", "/api/users", &admin, Some(body)).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["error"]["code"], "user_exists");
    for (body, code) in [
        (
            json!({"username": "x y", "password": "long enough", "role": "viewer"}),
            "invalid_username",
        ),
        (
            json!({"username": "short", "password": "short", "role": "viewer"}),
            "invalid_password",
        ),
        (
            json!({"username": "boss", "password": "long enough", "role": "boss"}),
            "invalid_role",
        ),
        (
            json!({"username": "extra", "password": "long enough", "role": "viewer", "x": 1}),
            "invalid_request",
        ),
    ] {
        let refused = call(&hub, "POST", "/api/users", &admin, Some(body)).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_eq!(refused.body["error"]["code"], code);
    }
    // The hash is argon2id, as the CLI's.
    let stored = hub.store.find_user("vera").await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"));

    // Vera signs in as a viewer, and may not manage users.
    let (vera, vera_csrf) = login(&hub, "vera", "viewer-pass").await;
    let refused = call(
        &hub,
        "GET",
        "/api/users",
        &Cred::Cookie(vera.clone(), None),
        None,
    )
    .await;
    assert_eq!(refused.status, 403);

    // Promoted to operator; the role applies to her open session.
    let patched = call(
        &hub,
        "PATCH",
        "/api/users/vera",
        &admin,
        Some(json!({"role": "operator"})),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["role"], "operator");
    let send = call(
        &hub,
        "POST",
        "/api/send-sms",
        &Cred::Cookie(vera.clone(), Some(vera_csrf)),
        Some(json!({"phone_number": "+14155552671", "message": "hi"})),
    )
    .await;
    assert_eq!(send.status, 202, "{}", send.body);

    // A new password ends her sessions; the new one works.
    let patched = call(
        &hub,
        "PATCH",
        "/api/users/vera",
        &admin,
        Some(json!({"password": "a new password"})),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let gone = call(&hub, "GET", "/api/auth/me", &Cred::Cookie(vera, None), None).await;
    assert_eq!(gone.status, 401);
    login(&hub, "vera", "a new password").await;
    let short = call(
        &hub,
        "PATCH",
        "/api/users/vera",
        &admin,
        Some(json!({"password": "short"})),
    )
    .await;
    assert_eq!(short.body["error"]["code"], "invalid_password");

    // The last admin stays.
    for (method, body) in [("DELETE", None), ("PATCH", Some(json!({"role": "viewer"})))] {
        let refused = call(&hub, method, "/api/users/admin", &admin, body).await;
        assert_eq!(refused.status, 409, "{}", refused.body);
        assert_eq!(refused.body["error"]["code"], "last_admin");
    }
    // With a second admin, an admin may go.
    let promoted = call(
        &hub,
        "PATCH",
        "/api/users/vera",
        &admin,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(promoted.status, 200);
    let removed = call(&hub, "DELETE", "/api/users/vera", &admin, None).await;
    assert_eq!(removed.status, 204);
    let missing = call(&hub, "DELETE", "/api/users/vera", &admin, None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        call(
            &hub,
            "PATCH",
            "/api/users/nosuch",
            &admin,
            Some(json!({"role": "viewer"}))
        )
        .await
        .status,
        404
    );

    let audit = call(&hub, "GET", "/api/audit?limit=1000", &admin, None).await;
    let actions: Vec<(String, String, bool)> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|it| it["action"].as_str().unwrap().starts_with("user."))
        .map(|it| {
            (
                it["action"].as_str().unwrap().to_string(),
                it["target"].as_str().unwrap_or_default().to_string(),
                it["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("user.add", "vera", true),
        ("user.role", "vera", true),
        ("user.passwd", "vera", true),
        ("user.remove", "admin", false),
        ("user.role", "admin", false),
        ("user.remove", "vera", true),
    ] {
        let expected = (expected.0.to_string(), expected.1.to_string(), expected.2);
        assert!(
            actions.contains(&expected),
            "{expected:?} not in {actions:?}"
        );
    }
}

/// `smshub users remove` keeps the hub's last admin, as the API does (`409 last_admin`):
/// refused with a reason, the admin still signs in; once another admin exists it goes.
#[tokio::test]
async fn the_command_line_refuses_to_remove_the_last_admin() {
    let hub = spawn().await;
    let db = hub.config.database_url.clone();
    let smshub = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_smshub"))
            .args(args)
            .args(["--database-url", &db])
            .output()
            .expect("smshub runs")
    };
    let refused = smshub(&["users", "remove", "admin"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(said.contains("last admin"), "{said}");
    login(&hub, "admin", ADMIN_PASSWORD).await;

    let added = smshub(&["users", "add", "boss", "--role", "admin"]);
    assert!(added.status.success(), "{added:?}");
    let removed = smshub(&["users", "remove", "admin"]);
    assert!(removed.status.success(), "{removed:?}");
    let gone = call(
        &hub,
        "POST",
        "/api/auth/login",
        &Cred::None,
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
    )
    .await;
    assert_eq!(gone.status, 401);
    // Now boss is the last one.
    let refused = smshub(&["users", "remove", "boss"]);
    assert!(!refused.status.success(), "{refused:?}");
    let missing = smshub(&["users", "remove", "nosuch"]);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no user is named"),
        "{missing:?}"
    );
}
