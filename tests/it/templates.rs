//! Message templates (`/api/templates`, `src/api/templates.rs`) against a real hub: the CRUD
//! routes, stored through the writer and kept across a restart; `POST /api/send-sms` with
//! `template_id` and `params`, and its stable errors; the CLI's bulk sender with
//! `--template`, CSV columns as params.
//! Each runs twice, on SQLite and on PostgreSQL (`on_both_databases!`).

use serde_json::{Value, json};

use crate::support::TestHub;

async fn call(
    hub: &TestHub,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = hub
        .http
        .request(method, hub.url(path))
        .header("X-API-Key", &hub.api_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create(hub: &TestHub, name: &str, body: &str) -> String {
    let (status, created) = hub
        .post("/api/templates", json!({ "name": name, "body": body }))
        .await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_string()
}

async fn templates_are_created_listed_replaced_and_deleted() {
    let hub = TestHub::spawn().await;
    let (status, created) = hub
        .post(
            "/api/templates",
            json!({ "name": "otp", "body": "Hi {{name}}, your code is {{ code }}. Bye {{name}}" }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "otp");
    assert_eq!(created["fields"], json!(["name", "code"]), "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    let (status, list) = hub.get("/api/templates").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["templates"], json!([created.clone()]), "{list}");
    let (status, shown) = hub.get(&format!("/api/templates/{id}")).await;
    assert_eq!((status, &shown), (200, &created));

    let path = format!("/api/templates/{id}");
    let (status, replaced) = call(
        &hub,
        reqwest::Method::PUT,
        &path,
        Some(json!({ "name": "otp2", "body": "{{code}}" })),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        (replaced["name"].as_str(), replaced["fields"].clone()),
        (Some("otp2"), json!(["code"])),
        "{replaced}"
    );
    assert_eq!(replaced["created_at"], created["created_at"], "{replaced}");

    // Kept across a restart: it is in the database.
    let hub = hub.restart().await;
    let (status, shown) = hub.get(&path).await;
    assert_eq!(
        (status, shown["body"].as_str()),
        (200, Some("{{code}}")),
        "{shown}"
    );

    // Bad input changes nothing.
    for (body, code) in [
        (
            json!({ "name": "x", "body": "open {{name" }),
            "invalid_template",
        ),
        (
            json!({ "name": "x", "body": "bad {{a b}}" }),
            "invalid_template",
        ),
        (json!({ "name": "x", "body": "  " }), "invalid_template"),
        (json!({ "name": "", "body": "hi" }), "invalid_name"),
        (
            json!({ "name": "x", "body": "hi", "extra": 1 }),
            "invalid_request",
        ),
    ] {
        let (status, answer) = hub.post("/api/templates", body.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}: {answer}"
        );
        let (status, answer) = call(&hub, reqwest::Method::PUT, &path, Some(body.clone())).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "PUT {body}: {answer}"
        );
    }
    let (_, list) = hub.get("/api/templates").await;
    assert_eq!(
        list["templates"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
    assert_eq!(list["templates"][0]["body"], "{{code}}", "{list}");

    let (status, _) = call(&hub, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let (status, body) = call(&hub, method.clone(), &path, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{method}: {body}"
        );
    }
    let (status, body) = hub.get("/api/templates/not-a-uuid").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
}

async fn another_tenant_cannot_see_or_use_a_template() {
    let hub = TestHub::spawn().await;
    let id = create(&hub, "otp", "code {{code}}").await;
    let (status, other) = hub
        .post(
            "/api/keys",
            json!({ "name": "other", "scopes": ["messages:send", "messages:read"] }),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    let other_key = other["key"].as_str().unwrap();
    let get = hub
        .http
        .get(hub.url(&format!("/api/templates/{id}")))
        .header("X-API-Key", other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 404);
    let send = hub
        .http
        .post(hub.url("/api/send-sms"))
        .header("X-API-Key", other_key)
        .json(&json!({ "phone_number": "+14155552671", "template_id": id, "params": { "code": "1" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(send.status().as_u16(), 422);
    let body: Value = send.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_template", "{body}");
}

async fn send_sms_fills_in_a_template_or_names_what_is_wrong() {
    let hub = TestHub::spawn().await;
    let id = create(&hub, "otp", "Hi {{name}}, your code is {{code}}.").await;
    let (status, sent) = hub
        .post(
            "/api/send-sms",
            json!({ "phone_number": "+14155552671", "template_id": id, "params": { "name": "Ana", "code": 4821 } }),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let (_, message) = hub
        .get(&format!("/api/sms/{}", sent["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        message["message"], "Hi Ana, your code is 4821.",
        "{message}"
    );

    for (request, status, code) in [
        (
            json!({ "template_id": id, "params": { "name": "Ana" } }),
            422,
            "missing_template_param",
        ),
        (json!({ "template_id": id }), 422, "missing_template_param"),
        (
            json!({ "template_id": id, "params": { "name": "A", "code": "1", "shop": "x" } }),
            422,
            "unknown_template_param",
        ),
        (
            json!({ "template_id": id, "params": { "name": ["A"], "code": "1" } }),
            422,
            "invalid_template_param",
        ),
        (
            json!({ "template_id": "0190a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b", "params": {} }),
            422,
            "unknown_template",
        ),
        (json!({ "template_id": "nope" }), 422, "unknown_template"),
        (
            json!({ "template_id": id, "message": "both", "params": { "name": "A", "code": "1" } }),
            400,
            "invalid_request",
        ),
        (
            json!({ "message": "params alone", "params": { "name": "A" } }),
            400,
            "invalid_request",
        ),
    ] {
        let mut request = request;
        request["phone_number"] = json!("+14155552671");
        let (got, body) = hub.post("/api/send-sms", request.clone()).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{request}: {body}"
        );
    }
    assert_eq!(
        hub.message_count().await,
        1,
        "a refused send stores nothing"
    );
}

/// Runs the `smshub` binary against `hub`; returns (success, stdout, stderr).
async fn smshub(hub: &TestHub, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_smshub"))
        .args(args)
        .env("SMSHUB_HUB", &hub.base)
        .env("SMSHUB_API_KEY", &hub.api_key)
        .env_remove("SMSHUB_CONFIG")
        .output()
        .await
        .expect("smshub runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn a_bulk_csv_run_can_send_a_template_with_columns_as_params() {
    let hub = TestHub::spawn().await;
    let id = create(
        &hub,
        "reminder",
        "Dear {{name}}, your appointment is on {{day}}.",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reminders.csv");
    std::fs::write(
        &file,
        "phone_number,name,day,unused\n+14155552671,Ann,Monday,x\n+14155552672,\"Bob, Jr\",Tuesday,y\n",
    )
    .unwrap();
    let csv = file.to_str().unwrap();
    let (ok, out, err) = smshub(&hub, &["send", "--csv", csv, "--template", &id, "--json"]).await;
    assert!(ok, "{out}\n{err}");
    let summary: Value = serde_json::from_str(out.trim()).expect("json summary");
    assert_eq!(
        (summary["queued"].as_u64(), summary["failed"].as_u64()),
        (Some(2), Some(0)),
        "{summary}"
    );
    let (_, list) = hub.get("/api/sms?limit=10").await;
    let mut texts: Vec<String> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["message"].as_str().unwrap().to_string())
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            "Dear Ann, your appointment is on Monday.",
            "Dear Bob, Jr, your appointment is on Tuesday."
        ]
    );

    // A file without a column the template needs is refused before anything is sent.
    let missing = dir.path().join("missing.csv");
    std::fs::write(&missing, "phone_number,name\n+14155552673,Cy\n").unwrap();
    let (ok, _, err) = smshub(
        &hub,
        &[
            "send",
            "--csv",
            missing.to_str().unwrap(),
            "--template",
            &id,
        ],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("\"day\""), "{err}");
    assert_eq!(hub.message_count().await, 2);
}

crate::on_both_databases!(
    templates_are_created_listed_replaced_and_deleted,
    another_tenant_cannot_see_or_use_a_template,
    send_sms_fills_in_a_template_or_names_what_is_wrong,
    a_bulk_csv_run_can_send_a_template_with_columns_as_params,
);
