//! The command line for people (`smshub send`, `messages`, `devices list`) against a real hub.

use serde_json::Value;

use crate::support::TestHub;

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

#[tokio::test]
async fn send_list_show_and_cancel_from_the_command_line() {
    let hub = TestHub::spawn().await;

    let (ok, out, err) = smshub(
        &hub,
        &[
            "send",
            "--to",
            "+14155552671",
            "--to",
            "+14155552672",
            "--text",
            "hi",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let ids: Vec<&str> = out
        .lines()
        .map(|line| line.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{out}");
    assert!(out.contains("+14155552672  queued"), "{out}");
    assert_eq!(hub.message_count().await, 2);

    // A refused send says the API's code and fails.
    let (ok, _, err) = smshub(&hub, &["send", "--to", "12", "--text", "hi"]).await;
    assert!(!ok);
    assert!(err.contains("400 invalid_phone_number"), "{err}");

    let (ok, out, err) = smshub(&hub, &["messages", "list"]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("ID"), "{out}");
    assert!(out.contains(ids[0]) && out.contains(ids[1]), "{out}");
    assert!(out.trim_end().ends_with("(2 in all)"), "{out}");

    let (ok, out, _) = smshub(&hub, &["messages", "list", "--json", "--state", "sent"]).await;
    assert!(ok);
    let body: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["total"], 0);

    let (ok, out, err) = smshub(&hub, &["messages", "show", ids[0]]).await;
    assert!(ok, "{err}");
    assert!(out.contains("state           queued"), "{out}");

    let (ok, out, err) = smshub(&hub, &["messages", "cancel", ids[0]]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("cancelled {}", ids[0]));
    hub.wait_state(ids[0], "cancelled").await;
    let (ok, _, err) = smshub(&hub, &["messages", "show", "nope"]).await;
    assert!(!ok);
    assert!(err.contains("404"), "{err}");

    let _phone = hub
        .phone("rack-phone-with-a-long-name", 80, true, -70, 4)
        .await;
    let (ok, out, err) = smshub(&hub, &["devices", "list"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("rack-phone-with-a-long-name"), "{out}");
    assert!(out.contains("online") && out.contains("80% +"), "{out}");
}

#[tokio::test]
async fn a_bulk_csv_run_reports_each_row_and_a_rerun_sends_nothing_twice() {
    let hub = TestHub::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("campaign.csv");
    std::fs::write(
        &file,
        "phone_number,message\n+14155552671,\"Hello, Ann\"\nnot-a-number,Hello Bob\n+14155552673,Hello Cy\n",
    )
    .unwrap();
    let csv = file.to_str().unwrap();

    let (ok, _, err) = smshub(&hub, &["send", "--csv", csv]).await;
    assert!(!ok, "a failed row fails the run");
    assert!(
        err.contains("3 rows: 2 queued, 0 already sent by an earlier run, 1 failed"),
        "{err}"
    );
    let results = std::fs::read_to_string(dir.path().join("campaign.csv.results.csv")).unwrap();
    let lines: Vec<&str> = results.lines().collect();
    assert_eq!(lines[0], "row,phone_number,status,id,error");
    assert!(lines[1].starts_with("1,+14155552671,queued,"), "{results}");
    assert!(
        lines[2].starts_with("2,not-a-number,error,,\"400 invalid_phone_number"),
        "{results}"
    );
    assert!(lines[3].starts_with("3,+14155552673,queued,"), "{results}");
    assert_eq!(hub.message_count().await, 2);
    let first_id = lines[1].split(',').nth(3).unwrap().to_string();

    // Run again (as after a crash): the rows that went are not sent again.
    let (ok, _, err) = smshub(&hub, &["send", "--csv", csv]).await;
    assert!(!ok);
    assert!(
        err.contains("3 rows: 0 queued, 2 already sent by an earlier run, 1 failed"),
        "{err}"
    );
    assert_eq!(hub.message_count().await, 2);
    let results = std::fs::read_to_string(dir.path().join("campaign.csv.results.csv")).unwrap();
    assert!(
        results.contains(&format!("1,+14155552671,replayed,{first_id},")),
        "{results}"
    );

    // A new run name sends the file again.
    let (_, out, err) = smshub(&hub, &["send", "--csv", csv, "--run", "second", "--json"]).await;
    let body: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    assert_eq!(body["queued"], 2);
    assert_eq!(hub.message_count().await, 4);
}
