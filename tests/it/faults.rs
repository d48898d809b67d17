//! Faults from outside the hub: its own output failing. Each test runs the real binary and
//! checks that the hub serves, commits and stops cleanly anyway.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::{cli_api_key, free_port};

/// The hub with stderr on a full device (`2>/dev/full`): every log line fails to write. It
/// starts, serves, commits a message and exits 0 on SIGTERM; logging never panics a thread
/// (the database writer's least of all).
#[tokio::test]
async fn a_hub_whose_log_cannot_be_written_serves_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("faults.db").display());
    let key = cli_api_key(&db, "faults");
    let port = free_port();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let mut child = Command::new(env!("CARGO_BIN_EXE_smshub"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &db, "--log", "debug"])
        .stdout(Stdio::null())
        .stderr(full)
        .spawn()
        .expect("hub starts");
    let base = format!("http://127.0.0.1:{port}");
    crate::support::wait_until_up(
        &format!("{base}/health"),
        &mut child,
        "the hub did not come up with its log on /dev/full",
    )
    .await;
    let http = reqwest::Client::new();
    for n in 0..20 {
        let response = http
            .post(format!("{base}/api/send-sms"))
            .header("X-API-Key", &key)
            .json(&json!({"phone_number": "+14155552671", "message": format!("log full {n}")}))
            .send()
            .await
            .expect("send-sms answers");
        assert_eq!(response.status().as_u16(), 202, "message {n}");
    }
    // SAFETY: a plain signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}

/// A client that sent half its request headers, or half a body, does not keep a stopping hub
/// up: shutdown ends within the grace period whatever clients do.
#[tokio::test]
async fn slow_clients_do_not_hold_up_shutdown() {
    use tokio::io::AsyncWriteExt;
    let mut hub = crate::support::TestHub::spawn_with(|config| {
        config.shutdown_grace = Duration::from_secs(1);
    })
    .await;
    let addr = hub.base.trim_start_matches("http://").to_string();
    let mut half_headers = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half_headers
        .write_all(b"GET /health HTTP/1.1\r\nHost: hub\r\n")
        .await
        .unwrap();
    let mut half_body = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half_body
        .write_all(
            b"POST /api/send-sms HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"phone",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(6), hub.shutdown())
        .await
        .expect("shutdown finished within the grace period");
    drop((half_headers, half_body));
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped; `None` (with a line
/// saying why) where this machine cannot mount one (not root, no mount permission).
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!("skipped: mounting a small filesystem needs root (CI runs as root)");
            return None;
        }
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|it| it.success());
        if !mounted {
            println!("skipped: this machine does not allow mounting a tmpfs");
            return None;
        }
        Some(SmallFs { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the filesystem at `dir` with one file until it has no space left.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while file.write_all(&small).is_ok() {}
    let _ = file.sync_all();
    path
}

/// The database on a filesystem that fills up: sends that cannot commit answer `503
/// store_unavailable` with `Retry-After` (never `500`, never `202`), readiness says so while
/// liveness holds, and when space returns the hub takes writes again by itself; every message
/// that got a `202` is there, also after a restart.
#[tokio::test]
async fn a_full_disk_answers_503_and_the_hub_recovers_when_space_returns() {
    let Some(fs) = SmallFs::mount("6m") else {
        return;
    };
    let db = format!("sqlite://{}", fs.path().join("hub.db").display());
    let hub = crate::support::TestHub::spawn_with(|config| config.database_url = db).await;
    let text = "x".repeat(1000);
    let mut acknowledged = Vec::new();
    for _ in 0..5 {
        acknowledged.push(
            hub.send_sms(json!({"phone_number": "+14155552671", "message": text}))
                .await,
        );
    }
    let filler = fill(fs.path());

    // Send until the disk refuses; every answer is a 202 (committed) or a 503.
    let mut refused = None;
    for n in 0..3000 {
        let response = hub
            .http
            .post(hub.url("/api/send-sms"))
            .header("X-API-Key", &hub.api_key)
            .json(&json!({"phone_number": "+14155552671", "message": format!("{n} {text}")}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").cloned();
        let body: serde_json::Value = response.json().await.unwrap();
        match status {
            202 => acknowledged.push(body["id"].as_str().unwrap().to_string()),
            503 => {
                assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
                assert!(retry_after.is_some(), "503 without Retry-After");
                refused = Some(n);
                break;
            }
            other => panic!("a send on a full disk answered {other}: {body}"),
        }
    }
    assert!(refused.is_some(), "the disk never filled");
    let ready = hub.http.get(hub.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503, "ready on a full disk");
    let summary = hub.http.get(hub.url("/health")).send().await.unwrap();
    assert_eq!(summary.status().as_u16(), 503, "/health on a full disk");
    let live = hub.http.get(hub.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status().as_u16(), 200, "alive on a full disk");

    // Space returns: the hub takes writes again without a restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = tokio::time::Instant::now() + crate::support::PATIENCE;
    loop {
        let (status, body) = hub
            .post(
                "/api/send-sms",
                json!({"phone_number": "+14155552671", "message": "space again"}),
            )
            .await;
        if status == 202 {
            acknowledged.push(body["id"].as_str().unwrap().to_string());
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hub never took writes again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = hub.http.get(hub.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200, "ready once space returned");

    let hub = hub.restart().await;
    for id in &acknowledged {
        let (status, body) = hub.get(&format!("/api/sms/{id}")).await;
        assert_eq!(status, 200, "acknowledged message {id} lost: {body}");
    }
    let mut hub = hub;
    hub.shutdown().await;
}

/// The database file is read-only for the hub (a wrong owner or mode, as after a restore):
/// sends answer `503 store_unavailable` (never `500`, never `202`), readiness says so, and once
/// the permission is fixed the hub takes writes again by itself, without a restart. Run as
/// root (permissions do not bind root), the hub runs as `nobody`.
#[tokio::test]
async fn a_read_only_database_answers_503_and_recovers_when_writable_again() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path().join("ro.db");
    let db = format!("sqlite://{}", path.display());
    let key = cli_api_key(&db, "read-only");
    // The WAL (which holds the key, not yet checkpointed) stays writable: only the database
    // file is read-only, so SQLite opens the database read-only.
    for file in ["ro.db-wal", "ro.db-shm"] {
        let _ = std::fs::set_permissions(
            dir.path().join(file),
            std::fs::Permissions::from_mode(0o666),
        );
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_smshub"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &db])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        command.uid(65534).gid(65534);
    }
    let mut child = command.spawn().expect("hub starts");
    let base = format!("http://127.0.0.1:{port}");
    crate::support::wait_until_up(
        &format!("{base}/health/live"),
        &mut child,
        "the hub did not come up on a read-only database",
    )
    .await;
    let http = reqwest::Client::new();
    let send = |text: &'static str| {
        http.post(format!("{base}/api/send-sms"))
            .header("X-API-Key", &key)
            .json(&json!({"phone_number": "+14155552671", "message": text}))
            .send()
    };
    let response = send("refused").await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    let ready = http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let deadline = tokio::time::Instant::now() + crate::support::PATIENCE;
    let id = loop {
        let response = send("writable again").await.unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        if status == 202 {
            break body["id"].as_str().unwrap().to_string();
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hub never took writes again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // SAFETY: a plain signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    let store = smshub::store::Store::open(&db, smshub::store::Durability::Full)
        .await
        .unwrap();
    let stored = store.get_message(id.parse().unwrap()).await.unwrap();
    assert!(stored.is_some(), "the acknowledged message is stored");
    assert_eq!(
        store.count_by_state().await.unwrap().values().sum::<u64>(),
        1
    );
}
