//! The worker's journal (device protocol §5.2): every job it holds with its local state, the
//! tombstones of jobs that ended, and the outbox of reports the hub has not acknowledged.
//!
//! One JSON file, `journal.json`, rewritten whole on every change: written to a temporary
//! file, fsynced, renamed over the old one, and the directory fsynced, so after a power loss
//! the file is either the old or the new state, never a torn one. [`Journal::save`] returns
//! only then; the session sends `accepted` (or a report) after it, never before.
//!
//! Tombstones are kept [`TOMBSTONE_KEEP`] (8 days, over the spec's 7) so a job id offered
//! again is re-reported, not sent twice.
//!
//! Must never: report a write as done before the rename and the directory are on disk.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use smshub_protocol::device::{DeviceFrame, HeldJob, HeldPhase, ReportKind, SendJob};

/// How long a tombstone is kept after its final report was acknowledged.
pub const TOMBSTONE_KEEP_MS: i64 = 8 * 24 * 3600 * 1000;

const FILE: &str = "journal.json";
const TEMP: &str = "journal.json.tmp";

/// How far the worker got with a job (spec §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Local {
    /// Journaled and `accepted`; no `commit` yet: must not be sent.
    Accepted,
    /// `commit` received and recorded; not yet handed to the modem.
    Committed,
    /// Recorded just before the PDU is written: after a crash its fate is unknown.
    Sending,
    /// Its send outcome is recorded.
    Outcome,
}

/// A job's send outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Sent {
        parts: u32,
        at: String,
    },
    Failed {
        code: String,
        temporary: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl Outcome {
    /// A failure that promises nothing went out: the hub may offer the id again.
    pub fn may_retry(&self) -> bool {
        matches!(
            self,
            Outcome::Failed {
                temporary: true,
                ..
            }
        )
    }
}

/// A job held in the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The offer as the hub sent it.
    pub job: SendJob,
    /// The SIM slot (= modem) it goes out on.
    pub slot: u8,
    pub state: Local,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The hub acknowledged its `sent`/`failed`.
    #[serde(default)]
    pub send_acked: bool,
    /// TP-MRs of its parts, to match status reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<u8>,
    /// TP-MRs whose status report said delivered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivered: Vec<u8>,
    /// A delivery report (`delivered` or delivery `failed`) was produced.
    #[serde(default)]
    pub delivery_done: bool,
}

/// What is left of a job that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub outcome: Outcome,
    /// Delivered, if it was.
    #[serde(default)]
    pub delivered: bool,
    /// When it became a tombstone (ms since the epoch).
    pub at_ms: i64,
}

/// The journal's content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub jobs: BTreeMap<String, Entry>,
    #[serde(default)]
    pub tombstones: BTreeMap<String, Tombstone>,
    /// Reports not yet acknowledged, in the order they were produced.
    #[serde(default)]
    pub outbox: Vec<DeviceFrame>,
}

/// The journal on disk and in memory.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    pub state: State,
}

impl Journal {
    /// Opens (or creates) the journal in `dir`; tombstones older than 8 days are dropped.
    pub fn open(dir: &Path, now_ms: i64) -> io::Result<Journal> {
        fs::create_dir_all(dir)?;
        let path = dir.join(FILE);
        let mut state: State = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {err}", path.display()),
                )
            })?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => State::default(),
            Err(err) => return Err(err),
        };
        state
            .tombstones
            .retain(|_, it| now_ms.saturating_sub(it.at_ms) < TOMBSTONE_KEEP_MS);
        Ok(Journal {
            dir: dir.to_path_buf(),
            state,
        })
    }

    /// Writes the state durably: temporary file, fsync, rename, fsync of the directory.
    pub fn save(&self) -> io::Result<()> {
        let bytes = serde_json::to_vec(&self.state).map_err(io::Error::other)?;
        let temp = self.dir.join(TEMP);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, self.dir.join(FILE))?;
        File::open(&self.dir)?.sync_all()
    }

    /// The jobs to list in `hello` (spec §5.8.1): those whose `sent`/`failed` is not yet
    /// acknowledged.
    pub fn held(&self) -> Vec<HeldJob> {
        self.state
            .jobs
            .iter()
            .filter(|(_, it)| !it.send_acked)
            .map(|(id, it)| HeldJob {
                id: id.clone(),
                phase: match it.state {
                    Local::Accepted => HeldPhase::Accepted,
                    _ => HeldPhase::Committed,
                },
            })
            .collect()
    }

    /// Puts a report in the outbox (saved by the caller).
    pub fn report(&mut self, frame: DeviceFrame) {
        self.state.outbox.push(frame);
    }
}

/// The kind and id of a report frame.
pub fn report_key(frame: &DeviceFrame) -> Option<(&str, ReportKind)> {
    match frame {
        DeviceFrame::Sent(it) => Some((&it.id, ReportKind::Sent)),
        DeviceFrame::Delivered(it) => Some((&it.id, ReportKind::Delivered)),
        DeviceFrame::Failed(it) => Some((&it.id, ReportKind::Failed)),
        DeviceFrame::Incoming(it) => Some((&it.id, ReportKind::Incoming)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use smshub_protocol::device::{Incoming, Sent};

    use super::*;

    fn job(id: &str) -> SendJob {
        SendJob {
            id: id.into(),
            to: "+213555123456".into(),
            text: "hello".into(),
            sim_slot: Some(0),
            delivery_report: true,
            valid_until: None,
            parts: 1,
        }
    }

    #[test]
    fn a_saved_journal_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path(), 0).unwrap();
        journal.state.jobs.insert(
            "a".into(),
            Entry {
                job: job("a"),
                slot: 0,
                state: Local::Sending,
                outcome: None,
                send_acked: false,
                references: vec![7],
                delivered: vec![],
                delivery_done: false,
            },
        );
        journal.state.jobs.insert(
            "b".into(),
            Entry {
                job: job("b"),
                slot: 1,
                state: Local::Accepted,
                outcome: None,
                send_acked: false,
                references: vec![],
                delivered: vec![],
                delivery_done: false,
            },
        );
        journal.state.tombstones.insert(
            "c".into(),
            Tombstone {
                outcome: Outcome::Sent {
                    parts: 1,
                    at: "2026-11-22T10:15:31.204Z".into(),
                },
                delivered: true,
                at_ms: 1_000,
            },
        );
        journal.report(DeviceFrame::Sent(Sent {
            id: "a".into(),
            parts: 1,
            at: None,
        }));
        journal.report(DeviceFrame::Incoming(Incoming {
            id: "in-1".into(),
            from: "+213770123456".into(),
            text: "Solde".into(),
            sim_slot: Some(0),
            received_at: None,
        }));
        journal.save().unwrap();
        assert!(!dir.path().join(TEMP).exists());

        let again = Journal::open(dir.path(), 2_000).unwrap();
        assert_eq!(again.state, journal.state);
        let held = again.held();
        assert_eq!(held.len(), 2);
        assert_eq!(held[0].phase, HeldPhase::Committed);
        assert_eq!(held[1].phase, HeldPhase::Accepted);
        assert_eq!(
            report_key(&again.state.outbox[1]),
            Some(("in-1", ReportKind::Incoming))
        );
    }

    #[test]
    fn old_tombstones_are_dropped_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path(), 0).unwrap();
        let tomb = |at_ms| Tombstone {
            outcome: Outcome::Failed {
                code: "rejected".into(),
                temporary: false,
                reason: None,
            },
            delivered: false,
            at_ms,
        };
        journal.state.tombstones.insert("old".into(), tomb(0));
        journal
            .state
            .tombstones
            .insert("new".into(), tomb(TOMBSTONE_KEEP_MS));
        journal.save().unwrap();
        let again = Journal::open(dir.path(), TOMBSTONE_KEEP_MS + 1).unwrap();
        assert_eq!(
            again.state.tombstones.keys().collect::<Vec<_>>(),
            vec!["new"]
        );
    }

    #[test]
    fn a_broken_file_is_an_error_not_an_empty_journal() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE), b"{not json").unwrap();
        assert!(Journal::open(dir.path(), 0).is_err());
    }
}
