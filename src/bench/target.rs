//! The hub under test: a child process the harness spawns (the default, so its CPU and memory
//! can be read from `/proc/<pid>` apart from the load generator's), a hub in this process on
//! its own runtime (for tests), or a hub someone else runs (`--hub URL`).
//!
//! A spawned or in-process hub gets a fresh SQLite file in a temporary folder that is removed
//! afterwards, or the `--database-url` given; on PostgreSQL, `--nodes N` spawns a cluster of N
//! hub processes on it (the first leads, the others relay to it), and the load is spread over
//! their addresses. The harness only ever targets loopback addresses: a `--hub` URL that resolves
//! to anything else is refused, and it never stops a hub it did not start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

use super::procfs::{self, Usage};
use crate::store::Durability;

/// Names of the threads of an in-process hub: its runtime and SQLite's workers.
const HUB_THREADS: &[&str] = &["smshub-hub", "sqlx-sqlite"];

/// How to reach and run the hub.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// A hub already running (`http://127.0.0.1:PORT`), with its API key.
    pub remote: Option<(String, String)>,
    /// The remote hub's process id, to read its CPU and memory.
    pub remote_pid: Option<u32>,
    /// Run the hub inside this process instead of spawning it.
    pub in_process: bool,
    /// The `smshub` binary to spawn (default: this executable).
    pub binary: Option<PathBuf>,
    pub durability: Durability,
    /// Log filter of a spawned hub.
    pub log: String,
    /// Heartbeat period the hub asks of devices; `None` keeps the hub's default.
    pub heartbeat_s: Option<u32>,
    /// The database of a hub the harness starts; `None`: a fresh SQLite file.
    pub database_url: Option<String>,
    /// Hub processes to spawn on `database_url` (PostgreSQL only beyond 1).
    pub nodes: usize,
}

/// One address of the hub (one node of a cluster).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `http://host:port`.
    pub base: String,
    pub addr: SocketAddr,
    /// The `Host` header value.
    pub host: String,
}

/// A hub the harness can send load to.
pub struct Target {
    /// `http://host:port`.
    pub base: String,
    pub addr: SocketAddr,
    /// The `Host` header value.
    pub host: String,
    pub api_key: String,
    /// What this run knows about the hub's durability, for the report.
    pub durability: String,
    /// `spawned`, `in-process` or `remote`.
    pub kind: &'static str,
    /// Every node's address; the first is `base`. Phones and HTTP connections take them in
    /// turn.
    pub endpoints: Vec<Endpoint>,
    meter: Meter,
    handle: Handle,
}

enum Meter {
    /// The hub's processes (one per node).
    Processes(Vec<u32>),
    OwnThreads,
    Unknown,
}

enum Handle {
    Spawned {
        /// Each node's process and log.
        children: Vec<(tokio::process::Child, PathBuf)>,
        _dir: TempDir,
    },
    InProcess {
        stop: Option<oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
        _dir: TempDir,
    },
    Remote,
}

/// A temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|it| it.as_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("smshub-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a durability setting reads in the report.
pub fn describe(durability: Durability) -> &'static str {
    match durability {
        Durability::Full => "full (SQLite WAL, synchronous=FULL: a 202 survives power loss)",
        Durability::Normal => {
            "normal (SQLite WAL, synchronous=NORMAL: a 202 survives a hub crash, not power loss)"
        }
    }
}

/// How a durability setting reads for the database a hub was started on.
fn describe_on(database_url: &str, durability: Durability) -> String {
    if crate::store::cluster::is_postgres(database_url) {
        "PostgreSQL (a 202 is committed as the server's synchronous_commit says; on by \
         default: it survives power loss)"
            .to_string()
    } else {
        describe(durability).to_string()
    }
}

fn durability_flag(durability: Durability) -> &'static str {
    match durability {
        Durability::Full => "full",
        Durability::Normal => "normal",
    }
}

impl Target {
    /// Starts (or checks) the hub.
    pub async fn start(options: &TargetOptions) -> anyhow::Result<Target> {
        if let Some((url, key)) = &options.remote {
            return remote(url, key, options.remote_pid).await;
        }
        if options.in_process {
            in_process(options).await
        } else {
            spawned(options).await
        }
    }

    /// CPU and memory of the hub now, where they can be known: summed over its nodes.
    pub fn usage(&self) -> Option<Usage> {
        match &self.meter {
            Meter::Processes(pids) => {
                let mut sum = Usage::default();
                for pid in pids {
                    let usage = procfs::process(*pid)?;
                    sum.cpu_ms += usage.cpu_ms;
                    sum.rss_kb += usage.rss_kb;
                    sum.hwm_kb += usage.hwm_kb;
                }
                Some(sum)
            }
            Meter::OwnThreads => procfs::own_threads(HUB_THREADS),
            Meter::Unknown => None,
        }
    }

    /// Each node's CPU and memory now, in the order of `endpoints` (spawned clusters only).
    pub fn node_usages(&self) -> Vec<Option<Usage>> {
        match &self.meter {
            Meter::Processes(pids) if pids.len() > 1 => {
                pids.iter().map(|it| procfs::process(*it)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Whether the hub's memory figures include the load generator (in-process hub).
    pub fn memory_includes_load(&self) -> bool {
        matches!(self.meter, Meter::OwnThreads)
    }

    /// The pid whose CPU is the hub's, if it is another process.
    pub fn pid(&self) -> Option<u32> {
        match &self.meter {
            Meter::Processes(pids) => pids.first().copied(),
            _ => None,
        }
    }

    /// Stops a hub the harness started (gracefully, then by force); leaves a remote one be.
    pub async fn stop(self) -> anyhow::Result<()> {
        match self.handle {
            Handle::Remote => Ok(()),
            Handle::Spawned { children, _dir } => {
                // Followers first: a leader stopping before them would leave them electing.
                let mut result = Ok(());
                for (child, log) in children.into_iter().rev() {
                    let stopped = stop_child(child, &log).await;
                    if result.is_ok() {
                        result = stopped;
                    }
                }
                result
            }
            Handle::InProcess {
                mut stop,
                mut thread,
                _dir,
            } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                let Some(thread) = thread.take() else {
                    return Ok(());
                };
                tokio::task::spawn_blocking(move || thread.join())
                    .await?
                    .map_err(|_| anyhow::anyhow!("the in-process hub panicked"))?
            }
        }
    }
}

/// Stops a spawned hub: SIGTERM, then SIGKILL after 15 s.
async fn stop_child(mut child: tokio::process::Child, log: &Path) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        // SAFETY: kill only sends a signal, to the child this harness spawned.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => {
            anyhow::bail!("the hub exited with {status}; its log:\n{}", tail(log))
        }
        Ok(Err(err)) => Err(err.into()),
        Err(_) => {
            let _ = child.kill().await;
            anyhow::bail!("the hub did not stop within 15 s of SIGTERM; killed it")
        }
    }
}

/// The last lines of a log file, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Splits `http://host:port[/]` and checks that every address it names is loopback.
pub async fn loopback_only(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("http://")
        .context("--hub must be an http:// URL (the harness speaks plain HTTP)")?;
    let host = rest.trim_end_matches('/');
    if host.contains('/') {
        anyhow::bail!("--hub must be a base URL without a path, e.g. http://127.0.0.1:8080");
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(host)
        .await
        .with_context(|| format!("resolving {host} (give host:port)"))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|it| !it.ip().is_loopback()) {
        anyhow::bail!(
            "--hub {url} is not a loopback address: the harness only loads hubs on this machine"
        );
    }
    Ok((addrs[0], host.to_string()))
}

async fn remote(url: &str, key: &str, pid: Option<u32>) -> anyhow::Result<Target> {
    let (addr, host) = loopback_only(url).await?;
    let endpoint = Endpoint {
        base: format!("http://{host}"),
        addr,
        host: host.clone(),
    };
    Ok(Target {
        base: endpoint.base.clone(),
        addr,
        host,
        api_key: key.to_string(),
        durability: "as the hub was started (see its --durability; the default is full)".into(),
        kind: "remote",
        endpoints: vec![endpoint],
        meter: pid
            .map(|it| Meter::Processes(vec![it]))
            .unwrap_or(Meter::Unknown),
        handle: Handle::Remote,
    })
}

async fn spawned(options: &TargetOptions) -> anyhow::Result<Target> {
    let binary = match &options.binary {
        Some(it) => it.clone(),
        None => std::env::current_exe().context("finding the smshub binary to spawn")?,
    };
    let dir = TempDir::new()?;
    let database_url = options
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let durability = durability_flag(options.durability);
    let keys = tokio::process::Command::new(&binary)
        .args([
            "--log",
            "warn",
            "keys",
            "create",
            "--name",
            "bench",
            "--database-url",
            &database_url,
        ])
        .args(["--durability", durability])
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {} keys create", binary.display()))?;
    if !keys.status.success() {
        anyhow::bail!(
            "creating an API key failed: {}",
            String::from_utf8_lossy(&keys.stderr)
        );
    }
    let api_key = String::from_utf8_lossy(&keys.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();

    let mut children = Vec::new();
    let mut endpoints = Vec::new();
    let mut pids = Vec::new();
    for node in 0..options.nodes.max(1) {
        let log = dir.path().join(format!("hub-{node}.log"));
        let (child, pid, endpoint) =
            spawn_node(&binary, options, &database_url, durability, &log).await?;
        children.push((child, log));
        pids.push(pid);
        // The first node takes the leader lock before the others start, so it is the leader.
        ready(&endpoint, &api_key).await?;
        endpoints.push(endpoint);
    }
    let first = endpoints[0].clone();
    let nodes = if endpoints.len() > 1 {
        format!("; {} nodes, the first leading", endpoints.len())
    } else {
        String::new()
    };
    Ok(Target {
        base: first.base,
        addr: first.addr,
        host: first.host,
        api_key,
        durability: format!("{}{nodes}", describe_on(&database_url, options.durability)),
        kind: "spawned",
        endpoints,
        meter: Meter::Processes(pids),
        handle: Handle::Spawned {
            children,
            _dir: dir,
        },
    })
}

/// Spawns one `smshub serve` and reads where it listens from its first line.
async fn spawn_node(
    binary: &Path,
    options: &TargetOptions,
    database_url: &str,
    durability: &str,
    log: &Path,
) -> anyhow::Result<(tokio::process::Child, u32, Endpoint)> {
    let log_file = std::fs::File::create(log)?;
    let mut command = tokio::process::Command::new(binary);
    command
        .args([
            "--log",
            &options.log,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database_url,
        ])
        .args(["--durability", durability])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true);
    if let Some(heartbeat_s) = options.heartbeat_s {
        command.args(["--heartbeat-s", &heartbeat_s.to_string()]);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("spawning {} serve", binary.display()))?;
    let pid = child.id().context("the hub exited at once")?;
    let stdout = child.stdout.take().context("no stdout from the hub")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .context("the hub did not say where it listens within 60 s")?
        .context("reading the hub's output")?;
    let Some(line) = first else {
        anyhow::bail!("the hub exited before listening; its log:\n{}", tail(log));
    };
    let host = line
        .split("http://")
        .nth(1)
        .map(|it| it.trim().to_string())
        .with_context(|| format!("unexpected first line from the hub: {line:?}"))?;
    // Keep reading, so the hub never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let (addr, host) = loopback_only(&format!("http://{host}")).await?;
    let endpoint = Endpoint {
        base: format!("http://{host}"),
        addr,
        host,
    };
    Ok((child, pid, endpoint))
}

/// Waits until `endpoint` answers the API (a cluster node listens before a leader serves).
async fn ready(endpoint: &Endpoint, api_key: &str) -> anyhow::Result<()> {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut conn = super::http::HttpConn::new(endpoint.addr, &endpoint.host);
        let answer = conn
            .request("GET", "/api/stats", &[("X-API-Key", api_key)], b"")
            .await;
        if answer.is_ok_and(|it| it.status == 200) {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < give_up,
            "the hub at {} did not answer within 60 s",
            endpoint.base
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn in_process(options: &TargetOptions) -> anyhow::Result<Target> {
    let dir = TempDir::new()?;
    let database_url = options
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let described = describe_on(&database_url, options.durability);
    let mut config = crate::app::Config::new(SocketAddr::from(([127, 0, 0, 1], 0)), database_url);
    config.durability = options.durability;
    if let Some(heartbeat_s) = options.heartbeat_s {
        config.heartbeat_s = heartbeat_s.max(1);
    }
    let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<(SocketAddr, String)>>();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    // Its own runtime with named threads, so its CPU can be told apart from the load's.
    let thread = std::thread::Builder::new()
        .name("smshub-hub".into())
        .spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .thread_name("smshub-hub")
                .enable_all()
                .build()
                .context("building the hub's runtime")?;
            runtime.block_on(async move {
                let built = async {
                    let app = crate::app::App::build(config).await?;
                    let key = crate::auth::create_api_key(app.store(), "bench").await?;
                    anyhow::Ok((app, key.secret))
                }
                .await;
                match built {
                    Ok((app, key)) => {
                        let _ = ready_tx.send(Ok((app.addr(), key)));
                        app.run_until_stopped(async move {
                            let _ = stop_rx.await;
                        })
                        .await
                    }
                    Err(err) => {
                        let message = format!("{err:#}");
                        let _ = ready_tx.send(Err(err));
                        anyhow::bail!("{message}")
                    }
                }
            })
        })?;
    let (addr, api_key) = ready_rx
        .await
        .context("the in-process hub did not start")??;
    let host = addr.to_string();
    Ok(Target {
        base: format!("http://{host}"),
        addr,
        host: host.clone(),
        api_key,
        durability: described,
        kind: "in-process",
        endpoints: vec![Endpoint {
            base: format!("http://{host}"),
            addr,
            host,
        }],
        meter: Meter::OwnThreads,
        handle: Handle::InProcess {
            stop: Some(stop_tx),
            thread: Some(thread),
            _dir: dir,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_loopback_hubs_are_accepted() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://localhost:9",
            "http://[::1]:80",
        ] {
            let result = loopback_only(ok).await;
            // localhost may resolve to ::1 only on some machines; either way it is loopback.
            assert!(result.is_ok() || ok.contains("::1"), "{ok}: {result:?}");
        }
        for bad in [
            "https://127.0.0.1:8080",
            "http://10.0.0.1:8080",
            "http://192.168.1.2:80",
            "http://127.0.0.1:80/api",
        ] {
            assert!(loopback_only(bad).await.is_err(), "{bad}");
        }
    }
}
