//! `smshub bench`: the load generator and measurement harness.
//!
//! One run: start a hub ([`target`]: spawned child process by default, or in-process, or
//! `--hub URL`), register and connect N simulated phones over real WebSockets ([`phone`]),
//! push a warm-up through, then submit M messages over HTTP with C keep-alive connections
//! ([`load`], on the minimal client of [`http`]), wait until every message reached its final
//! state, and print one table and one JSON line (the last line of stdout, see [`report`]).
//! `--connect-only` instead measures what idle connected phones cost the hub.
//!
//! Timings come from the harness's own clock: submit latency from request start to full
//! response; "to device" from submit start to the phone receiving `send`; end to end from
//! submit start to the phone receiving the hub's `ack` of `sent` (or `delivered`), which the
//! hub sends only after the state is committed. Hub CPU and memory come from `/proc`
//! ([`procfs`]).
//!
//! Invariants: every run is bounded in time (`--timeout`); it only ever talks to loopback
//! addresses; it never retries a submit (that would hide errors and could double a message);
//! the figures it prints are measured, never estimated.

mod http;
mod load;
mod phone;
pub mod procfs;
mod report;
mod target;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::store::Durability;
use http::HttpConn;
use load::{LoadCounters, LoadPlan};
use phone::{Credentials, FleetCounters, PhoneConfig, PhoneLog};
pub use report::Report;
use target::{Target, TargetOptions};

/// Options of `smshub bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Benchmark a hub that is already running (loopback only), e.g. `http://127.0.0.1:8080`.
    /// By default the harness spawns its own hub with a fresh database.
    #[arg(long, requires = "api_key")]
    pub hub: Option<String>,
    /// API key of the `--hub` hub.
    #[arg(long, env = "SMSHUB_API_KEY")]
    pub api_key: Option<String>,
    /// Process id of the `--hub` hub, to report its CPU and memory.
    #[arg(long, requires = "hub")]
    pub hub_pid: Option<u32>,
    /// Run the hub inside the harness's process (its CPU is still told apart by thread).
    #[arg(long, conflicts_with = "hub")]
    pub in_process: bool,
    /// The smshub binary to spawn as the hub (default: this one).
    #[arg(long, conflicts_with_all = ["hub", "in_process"])]
    pub hub_bin: Option<PathBuf>,
    /// Durability of the hub the harness starts.
    #[arg(long, value_enum, default_value = "full")]
    pub durability: Durability,
    /// Database of the hub the harness starts, e.g. an empty `postgres://…` database
    /// (default: a fresh SQLite file).
    #[arg(long, conflicts_with = "hub")]
    pub database_url: Option<String>,
    /// Hub nodes to spawn on a `--database-url postgres://…` (a cluster: the first leads,
    /// the others relay to it); phones and HTTP connections are spread over them in turn, and
    /// the report adds each node's CPU and PostgreSQL's.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// Log filter of the hub the harness spawns (it logs to a file).
    #[arg(long, default_value = "info")]
    pub hub_log: String,
    /// Heartbeat period the harness's hub asks of phones (default: the hub's own default).
    #[arg(long)]
    pub heartbeat_s: Option<u32>,
    /// Simulated phones.
    #[arg(long, default_value_t = 100)]
    pub devices: usize,
    /// Jobs each phone takes at once (`capabilities.max_in_flight`).
    #[arg(long, default_value_t = 10)]
    pub max_in_flight: u32,
    /// Messages to submit (measured).
    #[arg(long, default_value_t = 20_000)]
    pub messages: usize,
    /// Messages pushed through before measuring (not measured).
    #[arg(long, default_value_t = 500)]
    pub warmup: usize,
    /// Concurrent HTTP connections (closed loop: each sends its next request on an answer).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Open loop: offer this many requests per second, whatever the answers.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Recipients per request (`phone_numbers`); at most 1000.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Ask for delivery reports and wait until every `delivered` is stored.
    #[arg(long)]
    pub delivery_report: bool,
    /// Phone time from `commit` to `sent`, and from `sent` to `delivered`, in ms.
    #[arg(long, default_value_t = 0)]
    pub phone_latency_ms: u64,
    /// Text of every message.
    #[arg(long, default_value = "Your verification code is 482913")]
    pub text: String,
    /// Only connect the phones and measure the hub at rest: RSS per device, idle CPU.
    #[arg(long)]
    pub connect_only: bool,
    /// Connect-only: how long to measure the hub at rest, in seconds.
    #[arg(long, default_value_t = 20)]
    pub window_s: u64,
    /// Seconds between a phone's periodic `status` reports (0: only at connect).
    #[arg(long, default_value_t = 60)]
    pub status_s: u64,
    /// Give up after this many seconds (the report then counts the error).
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Never show the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl BenchArgs {
    /// Options as the command line would give them, e.g. `["--devices", "3"]`.
    pub fn from_flags<I, T>(flags: I) -> Result<BenchArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: BenchArgs,
        }
        let argv = std::iter::once(std::ffi::OsString::from("bench"))
            .chain(flags.into_iter().map(Into::into));
        <Wrapper as clap::Parser>::try_parse_from(argv).map(|it| it.args)
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.devices >= 1, "--devices must be at least 1");
        anyhow::ensure!(
            self.connect_only || self.messages >= 1,
            "--messages must be at least 1"
        );
        anyhow::ensure!(
            (1..=1000).contains(&self.batch),
            "--batch must be 1 to 1000"
        );
        anyhow::ensure!(self.concurrency >= 1, "--concurrency must be at least 1");
        anyhow::ensure!(
            self.max_in_flight >= 1,
            "--max-in-flight must be at least 1"
        );
        anyhow::ensure!(
            self.rate.is_none_or(|it| it > 0.0),
            "--rate must be positive"
        );
        anyhow::ensure!(self.timeout >= 1, "--timeout must be at least 1 s");
        anyhow::ensure!((1..=8).contains(&self.nodes), "--nodes must be 1 to 8");
        anyhow::ensure!(
            self.nodes == 1
                || (self.hub.is_none()
                    && !self.in_process
                    && self
                        .database_url
                        .as_deref()
                        .is_some_and(crate::store::cluster::is_postgres)),
            "--nodes above 1 needs --database-url postgres://… (nodes share one PostgreSQL)"
        );
        Ok(())
    }
}

/// Runs the benchmark and prints the table and the JSON line. Fails (after printing) if
/// anything went wrong during the run.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let report = measure(args).await?;
    print!("{}", report.table());
    println!("{}", report.json_line());
    match report.errors {
        0 => Ok(()),
        n => anyhow::bail!("{n} errors during the run (see the table)"),
    }
}

/// Runs the benchmark and returns what it measured, printing nothing on stdout.
pub async fn measure(args: BenchArgs) -> anyhow::Result<Report> {
    args.check()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout);
    // Every phone needs a socket here and one in the hub (which inherits the limit).
    let nofile = procfs::raise_nofile_limit(
        (args.devices as u64 * 2 + args.concurrency as u64 + 1024).max(4096),
    );
    if nofile < args.devices as u64 + args.concurrency as u64 + 64 {
        anyhow::bail!(
            "the open-file limit ({nofile}) is too low for {} phones; raise `ulimit -n`",
            args.devices
        );
    }
    let options = TargetOptions {
        remote: args.hub.clone().zip(args.api_key.clone()),
        remote_pid: args.hub_pid,
        in_process: args.in_process,
        binary: args.hub_bin.clone(),
        durability: args.durability,
        log: args.hub_log.clone(),
        heartbeat_s: args.heartbeat_s,
        database_url: args.database_url.clone(),
        nodes: args.nodes,
    };
    let target = Target::start(&options).await?;
    eprintln!(
        "bench: hub {} at {} ({}), durability {}",
        target.kind,
        target.base,
        pid_text(&target),
        target.durability
    );
    // A SIGINT or SIGTERM to the harness alone still stops the hub it spawned: dying
    // without `stop` would leave that hub running, unseen, on a benchmark machine.
    let result = tokio::select! {
        result = tokio::time::timeout_at(
            deadline + Duration::from_secs(5),
            session(&args, &target, started, deadline),
        ) => result
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the run did not finish within --timeout"))),
        () = crate::app::shutdown_signal() => Err(anyhow::anyhow!("interrupted")),
    };
    let stopped = target.stop().await;
    let report = result?;
    if let Err(err) = stopped {
        eprintln!("bench: {err:#}");
        let mut report = report;
        report.add_error("hub_exit", 1);
        return Ok(report);
    }
    Ok(report)
}

fn pid_text(target: &Target) -> String {
    match target.pid() {
        Some(pid) => format!("pid {pid}"),
        None if target.kind == "in-process" => "this process".into(),
        None => "pid unknown: CPU and memory not measured".into(),
    }
}

/// Everything between starting the hub and stopping it.
async fn session(
    args: &BenchArgs,
    target: &Target,
    started: Instant,
    deadline: Instant,
) -> anyhow::Result<Report> {
    let mut report = Report::new(args, target);
    let prefix = format!("bench-{}", std::process::id());
    let t0 = Instant::now();
    let devices = phone::register(
        target.addr,
        &target.host,
        &target.api_key,
        &prefix,
        args.devices,
        args.concurrency.min(64),
    )
    .await
    .context("registering the simulated phones")?;
    report.register_s = Some(report::round(t0.elapsed().as_secs_f64(), 3));

    let before_connect = target.usage();
    let mut fleet = Fleet::start(args, target, &devices, started);
    let connected = fleet
        .wait_connected(args.devices, deadline, args.no_progress)
        .await;
    report.connected = connected;
    report.connect_s = fleet.connected_after.map(|it| report::round(it, 3));
    report.add_error(
        "phones_not_connected",
        (args.devices as u64).saturating_sub(connected),
    );

    if args.connect_only {
        at_rest(args, target, &fleet, before_connect, &mut report, deadline).await;
    } else if connected > 0 {
        wait_online(target, args.devices, deadline).await;
        messages(args, target, &fleet, &mut report, started, deadline).await?;
    }

    let counters = fleet.counters.clone();
    let logs = fleet.stop().await;
    if !args.connect_only {
        report.join(&logs);
    }
    report.phone_errors(&counters);
    if target.kind == "remote" {
        let failed = phone::unregister(target.addr, &target.host, &target.api_key, &devices).await;
        if failed > 0 {
            eprintln!("bench: could not remove {failed} of the simulated devices from the hub");
        }
    }
    Ok(report)
}

/// The running phones.
struct Fleet {
    counters: Arc<FleetCounters>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<PhoneLog>>,
    /// Seconds from starting the phones until the last one connected.
    connected_after: Option<f64>,
}

impl Fleet {
    fn start(args: &BenchArgs, target: &Target, devices: &[Credentials], origin: Instant) -> Fleet {
        // Phone k connects to the k-th node, in turn.
        let configs: Vec<Arc<PhoneConfig>> = target
            .endpoints
            .iter()
            .map(|endpoint| {
                Arc::new(PhoneConfig {
                    ws_base: endpoint.base.replacen("http", "ws", 1),
                    max_in_flight: args.max_in_flight,
                    latency: Duration::from_millis(args.phone_latency_ms),
                    delivery_reports: args.delivery_report,
                    status_every: (args.status_s > 0).then(|| Duration::from_secs(args.status_s)),
                    origin,
                })
            })
            .collect();
        let counters = Arc::new(FleetCounters::default());
        let (stop, stop_rx) = watch::channel(false);
        // At most this many handshakes at once, well under the hub's accept backlog.
        let connecting = Arc::new(Semaphore::new(128));
        let tasks = devices
            .iter()
            .enumerate()
            .map(|(k, it)| {
                phone::spawn(
                    configs[k % configs.len()].clone(),
                    it.clone(),
                    counters.clone(),
                    connecting.clone(),
                    stop_rx.clone(),
                )
            })
            .collect();
        Fleet {
            counters,
            stop,
            tasks,
            connected_after: None,
        }
    }

    /// Waits until every phone is connected (or failed, or the deadline); returns how many are.
    async fn wait_connected(&mut self, want: usize, deadline: Instant, no_progress: bool) -> u64 {
        let t0 = Instant::now();
        let bar = progress(want as u64, "connecting phones", no_progress);
        loop {
            let connected = FleetCounters::get(&self.counters.connected);
            let failed = FleetCounters::get(&self.counters.connect_failures);
            if let Some(bar) = &bar {
                bar.set_position(connected);
            }
            if connected + failed >= want as u64 || Instant::now() >= deadline {
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                let seconds = t0.elapsed().as_secs_f64();
                eprintln!("bench: {connected} phones connected in {seconds:.2} s");
                self.connected_after = Some(seconds);
                return connected;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Closes every phone and collects what each saw.
    async fn stop(self) -> Vec<PhoneLog> {
        let _ = self.stop.send(true);
        let mut logs = Vec::with_capacity(self.tasks.len());
        // Phones close at once when told; this only bounds a phone stuck on a dead socket.
        let give_up = Instant::now() + Duration::from_secs(10);
        for task in self.tasks {
            match tokio::time::timeout_at(give_up, task).await {
                Ok(Ok(log)) => logs.push(log),
                _ => {
                    self.counters
                        .protocol_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        logs
    }
}

fn progress(len: u64, message: &'static str, disabled: bool) -> Option<indicatif::ProgressBar> {
    if disabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{msg:>20} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
    )
    .map(|it| it.progress_chars("=> "))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message);
    Some(bar)
}

/// Waits until the hub lists every phone as online (its status is then being processed).
async fn wait_online(target: &Target, devices: usize, deadline: Instant) {
    let mut conn = HttpConn::new(target.addr, &target.host);
    while Instant::now() < deadline {
        if let Ok(stats) = get_stats(&mut conn, target).await
            && stats.online >= devices as u64
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the `status` frames that follow `hello` reach the dispatcher.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// What `GET /api/stats` says.
#[derive(Debug, Default, Clone)]
struct HubStats {
    online: u64,
    by_state: HashMap<String, u64>,
    waiting: u64,
}

async fn get_stats(conn: &mut HttpConn, target: &Target) -> anyhow::Result<HubStats> {
    let headers = [("X-API-Key", target.api_key.as_str())];
    // A connection left idle through a long run may have been closed by the hub's keep-alive
    // timeout: one more try, on a fresh connection.
    let response = match conn.request("GET", "/api/stats", &headers, b"").await {
        Ok(response) => response,
        Err(_) => conn.request("GET", "/api/stats", &headers, b"").await?,
    };
    anyhow::ensure!(
        response.status == 200,
        "GET /api/stats: HTTP {}",
        response.status
    );
    let value: serde_json::Value = serde_json::from_slice(&response.body)?;
    let by_state = value
        .get("messages")
        .and_then(|it| it.as_object())
        .map(|it| {
            it.iter()
                .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
                .collect()
        })
        .unwrap_or_default();
    Ok(HubStats {
        online: value
            .pointer("/devices/online")
            .and_then(|it| it.as_u64())
            .unwrap_or(0),
        by_state,
        waiting: value.get("waiting").and_then(|it| it.as_u64()).unwrap_or(0),
    })
}

/// The message phase: warm-up, then the measured load, then the wait for final states.
async fn messages(
    args: &BenchArgs,
    target: &Target,
    fleet: &Fleet,
    report: &mut Report,
    origin: Instant,
    deadline: Instant,
) -> anyhow::Result<()> {
    let final_counter = |counters: &FleetCounters| {
        if args.delivery_report {
            FleetCounters::get(&counters.delivered_acked)
        } else {
            FleetCounters::get(&counters.sent_acked)
        }
    };
    let mut stats_conn = HttpConn::new(target.addr, &target.host);
    let stats_before = get_stats(&mut stats_conn, target).await.unwrap_or_default();
    let plan = |messages: usize, first_recipient: usize, rate: Option<f64>| LoadPlan {
        endpoints: target
            .endpoints
            .iter()
            .map(|it| (it.addr, it.host.clone()))
            .collect(),
        api_key: target.api_key.clone(),
        messages,
        batch: args.batch,
        concurrency: args.concurrency,
        rate,
        delivery_report: args.delivery_report,
        text: args.text.clone(),
        first_recipient,
        origin,
        deadline,
    };

    let mut warm_accepted = 0;
    if args.warmup > 0 {
        let warm = load::run(
            plan(args.warmup, 0, None),
            Arc::new(LoadCounters::default()),
        )
        .await;
        let failed: u64 = warm.failures.values().sum();
        if failed > 0 {
            report.add_error("warmup_submit_failed", failed);
        }
        let want = warm.messages_accepted;
        warm_accepted = want;
        while final_counter(&fleet.counters) < want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let finals_before = final_counter(&fleet.counters);
    let machine_before = procfs::machine_busy_ms();
    let own_before = own_cpu_ms(target);
    let hub_before = target.usage();
    let nodes_before = target.node_usages();
    let database_before = database_cpu_ms(args);
    let counters = Arc::new(LoadCounters::default());
    let load_started = Instant::now();
    let load = tokio::spawn(load::run(
        plan(args.messages, args.warmup, args.rate),
        counters.clone(),
    ));

    let bar = progress(args.messages as u64, "submitted", args.no_progress);
    let final_bar = progress(args.messages as u64, "final", args.no_progress);
    let mut outcome = None;
    let mut load = Some(load);
    loop {
        if let Some(handle) = load.take_if(|it| it.is_finished()) {
            outcome = Some(handle.await.context("the load generator failed")?);
        }
        let done = final_counter(&fleet.counters).saturating_sub(finals_before);
        if let Some(bar) = &bar {
            bar.set_position(FleetCounters::get(&counters.accepted));
        }
        if let Some(bar) = &final_bar {
            bar.set_position(done);
        }
        if let Some(outcome) = &outcome
            && done >= outcome.messages_accepted
        {
            break;
        }
        if Instant::now() >= deadline {
            report.add_error("timeout", 1);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for bar in [bar, final_bar].into_iter().flatten() {
        bar.finish_and_clear();
    }
    let wall_s = load_started.elapsed().as_secs_f64();
    let hub_after = target.usage();
    let nodes_after = target.node_usages();
    let database_after = database_cpu_ms(args);
    let own_after = own_cpu_ms(target);
    let machine_after = procfs::machine_busy_ms();
    let outcome = match outcome {
        Some(it) => it,
        None => match load {
            Some(handle) => {
                handle.abort();
                match handle.await {
                    Ok(it) => it,
                    Err(_) => {
                        anyhow::bail!("the load generator did not finish before the deadline")
                    }
                }
            }
            None => anyhow::bail!("the load generator vanished"),
        },
    };
    report.wall_s = Some(report::round(wall_s, 3));
    report.load(outcome);
    report.resources(
        hub_before,
        hub_after,
        own_before.zip(own_after),
        machine_before.zip(machine_after),
        wall_s,
    );
    report.cluster(
        &nodes_before,
        &nodes_after,
        database_before.zip(database_after),
    );

    // The hub's own count must agree with what the phones saw.
    let stats_after = get_stats(&mut stats_conn, target).await.unwrap_or_default();
    let expected = warm_accepted + report.accepted;
    report.check_states(
        &stats_before.by_state,
        &stats_after.by_state,
        expected,
        args.delivery_report,
        stats_after.waiting,
    );
    Ok(())
}

/// CPU of every PostgreSQL process on this machine (server and backends), when the hub runs
/// on PostgreSQL: the database's share of the work. `None` on SQLite.
fn database_cpu_ms(args: &BenchArgs) -> Option<f64> {
    args.database_url
        .as_deref()
        .filter(|it| crate::store::cluster::is_postgres(it))
        .and_then(|_| procfs::named("postgres"))
}

/// CPU of the load generator and phones: this process, less an in-process hub's threads.
fn own_cpu_ms(target: &Target) -> Option<f64> {
    let all = procfs::process(std::process::id())?.cpu_ms;
    match (target.kind, target.usage()) {
        ("in-process", Some(hub)) => Some(all - hub.cpu_ms),
        _ => Some(all),
    }
}

/// Connect-only: the hub at rest with every phone connected, heartbeating and reporting
/// status, measured over `--window-s` after a short settling time.
async fn at_rest(
    args: &BenchArgs,
    target: &Target,
    fleet: &Fleet,
    before_connect: Option<procfs::Usage>,
    report: &mut Report,
    deadline: Instant,
) {
    let settle = Instant::now() + Duration::from_secs(2);
    tokio::time::sleep_until(settle.min(deadline)).await;
    let window = Duration::from_secs(args.window_s.max(1));
    let window_start = target.usage();
    let heartbeats = FleetCounters::get(&fleet.counters.heartbeats_sent);
    let status = FleetCounters::get(&fleet.counters.status_sent);
    let t0 = Instant::now();
    let end = (t0 + window).min(deadline);
    let bar = progress(window.as_secs(), "at rest (s)", args.no_progress);
    while Instant::now() < end {
        tokio::time::sleep(
            Duration::from_millis(250).min(end.saturating_duration_since(Instant::now())),
        )
        .await;
        if let Some(bar) = &bar {
            bar.set_position(t0.elapsed().as_secs());
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if t0.elapsed() + Duration::from_millis(50) < window {
        report.add_error("timeout", 1);
    }
    let window_end = target.usage();
    report.at_rest(
        before_connect,
        window_start,
        window_end,
        t0.elapsed().as_secs_f64(),
        FleetCounters::get(&fleet.counters.heartbeats_sent) - heartbeats,
        FleetCounters::get(&fleet.counters.status_sent) - status,
    );
}
