//! `smshub worker`: a remote modem worker. It drives modems next to it (a Raspberry Pi with
//! USB sticks, behind NAT) with the hub's own modem layers and speaks device protocol v1 to
//! the central hub over one outgoing WebSocket, as one device whose SIM slots are its modems
//! (the n-th `--modem` is slot n-1): one token, one journal, and the hub's per-SIM choice,
//! quotas and pacing apply per modem.
//!
//! - [`config`]: the command line; the token, hidden from `Debug` and logs.
//! - [`journal`]: jobs, tombstones and the outbox on disk, fsynced before `accepted`.
//! - [`jobs`]: the job rules of the protocol over the journal (offer, commit, revoke, ack,
//!   outcomes, status reports, incoming SMS).
//! - [`dial`]: `ws://`/`wss://` with the token, TLS roots, backoff with full jitter.
//! - [`session`]: one session on the socket: hello, welcome, status, outbox, heartbeats.
//! - [`modem`]: one task per serial modem on the hub's AT runner, PDU codec and failure rules.
//! - [`hilink`]: one task per HiLink stick on the hub's stick calls (`--modem http://…`).
//!
//! Invariant (spec §5.1): a job is handed to a modem only after its `commit` is on disk, and
//! `sending` is on disk before its first PDU is written; after a crash, a job caught in
//! `sending` is reported `outcome_unknown`, never sent again.
//!
//! The worker is a transport client: it knows nothing of the hub's store, dispatcher,
//! registry or API (`tests/it/architecture.rs`).

pub mod config;
pub mod dial;
pub mod hilink;
pub mod jobs;
pub mod journal;
pub mod modem;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::transport::hilink::HilinkConfig;
use crate::transport::modem::detect;
use crate::transport::radio::Operators;
use config::{ModemSpec, WorkerArgs, WorkerConfig};
use dial::{DialError, Dialer};
use jobs::Jobs;
use journal::Journal;
use modem::ModemEvent;

/// A session that lasted this long resets the backoff (§3).
const STABLE: Duration = Duration::from_secs(60);
/// How long the first connection waits for the modems to identify themselves.
const IDENTIFY_WAIT: Duration = Duration::from_secs(15);
/// After this many replacements (close 4000) within [`REPLACED_WINDOW`], stop (§2.5).
const REPLACED_MAX: usize = 3;
const REPLACED_WINDOW: Duration = Duration::from_secs(600);

/// Runs the worker until a final refusal (401, removed, revoked) or a journal failure.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let config = WorkerConfig::from_args(args)?;
    let mut specs = config.modems.clone();
    if config.modem_scan {
        let skip: Vec<String> = specs.iter().map(ModemSpec::name).collect();
        let found = detect::detect(&detect::Host::default(), &[], &skip, Duration::from_secs(2))
            .await
            .ports
            .into_iter()
            .map(|it| ModemSpec::Serial(it.port));
        for spec in found {
            if !specs.contains(&spec) {
                specs.push(spec);
            }
        }
    }
    if specs.is_empty() {
        bail!("no modem found");
    }
    if specs.len() > 255 {
        bail!("at most 255 modems");
    }
    let journal = Journal::open(&config.journal_dir, now_ms())
        .with_context(|| format!("journal in {}", config.journal_dir.display()))?;
    let dialer = Dialer::new(&config.url, config.token.clone(), config.ca_file.as_deref())?;
    tracing::info!(url = %config.url, device = %config.device_id, modems = ?specs.iter().map(ModemSpec::name).collect::<Vec<_>>(), journal = %config.journal_dir.display(), "worker starting");

    let (events_tx, mut events) = mpsc::channel::<ModemEvent>(64);
    let operators = Arc::new(Operators::new(Vec::new()));
    let handles = specs
        .iter()
        .enumerate()
        .map(|(slot, spec)| match spec {
            ModemSpec::Serial(port) => modem::spawn(
                slot as u8,
                port.clone(),
                events_tx.clone(),
                operators.clone(),
            ),
            ModemSpec::Hilink(target) => hilink::spawn(
                slot as u8,
                target.clone(),
                HilinkConfig::default(),
                events_tx.clone(),
                operators.clone(),
            ),
        })
        .collect();
    drop(events_tx);
    let mut jobs = Jobs::new(journal, handles, config.jobs_per_modem);
    jobs.resume(now_ms()).context("journal")?;

    // Give the modems a moment to say who they are, so the first hello names the SIMs.
    let until = Instant::now() + IDENTIFY_WAIT;
    while !jobs.identified() {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => jobs.on_modem(event, now_ms()).context("journal")?,
                None => break,
            },
            _ = tokio::time::sleep_until(until) => break,
        }
    }

    let app_version = env!("CARGO_PKG_VERSION");
    let mut failures: u32 = 0;
    let mut replaced: Vec<Instant> = Vec::new();
    loop {
        match dialer.connect().await {
            Ok(ws) => {
                let ended = session::run(ws, &mut jobs, &mut events, app_version)
                    .await
                    .context("journal")?;
                tracing::warn!(code = ?ended.code, reason = %ended.reason, "session ended");
                if ended.is_final() {
                    bail!(
                        "the hub ended this device for good (close code {:?}: {}); not reconnecting",
                        ended.code,
                        ended.reason
                    );
                }
                if ended.code == Some(4000) {
                    replaced.retain(|it| it.elapsed() < REPLACED_WINDOW);
                    replaced.push(Instant::now());
                    if replaced.len() >= REPLACED_MAX {
                        bail!(
                            "another client uses this device's credentials (replaced {REPLACED_MAX} times in 10 minutes); stopping"
                        );
                    }
                }
                if ended.lasted.is_some_and(|it| it >= STABLE) {
                    failures = 0;
                }
            }
            Err(DialError::Unauthorized) => bail!(
                "the hub refused the device token (401): wrong, rotated or revoked, or the device was removed; not reconnecting"
            ),
            Err(DialError::Failed(reason)) => tracing::warn!(%reason, "cannot connect to the hub"),
        }
        failures = failures.saturating_add(1);
        let wait = dial::backoff(failures, config.max_backoff);
        tracing::info!(
            wait_ms = wait.as_millis() as u64,
            failures,
            "reconnecting after a wait"
        );
        // The modems go on while the worker waits: outcomes reach the journal now, the hub later.
        let until = Instant::now() + wait;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => jobs.on_modem(event, now_ms()).context("journal")?,
                    None => bail!("every modem task ended"),
                },
                _ = tokio::time::sleep_until(until) => break,
            }
        }
    }
}

/// Asks the kernel for small pages only. Where transparent huge pages are always on (many
/// x86-64 distributions), the allocator's first arena becomes resident in 2 MB pages: 12 of a
/// resting worker's 15 MB. Called before anything allocates much, by both entry points.
pub fn small_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process; it reads no memory.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
