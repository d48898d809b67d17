//! Settings from a config file and `.env`, as an operator writes them, read by a real hub
//! process: flags > environment > `.env` > config file > defaults.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::support::{cli_api_key, free_port, wait_until_up};

/// A hub process started in `dir` (where its `.env` is looked for).
struct Hub {
    child: Child,
    base: String,
}

impl Hub {
    async fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Hub {
        let mut command = Command::new(env!("CARGO_BIN_EXE_smshub"));
        command
            .current_dir(dir)
            .args(["serve", "--log", "warn"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, _) in std::env::vars() {
            if name.starts_with("SMSHUB_") {
                command.env_remove(name);
            }
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("hub starts");
        Hub {
            child,
            base: String::new(),
        }
    }

    /// Waits until the hub answers on `port`; panics if it does not within 30 s.
    async fn on(mut self, port: u16) -> Hub {
        self.base = format!("http://127.0.0.1:{port}");
        let url = format!("{}/health", self.base);
        wait_until_up(&url, &mut self.child, &format!("no hub on port {port}")).await;
        self
    }

    /// The status of a send of a 3-part message (202 when `max_parts` allows it, else 400).
    async fn send_long(&self, key: &str) -> u16 {
        reqwest::Client::new()
            .post(format!("{}/api/send-sms", self.base))
            .header("X-API-Key", key)
            .json(&json!({"phone_number": "+14155552671", "message": "x".repeat(400)}))
            .send()
            .await
            .expect("answer")
            .status()
            .as_u16()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_config_file_sets_defaults_that_dotenv_environment_and_flags_override() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("hub.db").display());
    let key = cli_api_key(&db, "config");
    let port = free_port();
    let file = dir.path().join("smshub.toml");
    std::fs::write(
        &file,
        format!(
            "# written by an operator\nlisten = \"127.0.0.1:{port}\"\ndatabase_url = {db:?}\nmax_parts = 1\n"
        ),
    )
    .unwrap();
    let config = file.to_str().unwrap();

    // The file alone: its listen address, database and max_parts are used.
    let hub = Hub::start(dir.path(), &["--config", config], &[])
        .await
        .on(port)
        .await;
    assert_eq!(
        hub.send_long(&key).await,
        400,
        "max_parts = 1 from the file"
    );
    drop(hub);

    // SMSHUB_CONFIG names the file too; the environment wins over it.
    let hub = Hub::start(
        dir.path(),
        &[],
        &[("SMSHUB_CONFIG", config), ("SMSHUB_MAX_PARTS", "10")],
    )
    .await
    .on(port)
    .await;
    assert_eq!(hub.send_long(&key).await, 202, "the environment wins");
    drop(hub);

    // A flag wins over the environment.
    let hub = Hub::start(
        dir.path(),
        &["--config", config, "--max-parts", "1"],
        &[("SMSHUB_MAX_PARTS", "10")],
    )
    .await
    .on(port)
    .await;
    assert_eq!(hub.send_long(&key).await, 400, "the flag wins");
    drop(hub);

    // `.env` in the working directory wins over the file, and the environment over `.env`.
    std::fs::write(dir.path().join(".env"), "SMSHUB_MAX_PARTS=10\nOTHER=1\n").unwrap();
    let hub = Hub::start(dir.path(), &["--config", config], &[])
        .await
        .on(port)
        .await;
    assert_eq!(hub.send_long(&key).await, 202, ".env wins over the file");
    drop(hub);
    let hub = Hub::start(
        dir.path(),
        &["--config", config],
        &[("SMSHUB_MAX_PARTS", "1")],
    )
    .await
    .on(port)
    .await;
    assert_eq!(
        hub.send_long(&key).await,
        400,
        "the environment wins over .env"
    );
}

#[test]
fn config_check_names_each_bad_line_and_example_is_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("smshub.toml");
    std::fs::write(
        &file,
        "heartbeat_s = 12\nheartbeet_s = 3\nmax_parts = \"many\"\nmodem_scan = \"yes\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_smshub"))
        .current_dir(dir.path())
        .args(["config", "check", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].contains("smshub.toml:2: unknown setting heartbeet_s"),
        "{stderr}"
    );
    assert!(
        lines[1].contains("smshub.toml:3: max_parts: invalid value"),
        "{stderr}"
    );
    assert!(
        lines[2].contains("smshub.toml:4: modem_scan: expected true or false"),
        "{stderr}"
    );

    // The example, uncommented, is a file `config check` accepts.
    let output = Command::new(env!("CARGO_BIN_EXE_smshub"))
        .args(["config", "example"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let example = String::from_utf8(output.stdout).unwrap();
    assert!(example.contains("# heartbeat_s = 30"), "{example}");
    let uncommented: String = example
        .lines()
        .filter_map(|line| line.strip_prefix("# "))
        .filter(|line| {
            line.split_once(" = ").is_some_and(|(name, _)| {
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
        })
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&file, &uncommented).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_smshub"))
        .current_dir(dir.path())
        .args(["config", "check", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{uncommented}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
