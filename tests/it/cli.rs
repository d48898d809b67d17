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
