//! The hub's log: `tracing` to stderr, with colour only on a terminal, and a writer that
//! never fails.
//!
//! A log line that cannot be written (stderr on a full disk, a closed pipe, `2>/dev/full`) is
//! dropped and counted ([`dropped_lines`]); it must never panic the thread that logged it,
//! which may be the database writer's. `tracing-subscriber` reports its own write errors with
//! `eprintln!`, which panics when stderr fails, so those reports are turned off too.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_subscriber::EnvFilter;

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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false)
        .with_writer(|| Stderr);
    match format {
        LogFormat::Text => builder.with_ansi(io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// Prints a line on stdout for the user; a closed or full stdout is not an error worth a
/// panic (`smshub pdu decode … | head`), so a failed write is dropped.
pub fn say(line: std::fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let _ = out.write_fmt(line).and_then(|()| out.write_all(b"\n"));
}
