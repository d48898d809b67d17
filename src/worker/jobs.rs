//! The job rules of device protocol v1 on the worker's side (spec §5, §10), over the journal:
//! what an offer, a `commit`, a `revoke` or an `ack` does, what a modem's outcome, status
//! report or incoming SMS becomes. Every change is saved ([`Journal::save`]: fsync) before the
//! frame that depends on it is queued for the socket; frames are queued only while a session
//! is open (reports stay in the outbox and go out in the next session).
//!
//! Must never: send (hand to a modem) a job that is not committed, record a second send of a
//! job id whose earlier attempt may have gone out, or queue `accepted` before the job is on
//! disk.

use std::collections::HashSet;
use std::io;

use smshub_protocol::device::{
    AckedReport, Delivered, DeviceFrame, Failed, HeldJob, HubFrame, Incoming, JobIds, Rejected,
    ReportKind, SendJob, Sent, SimInfo, SimStatus, Status, UssdError, UssdResult,
};
use smshub_protocol::pdu::StatusClass;

use super::journal::{Entry, Journal, Local, Outcome, Tombstone, report_key};
use super::modem::{ModemEvent, ModemHandle, ModemJob};

/// The worker's jobs: the journal, the modems they go to, and what the socket should carry.
pub struct Jobs {
    journal: Journal,
    modems: Vec<ModemHandle>,
    max_in_flight: u32,
    /// Reports sent in this session (a report goes once per session, §5.6).
    reported: HashSet<(String, ReportKind)>,
    /// Jobs handed to a modem by this process (a committed job is handed over once).
    dispatched: HashSet<String>,
    /// Frames for the open session.
    out: Vec<DeviceFrame>,
    open: bool,
    /// The hub's clock minus ours, in ms (§4.4).
    offset_ms: i64,
    /// Each slot's identity and radio state.
    sims: Vec<(SimInfo, SimStatus)>,
    status_changed: bool,
}

impl Jobs {
    /// The rules over `journal`, for `modems` (slot n = the n-th).
    pub fn new(journal: Journal, modems: Vec<ModemHandle>, jobs_per_modem: u32) -> Jobs {
        let sims = (0..modems.len())
            .map(|slot| {
                let slot = slot as u8;
                (
                    SimInfo {
                        slot,
                        ..SimInfo::default()
                    },
                    SimStatus {
                        slot,
                        registered: false,
                        ..SimStatus::default()
                    },
                )
            })
            .collect();
        Jobs {
            journal,
            max_in_flight: jobs_per_modem.saturating_mul(modems.len() as u32),
            modems,
            reported: HashSet::new(),
            dispatched: HashSet::new(),
            out: Vec::new(),
            open: false,
            offset_ms: 0,
            sims,
            status_changed: false,
        }
    }

    /// After a start: a job caught in `sending` may have gone out (`outcome_unknown`, §5.8.4:
    /// a modem's answer cannot come to a new process); committed jobs go to their modems.
    pub fn resume(&mut self, now_ms: i64) -> io::Result<()> {
        let caught: Vec<String> = self
            .journal
            .state
            .jobs
            .iter()
            .filter(|(_, it)| it.state == Local::Sending)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &caught {
            tracing::warn!(job = %id, "the worker stopped while this job's PDU was with the modem: outcome_unknown");
            self.record_failure(
                id,
                "outcome_unknown",
                false,
                "the worker stopped after the PDU went to the modem; it may have been sent".into(),
            );
        }
        if !caught.is_empty() {
            self.journal.save()?;
        }
        let committed: Vec<String> = self
            .journal
            .state
            .jobs
            .iter()
            .filter(|(_, it)| it.state == Local::Committed)
            .map(|(id, _)| id.clone())
            .collect();
        for id in committed {
            self.dispatch(&id, now_ms)?;
        }
        Ok(())
    }

    /// The jobs to list in `hello`.
    pub fn held(&self) -> Vec<HeldJob> {
        self.journal.held()
    }

    /// Jobs this worker takes at once.
    pub fn max_in_flight(&self) -> u32 {
        self.max_in_flight
    }

    /// The SIMs to name in `hello`.
    pub fn sims(&self) -> Vec<SimInfo> {
        self.sims.iter().map(|(it, _)| it.clone()).collect()
    }

    /// The `status` frame; clears the changed flag.
    pub fn status(&mut self) -> Status {
        self.status_changed = false;
        Status {
            battery: None,
            sims: self.sims.iter().map(|(_, it)| it.clone()).collect(),
            connection: None,
        }
    }

    /// Whether a SIM's state changed since the last `status`.
    pub fn status_changed(&self) -> bool {
        self.status_changed
    }

    /// Whether every modem has told its identity once (for a useful first `hello`).
    pub fn identified(&self) -> bool {
        self.sims
            .iter()
            .all(|(sim, _)| sim.mcc_mnc.is_some() || sim.iccid.is_some())
    }

    /// `welcome` arrived: frames may go out; `offset_ms` corrects our clock.
    pub fn open(&mut self, offset_ms: i64) {
        self.open = true;
        self.offset_ms = offset_ms;
        self.reported.clear();
        self.out.clear();
    }

    /// The session ended.
    pub fn close(&mut self) {
        self.open = false;
        self.out.clear();
    }

    /// Queues the whole outbox, in order (after `welcome` and the first `status`, §5.6).
    pub fn flush_outbox(&mut self) {
        let frames: Vec<DeviceFrame> = self.journal.state.outbox.clone();
        for frame in frames {
            self.queue_report(frame);
        }
    }

    /// The frames to write now.
    pub fn take_out(&mut self) -> Vec<DeviceFrame> {
        std::mem::take(&mut self.out)
    }

    fn queue_report(&mut self, frame: DeviceFrame) {
        if !self.open {
            return;
        }
        if let Some((id, kind)) = report_key(&frame)
            && self.reported.insert((id.to_string(), kind))
        {
            self.out.push(frame);
        }
    }

    /// A report: into the outbox (saved by the caller), and on the socket if one is open.
    fn report(&mut self, frame: DeviceFrame) {
        self.journal.report(frame.clone());
        self.queue_report(frame);
    }

    /// A frame from the hub.
    pub fn on_hub(&mut self, frame: HubFrame, now_ms: i64) -> io::Result<()> {
        match frame {
            HubFrame::Send(job) => self.offer(job, now_ms),
            HubFrame::Commit(JobIds { ids }) => self.commit(ids, now_ms),
            HubFrame::Revoke(revoke) => self.revoke(revoke.ids),
            HubFrame::Ack(ack) => self.ack(ack.reports, now_ms),
            HubFrame::Error(error) => {
                tracing::warn!(code = %error.code, message = %error.message, "the hub could not process a frame");
                Ok(())
            }
            HubFrame::Ussd(request) => {
                match self.modems.get(usize::from(request.sim)) {
                    Some(modem) => modem.run_ussd(request.id, request.code),
                    None => self.ussd_answer(
                        request.id,
                        Err((
                            "sim_unavailable".to_string(),
                            format!("no modem in slot {}", request.sim),
                        )),
                    ),
                }
                Ok(())
            }
            HubFrame::Welcome(_) | HubFrame::Heartbeat(_) => Ok(()),
        }
    }

    /// Queues a `ussd_result` (nothing is journaled: the hub's request dies with the session).
    fn ussd_answer(&mut self, id: String, result: Result<String, (String, String)>) {
        if !self.open {
            return;
        }
        let (text, error) = match result {
            Ok(text) => (Some(text), None),
            Err((code, message)) => (None, Some(UssdError { code, message })),
        };
        self.out
            .push(DeviceFrame::UssdResult(UssdResult { id, text, error }));
    }

    fn hub_now(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(self.offset_ms)
    }

    fn expired(&self, job: &SendJob, now_ms: i64) -> bool {
        job.valid_until
            .as_deref()
            .and_then(|it| chrono::DateTime::parse_from_rfc3339(it).ok())
            .is_some_and(|until| until.timestamp_millis() <= self.hub_now(now_ms))
    }

    fn in_flight(&self) -> u32 {
        self.journal
            .state
            .jobs
            .values()
            .filter(|it| it.state != Local::Outcome)
            .count() as u32
    }

    /// `send` (§5.3, §5.7).
    fn offer(&mut self, job: SendJob, now_ms: i64) -> io::Result<()> {
        let id = job.id.clone();
        let retry = match self.journal.state.jobs.get(&id) {
            Some(entry) => entry.outcome.as_ref().is_some_and(Outcome::may_retry),
            None => self
                .journal
                .state
                .tombstones
                .get(&id)
                .is_some_and(|it| it.outcome.may_retry()),
        };
        let known = self.journal.state.jobs.contains_key(&id)
            || self.journal.state.tombstones.contains_key(&id);
        if known && !retry {
            // Already held or done: the id alone identifies it; `commit` re-reports.
            self.out_push(DeviceFrame::Accepted(JobIds { ids: vec![id] }));
            return Ok(());
        }
        let slot = match job.sim_slot {
            Some(slot) => Some(slot),
            None => self
                .sims
                .iter()
                .find(|(_, it)| it.registered)
                .map(|(_, it)| it.slot),
        };
        let refuse = |reason: &str| {
            DeviceFrame::Rejected(Rejected {
                ids: vec![job.id.clone()],
                reason: Some(reason.to_string()),
            })
        };
        let Some(slot) = slot.filter(|it| usize::from(*it) < self.modems.len()) else {
            self.out_push(refuse("sim_unavailable"));
            return Ok(());
        };
        if self.expired(&job, now_ms) {
            self.out_push(refuse("expired"));
            return Ok(());
        }
        if !retry && self.in_flight() >= self.max_in_flight {
            self.out_push(refuse("busy"));
            return Ok(());
        }
        self.journal.state.tombstones.remove(&id);
        self.dispatched.remove(&id);
        self.journal.state.jobs.insert(
            id.clone(),
            Entry {
                job,
                slot,
                state: Local::Accepted,
                outcome: None,
                send_acked: false,
                references: Vec::new(),
                delivered: Vec::new(),
                delivery_done: false,
            },
        );
        self.journal.save()?;
        self.out_push(DeviceFrame::Accepted(JobIds { ids: vec![id] }));
        Ok(())
    }

    fn out_push(&mut self, frame: DeviceFrame) {
        if self.open {
            self.out.push(frame);
        }
    }

    /// `commit` (§5.4, §5.7).
    fn commit(&mut self, ids: Vec<String>, now_ms: i64) -> io::Result<()> {
        let mut unknown = Vec::new();
        let mut to_send = Vec::new();
        let mut changed = false;
        for id in ids {
            let Some(entry) = self.journal.state.jobs.get_mut(&id) else {
                match self.journal.state.tombstones.get(&id).cloned() {
                    Some(tomb) if !tomb.outcome.may_retry() => {
                        self.rereport(&id, &tomb.outcome, tomb.delivered);
                        changed = true;
                    }
                    _ => unknown.push(id),
                }
                continue;
            };
            match entry.state {
                Local::Accepted => {
                    entry.state = Local::Committed;
                    changed = true;
                    to_send.push(id);
                }
                Local::Committed => to_send.push(id),
                Local::Sending => {}
                Local::Outcome => {
                    let outcome = entry.outcome.clone();
                    let delivered =
                        entry.delivery_done && entry.delivered.len() >= entry.references.len();
                    if let Some(outcome) = outcome {
                        self.rereport(&id, &outcome, delivered);
                        changed = true;
                    }
                }
            }
        }
        if changed {
            self.journal.save()?;
        }
        for id in to_send {
            self.dispatch(&id, now_ms)?;
        }
        if !unknown.is_empty() {
            self.out_push(DeviceFrame::Rejected(Rejected {
                ids: unknown,
                reason: Some("unknown_job".into()),
            }));
        }
        Ok(())
    }

    /// Reports a known outcome again (an id the hub committed twice), unless this session has.
    fn rereport(&mut self, id: &str, outcome: &Outcome, delivered: bool) {
        let frames = outcome_frames(id, outcome, delivered);
        for frame in frames {
            let Some((id, kind)) = report_key(&frame) else {
                continue;
            };
            let pending = self
                .journal
                .state
                .outbox
                .iter()
                .any(|it| report_key(it) == Some((id, kind)));
            if pending {
                self.queue_report(frame);
            } else {
                self.report(frame);
            }
        }
    }

    /// Hands a committed job to its modem, once per process; an expired one fails instead.
    fn dispatch(&mut self, id: &str, now_ms: i64) -> io::Result<()> {
        let Some(entry) = self.journal.state.jobs.get(id) else {
            return Ok(());
        };
        if entry.state != Local::Committed || self.dispatched.contains(id) {
            return Ok(());
        }
        if self.expired(&entry.job, now_ms) {
            self.record_failure(
                id,
                "expired",
                false,
                "valid_until passed before sending".into(),
            );
            return self.journal.save();
        }
        let job = ModemJob {
            id: id.to_string(),
            to: entry.job.to.clone(),
            text: entry.job.text.clone(),
            delivery_report: entry.job.delivery_report,
        };
        match self.modems.get(usize::from(entry.slot)) {
            Some(modem) if modem.jobs.send(job).is_ok() => {
                self.dispatched.insert(id.to_string());
                Ok(())
            }
            _ => {
                self.record_failure(id, "sim_unavailable", true, "no modem in this slot".into());
                self.journal.save()
            }
        }
    }

    /// `revoke` (§5.4): jobs not yet with a modem are dropped and confirmed.
    fn revoke(&mut self, ids: Vec<String>) -> io::Result<()> {
        let mut dropped = Vec::new();
        for id in ids {
            let droppable = self
                .journal
                .state
                .jobs
                .get(&id)
                .is_some_and(|it| matches!(it.state, Local::Accepted | Local::Committed));
            if droppable {
                self.journal.state.jobs.remove(&id);
                self.dispatched.remove(&id);
                dropped.push(id);
            }
        }
        if !dropped.is_empty() {
            self.journal.save()?;
            self.out_push(DeviceFrame::Rejected(Rejected {
                ids: dropped,
                reason: Some("revoked".into()),
            }));
        }
        Ok(())
    }

    /// `ack` (§5.6): reports leave the outbox; finished jobs become tombstones.
    fn ack(&mut self, reports: Vec<AckedReport>, now_ms: i64) -> io::Result<()> {
        let before = self.journal.state.outbox.len();
        let mut touched = Vec::new();
        for acked in &reports {
            self.journal
                .state
                .outbox
                .retain(|it| report_key(it) != Some((acked.id.as_str(), acked.report)));
            if matches!(acked.report, ReportKind::Sent | ReportKind::Failed)
                && let Some(entry) = self.journal.state.jobs.get_mut(&acked.id)
                && entry.state == Local::Outcome
            {
                entry.send_acked = true;
            }
            touched.push(acked.id.clone());
        }
        let mut changed = self.journal.state.outbox.len() != before;
        for id in touched {
            let Some(entry) = self.journal.state.jobs.get(&id) else {
                continue;
            };
            let pending = self
                .journal
                .state
                .outbox
                .iter()
                .any(|it| report_key(it).is_some_and(|(rid, _)| rid == id));
            let finished = entry.state == Local::Outcome
                && entry.send_acked
                && !pending
                && match &entry.outcome {
                    Some(Outcome::Failed { .. }) => true,
                    Some(Outcome::Sent { .. }) => !entry.job.delivery_report || entry.delivery_done,
                    None => false,
                };
            if finished && let Some(entry) = self.journal.state.jobs.remove(&id) {
                let delivered =
                    entry.delivery_done && entry.delivered.len() >= entry.references.len();
                if let Some(outcome) = entry.outcome {
                    self.journal.state.tombstones.insert(
                        id.clone(),
                        Tombstone {
                            outcome,
                            delivered,
                            at_ms: now_ms,
                        },
                    );
                }
                self.dispatched.remove(&id);
                changed = true;
            }
        }
        if changed {
            self.journal.save()?;
        }
        Ok(())
    }

    /// Records a failure as the job's outcome and reports it (saved by the caller).
    fn record_failure(&mut self, id: &str, code: &str, temporary: bool, reason: String) {
        let Some(entry) = self.journal.state.jobs.get_mut(id) else {
            return;
        };
        let outcome = Outcome::Failed {
            code: code.to_string(),
            temporary,
            reason: Some(reason.clone()),
        };
        entry.state = Local::Outcome;
        entry.outcome = Some(outcome);
        self.dispatched.remove(id);
        self.report(DeviceFrame::Failed(Failed {
            id: id.to_string(),
            code: code.to_string(),
            temporary: Some(temporary),
            reason: Some(reason),
        }));
    }

    /// What a modem says.
    pub fn on_modem(&mut self, event: ModemEvent, now_ms: i64) -> io::Result<()> {
        match event {
            ModemEvent::Ussd { id, result } => {
                self.ussd_answer(id, result);
                Ok(())
            }
            ModemEvent::Start { id, permit } => {
                let entry = self.journal.state.jobs.get_mut(&id);
                let may = match entry {
                    Some(entry) if entry.state == Local::Committed => {
                        entry.state = Local::Sending;
                        true
                    }
                    _ => false,
                };
                if may {
                    // `sending` is on disk before the modem gets its PDU (§10.5).
                    self.journal.save()?;
                }
                let _ = permit.send(may);
                Ok(())
            }
            ModemEvent::Sent {
                id,
                parts,
                references,
            } => {
                let at = format_ms(self.hub_now(now_ms));
                let Some(entry) = self.journal.state.jobs.get_mut(&id) else {
                    return Ok(());
                };
                entry.state = Local::Outcome;
                entry.outcome = Some(Outcome::Sent {
                    parts,
                    at: at.clone(),
                });
                // A modem that gives no references (a HiLink stick) gives no reports either.
                if references.is_empty() {
                    entry.job.delivery_report = false;
                }
                entry.references = references;
                self.dispatched.remove(&id);
                self.report(DeviceFrame::Sent(Sent {
                    id,
                    parts,
                    at: Some(at),
                }));
                self.journal.save()
            }
            ModemEvent::Failed {
                id,
                code,
                temporary,
                reason,
            } => {
                self.record_failure(&id, &code, temporary, reason);
                self.journal.save()
            }
            ModemEvent::Report {
                slot,
                reference,
                recipient,
                class,
                detail,
            } => self.status_report(slot, reference, &recipient, class, detail, now_ms),
            ModemEvent::Incoming {
                slot,
                key,
                from,
                text,
                received_at,
                stored,
            } => {
                let id = key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                self.report(DeviceFrame::Incoming(Incoming {
                    id,
                    from,
                    text,
                    sim_slot: Some(slot),
                    received_at,
                }));
                self.journal.save()?;
                let _ = stored.send(());
                Ok(())
            }
            ModemEvent::Status { slot, sim, status } => {
                if let Some(it) = self.sims.get_mut(usize::from(slot)) {
                    let sim = SimInfo { slot, ..sim };
                    if it.0 != sim || it.1 != status {
                        *it = (sim, status);
                        self.status_changed = true;
                    }
                }
                Ok(())
            }
        }
    }

    /// A status report: matched by slot, TP-MR and recipient to a sent job awaiting it.
    fn status_report(
        &mut self,
        slot: u8,
        reference: u8,
        recipient: &str,
        class: StatusClass,
        detail: String,
        now_ms: i64,
    ) -> io::Result<()> {
        if class == StatusClass::StillTrying {
            return Ok(());
        }
        let found = self.journal.state.jobs.iter().find(|(_, it)| {
            it.slot == slot
                && it.job.delivery_report
                && !it.delivery_done
                && matches!(it.outcome, Some(Outcome::Sent { .. }))
                && it.references.contains(&reference)
                && !it.delivered.contains(&reference)
                && same_number(&it.job.to, recipient)
        });
        let Some((id, _)) = found else {
            tracing::debug!(reference, %recipient, "status report for no awaited job");
            return Ok(());
        };
        let id = id.clone();
        let at = format_ms(self.hub_now(now_ms));
        let entry = self.journal.state.jobs.get_mut(&id).expect("found above");
        let frame = if class == StatusClass::Delivered {
            entry.delivered.push(reference);
            if entry.delivered.len() < entry.references.len() {
                None
            } else {
                entry.delivery_done = true;
                Some(DeviceFrame::Delivered(Delivered { id, at: Some(at) }))
            }
        } else {
            entry.delivery_done = true;
            Some(DeviceFrame::Failed(Failed {
                id,
                code: "delivery_failed".into(),
                temporary: Some(false),
                reason: Some(detail),
            }))
        };
        if let Some(frame) = frame {
            self.report(frame);
        }
        self.journal.save()
    }
}

/// The reports of a known outcome.
fn outcome_frames(id: &str, outcome: &Outcome, delivered: bool) -> Vec<DeviceFrame> {
    match outcome {
        Outcome::Sent { parts, at } => {
            let mut frames = vec![DeviceFrame::Sent(Sent {
                id: id.to_string(),
                parts: *parts,
                at: Some(at.clone()),
            })];
            if delivered {
                frames.push(DeviceFrame::Delivered(Delivered {
                    id: id.to_string(),
                    at: None,
                }));
            }
            frames
        }
        Outcome::Failed {
            code,
            temporary,
            reason,
        } => vec![DeviceFrame::Failed(Failed {
            id: id.to_string(),
            code: code.clone(),
            temporary: Some(*temporary),
            reason: reason.clone(),
        })],
    }
}

/// Whether two numbers are the same (a report may drop the `+` or the country code).
fn same_number(a: &str, b: &str) -> bool {
    let digits = |it: &str| it.chars().filter(char::is_ascii_digit).collect::<String>();
    let (a, b) = (digits(a), digits(b));
    let tail = a.len().min(b.len()).min(9);
    tail > 0 && a[a.len() - tail..] == b[b.len() - tail..]
}

/// RFC 3339 in UTC with milliseconds.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|it| it.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
