//! The command line as other tools use it: key creation, device registration, serve.

use std::process::Command;

fn smshub() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smshub"))
}

#[test]
fn keys_and_devices_are_created_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let output = smshub()
        .args(["keys", "create", "--name", "ci", "--database-url", &db])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let key = stdout.lines().last().unwrap();
    assert!(key.starts_with("shk_") && key.len() == 47, "{stdout}");

    let output = smshub()
        .args(["devices", "add", "rack-1", "--json"])
        .env("SMSHUB_DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let device: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        device["id"].as_str().is_some_and(|it| it.len() == 16),
        "{device}"
    );
    assert!(
        device["token"]
            .as_str()
            .is_some_and(|it| it.starts_with("shd_")),
        "{device}"
    );

    let output = smshub()
        .args([
            "keys",
            "create",
            "--name",
            "x",
            "--database-url",
            "mysql://nope",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unsupported database URL"));
}

#[test]
fn an_operators_file_is_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |file: &std::path::Path| {
        smshub()
            .args(["serve", "--listen", "127.0.0.1:0"])
            // An unusable database stops `serve` right after the configuration is read.
            .args(["--database-url", "mysql://nope"])
            .env("SMSHUB_OPERATORS", file)
            .output()
            .unwrap()
    };

    let bad = dir.path().join("operators.toml");
    std::fs::write(
        &bad,
        "[[operator]]\nmcc_mnc = \"60302\"\nbalanse_ussd = \"*710#\"\n",
    )
    .unwrap();
    let output = serve(&bad);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|it| it.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        line.contains("operators file")
            && line.contains("operators.toml")
            && line.contains("line 3, column 1: unknown field `balanse_ussd`"),
        "{stderr}"
    );
    assert!(!stderr.contains("unsupported database URL"), "{stderr}");

    let missing = dir.path().join("nowhere.toml");
    let stderr = String::from_utf8_lossy(&serve(&missing).stderr).to_string();
    assert!(
        stderr.contains("operators file") && stderr.contains("nowhere.toml"),
        "{stderr}"
    );

    // A good file (JSON by its name) is accepted: serve goes on to the database.
    let good = dir.path().join("operators.json");
    std::fs::write(
        &good,
        r#"{"operator": [{"mcc_mnc": "60302", "balance_ussd": "*710#"}]}"#,
    )
    .unwrap();
    let stderr = String::from_utf8_lossy(&serve(&good).stderr).to_string();
    assert!(stderr.contains("unsupported database URL"), "{stderr}");
}
