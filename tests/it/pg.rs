//! A PostgreSQL server for the tests, and a fresh database on it for each test.
//!
//! The server is `SMSHUB_TEST_POSTGRES` when set (a `postgres://user@host:port` URL whose user
//! may create databases), or else one this test binary starts, once, from the installed
//! `initdb` and `postgres` (Debian's `postgresql`): a cluster in a temporary directory on a
//! free port of 127.0.0.1, with `fsync` off (the tests kill hubs, never the database). When
//! the tests run as root it runs as the `postgres` user, which PostgreSQL requires. It dies
//! with the test binary (`PR_SET_PDEATHSIG` on a thread that lives as long as the binary).
//!
//! Without PostgreSQL installed the tests that need it are skipped, except in CI
//! (`SMSHUB_CI`), where its absence is a failure.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The user the tests' cluster is made with (trust authentication on 127.0.0.1).
const USER: &str = "smshub";

struct Server {
    /// `postgres://user@127.0.0.1:port`, without a database.
    url: String,
    /// Where `createdb` is.
    bin: PathBuf,
    host: String,
    port: u16,
    user: String,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();

/// Whether the tests have a PostgreSQL server (`false`: skipped, outside CI).
pub fn available() -> bool {
    SERVER.get_or_init(start).is_some()
}

/// A new, empty database for one test, as a URL for `--database-url`; `None` (the test is
/// skipped) when PostgreSQL is not installed outside CI.
pub fn fresh_database() -> Option<String> {
    let server = SERVER.get_or_init(start).as_ref()?;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let status = Command::new(server.bin.join("createdb"))
        .args(["-h", &server.host, "-p", &server.port.to_string()])
        .args(["-U", &server.user, &name])
        .status()
        .expect("createdb runs");
    assert!(status.success(), "createdb {name} failed");
    Some(format!("{}/{name}", server.url))
}

/// Runs `sql` on the database at `url` with `psql`, returning what it printed (unaligned).
pub fn psql(url: &str, sql: &str) -> String {
    let server = SERVER.get_or_init(start).as_ref().expect("PostgreSQL");
    let psql = if server.bin.join("psql").is_file() {
        server.bin.join("psql")
    } else {
        PathBuf::from("psql")
    };
    let output = Command::new(psql)
        .args(["-X", "-At", "-d", url, "-c", sql])
        .output()
        .expect("psql runs");
    assert!(output.status.success(), "psql {sql}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn start() -> Option<Server> {
    if let Ok(url) = std::env::var("SMSHUB_TEST_POSTGRES") {
        return Some(external(&url));
    }
    let Some(bin) = binaries() else {
        assert!(
            std::env::var_os("SMSHUB_CI").is_none(),
            "PostgreSQL is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: PostgreSQL is not installed");
        return None;
    };
    Some(own_cluster(bin))
}

/// A server given by URL: `createdb` from the installed binaries or the `PATH`.
fn external(url: &str) -> Server {
    let parsed = reqwest::Url::parse(url).expect("SMSHUB_TEST_POSTGRES is a URL");
    Server {
        url: url.trim_end_matches('/').to_string(),
        bin: binaries().unwrap_or_default(),
        host: parsed.host_str().unwrap_or("127.0.0.1").to_string(),
        port: parsed.port().unwrap_or(5432),
        user: parsed.username().to_string(),
    }
}

/// The directory holding `initdb` and `postgres`: the newest of Debian's
/// `/usr/lib/postgresql/*/bin`, or the `PATH`'s.
fn binaries() -> Option<PathBuf> {
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|it| it.path().join("bin"))
        .filter(|it| it.join("postgres").is_file())
        .collect();
    debian.sort_by_key(|it| {
        it.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    debian.pop().or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .find(|dir| dir.join("postgres").is_file() && dir.join("initdb").is_file())
    })
}

/// The uid and gid PostgreSQL runs as: ours, or the `postgres` user's when we are root.
fn owner() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid != 0 {
        return (uid, gid);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres"))
        .and_then(|fields| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
        .expect("running as root needs the `postgres` user (Debian's postgresql makes it)")
}

fn own_cluster(bin: PathBuf) -> Server {
    let (uid, gid) = owner();
    // Kept for the binary's life: the cluster lives in it.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("tempdir")));
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown cluster dir");
    let data = dir.path().join("data");
    let status = Command::new(bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ])
        .uid(uid)
        .gid(gid)
        .stdout(Stdio::null())
        .status()
        .expect("initdb runs");
    assert!(status.success(), "initdb failed");
    let port = crate::support::free_port();
    spawn_server(&bin, &data, dir.path(), port, uid, gid);
    wait_ready(&bin, port);
    Server {
        url: format!("postgres://{USER}@127.0.0.1:{port}"),
        bin,
        host: "127.0.0.1".into(),
        port,
        user: USER.into(),
    }
}

/// Starts `postgres` from a thread that never ends, so that the server, which gets SIGKILL
/// when the thread that started it dies, lives exactly as long as the test binary.
fn spawn_server(bin: &Path, data: &Path, sockets: &Path, port: u16, uid: u32, gid: u32) {
    let mut command = Command::new(bin.join("postgres"));
    command
        .arg("-D")
        .arg(data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(sockets)
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=400"])
        .args(["-c", "shared_buffers=64MB"])
        .uid(uid)
        .gid(gid)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe; it runs after the uid change (which would clear
    // it) and before exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (started, wait) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("postgres".into())
        .spawn(move || {
            let child = command.spawn();
            let ok = child.is_ok();
            let _ = started.send(child.map(|_| ()).map_err(|it| it.to_string()));
            if ok {
                loop {
                    std::thread::park();
                }
            }
        })
        .expect("thread");
    wait.recv()
        .expect("postgres thread")
        .expect("postgres starts");
}

fn wait_ready(bin: &Path, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", USER])
            .status()
            .is_ok_and(|it| it.success());
        if ready {
            return;
        }
        assert!(Instant::now() < deadline, "postgres did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}
