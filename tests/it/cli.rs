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

/// `smshub demo` run twice on one database reuses its API key and its `demo-phone-N` devices
/// (issue 13, defect 15): the second run prints the same key, the hub lists the same three
/// phones and the same phone running capcom6's app (`demo-app-1`), and they come online with
/// the tokens of the first run.
#[tokio::test]
async fn demo_run_twice_on_one_database_reuses_its_key_and_phones() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    let first = run_demo(&db).await;
    let second = run_demo(&db).await;
    assert_eq!(first.1.len(), 4, "{first:?}");
    assert_eq!(first.1[0].0, "demo-app-1", "{first:?}");
    assert_eq!(first, second, "the second run adds nothing");
}

/// Runs the demo until its three phones and its app are online; returns its key and every device listed, then
/// stops it with SIGTERM.
async fn run_demo(db: &str) -> (String, Vec<(String, String)>) {
    use std::io::BufRead;

    let port = crate::support::free_port();
    let mut child = smshub()
        .args(["demo", "--devices", "3", "--traffic", "0"])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            db,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (key_tx, key_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(key) = line.trim().strip_prefix("API key:") {
                let _ = key_tx.send(key.trim().to_string());
            }
        }
    });
    let key = key_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the demo prints its key");
    let http = reqwest::Client::new();
    let devices = crate::support::eventually("the demo's phones to be online", || async {
        let body: serde_json::Value = http
            .get(format!("http://127.0.0.1:{port}/api/devices"))
            .header("X-API-Key", &key)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let devices = body["devices"].as_array()?.clone();
        let online = devices.iter().filter(|it| it["online"] == true).count();
        (online >= 4).then_some(())?;
        let mut listed: Vec<(String, String)> = devices
            .iter()
            .map(|it| {
                let field = |name: &str| it[name].as_str().unwrap_or_default().to_string();
                (field("name"), field("id"))
            })
            .collect();
        listed.sort();
        Some(listed)
    })
    .await;
    // SAFETY: signals the child this test started, by its id.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    (key, devices)
}

/// `--log-format json` writes one JSON object per line, for log collectors (issue 13, 15).
#[test]
fn the_log_can_be_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("log.db").display());
    let mut child = smshub()
        .args(["serve", "--log-format", "json", "--listen", "127.0.0.1:0"])
        .args(["--database-url", &db])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The hub says where it listens once it serves; then stop it.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert!(line.contains("listening"), "{line}");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 2, "{stderr}");
    for line in lines {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
        assert!(
            event["level"].is_string() && event["fields"]["message"].is_string(),
            "{line}"
        );
    }
    assert!(stderr.contains("smshub listening"), "{stderr}");
}
