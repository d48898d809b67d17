//! The hub's log: `tracing` to stderr, with colour only on a terminal, and a writer that
//! never fails.
//!
//! A log line that cannot be written (stderr on a full disk, a closed pipe, `2>/dev/full`) is
//! dropped and counted ([`dropped_lines`]); it must never panic the thread that logged it,
//! which may be the database writer's. `tracing-subscriber` reports its own write errors with
//! `eprintln!`, which panics when stderr fails, so those reports are turned off too.
//!
//! The last [`RECENT_LINES`] events are also kept in memory ([`Recent`], a bounded ring fed
//! by the same subscriber) for `GET /api/logs`: the oldest goes when a new one comes.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::domain::{Millis, now_millis};

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Log lines that could not be written since the process started.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Stderr whose write errors are counted and swallowed.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if io::stderr().write_all(buf).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one line per event, colour on a terminal only.
    Text,
    /// For machines: one JSON object per line (`timestamp`, `level`, `fields`, `target`).
    Json,
}

/// Installs the log for the process, filtered by `filter` (an `EnvFilter` directive).
pub fn init(filter: EnvFilter, format: LogFormat) {
    let lines = tracing_subscriber::fmt::layer()
        .log_internal_errors(false)
        .with_writer(|| Stderr);
    let registry = tracing_subscriber::registry().with(filter).with(Recent);
    match format {
        LogFormat::Text => registry
            .with(lines.with_ansi(io::stderr().is_terminal()))
            .init(),
        LogFormat::Json => registry.with(lines.json().with_ansi(false)).init(),
    }
}

/// Events kept in memory for `GET /api/logs`.
pub const RECENT_LINES: usize = 1000;

static RECENT: LazyLock<Mutex<VecDeque<LogEntry>>> =
    LazyLock::new(|| Mutex::new(VecDeque::with_capacity(RECENT_LINES)));

/// One recent log event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogEntry {
    /// Milliseconds since the Unix epoch.
    pub at: Millis,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: &'static str,
    pub target: String,
    pub message: String,
    /// The event's other fields, as text.
    pub fields: BTreeMap<String, String>,
}

/// Severity rank of a level name: `error` 1 to `trace` 5; `None` for another name.
pub fn level_rank(level: &str) -> Option<u8> {
    match level.to_ascii_lowercase().as_str() {
        "error" => Some(1),
        "warn" | "warning" => Some(2),
        "info" => Some(3),
        "debug" => Some(4),
        "trace" => Some(5),
        _ => None,
    }
}

/// The kept events at least as severe as `max_rank` (see [`level_rank`]) at or after
/// `since`, newest first, at most `limit`.
pub fn recent(max_rank: u8, since: Option<Millis>, limit: usize) -> Vec<LogEntry> {
    let ring = RECENT.lock().unwrap_or_else(|it| it.into_inner());
    ring.iter()
        .rev()
        .filter(|it| level_rank(it.level).is_some_and(|rank| rank <= max_rank))
        .filter(|it| since.is_none_or(|since| it.at >= since))
        .take(limit)
        .cloned()
        .collect()
}

/// Installs a subscriber that only keeps events in memory (at `info` and above), for an
/// embedded hub (tests) whose process has no log of its own; `false` if the process already
/// has a subscriber.
pub fn keep_recent_only() -> bool {
    tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(Recent)
        .try_init()
        .is_ok()
}

/// The layer that feeds the ring of recent events.
pub struct Recent;

impl<S: tracing::Subscriber> Layer<S> for Recent {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let entry = LogEntry {
            at: now_millis(),
            level: match *meta.level() {
                tracing::Level::ERROR => "error",
                tracing::Level::WARN => "warn",
                tracing::Level::INFO => "info",
                tracing::Level::DEBUG => "debug",
                tracing::Level::TRACE => "trace",
            },
            target: meta.target().to_string(),
            message: fields.message,
            fields: fields.others,
        };
        let mut ring = RECENT.lock().unwrap_or_else(|it| it.into_inner());
        if ring.len() >= RECENT_LINES {
            ring.pop_front();
        }
        ring.push_back(entry);
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    others: BTreeMap<String, String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.others
                .insert(field.name().to_string(), value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.others
                .insert(field.name().to_string(), format!("{value:?}"));
        }
    }
}

/// Prints a line on stdout for the user; a closed or full stdout is not an error worth a
/// panic (`smshub pdu decode … | head`), so a failed write is dropped.
pub fn say(line: std::fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let _ = out.write_fmt(line).and_then(|()| out.write_all(b"\n"));
}
