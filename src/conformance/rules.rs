//! The rules of the spec a conformance run drives a worker through, one function each, in
//! the order they run, and the rules judged on the whole run's transcript at the end.
//!
//! Each rule names its section of `android-client-spec/README.md` and says, pass or fail,
//! what the worker did. A rule only sees the socket: it judges frames, never the radio
//! (a worker that sends an SMS twice but reports it once cannot be caught here; its own
//! tests must).

use std::time::Duration;

use smshub_protocol::device::{DeviceFrame, HeldPhase, HubFrame, JobIds, Revoke, SendJob};
use tokio::time::Instant;

use super::session::{Door, Got, Held, Ledger, Server, Session, Transcript, brief, report_id};

/// A rule as the report shows it.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub key: &'static str,
    pub section: &'static str,
    pub title: &'static str,
}

/// A rule's result: what the worker did, and whether that is what the spec asks.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub section: &'static str,
    pub title: &'static str,
    pub pass: bool,
    pub did: String,
}

/// How long the run waits, and what the hub announces.
#[derive(Debug, Clone)]
pub struct Timing {
    pub heartbeat_s: u32,
    /// How long an answer may take.
    pub patience: Duration,
    /// How long a reconnect may take.
    pub reconnect: Duration,
    /// How long the hub watches for something that must not happen.
    pub quiet: Duration,
}

/// The run's state: the server, the open session, what the hub remembers.
pub struct Ctx {
    server: Server,
    door: Door,
    pub timing: Timing,
    ledger: Ledger,
    pub transcript: Transcript,
    session: Option<Session>,
    sessions: usize,
    /// The last hello's `max_in_flight`.
    max_in_flight: u32,
    /// The last hello's first SIM slot, given as `sim_slot` in offers.
    sim_slot: Option<u8>,
    /// A job sent and acknowledged by the basic rule, offered again in a later session.
    finished: Option<String>,
    /// A job whose `sent` was acknowledged in the last session (for `acked-report-forgotten`).
    acked_earlier: Option<String>,
}

type Judged = Result<String, String>;

impl Ctx {
    pub fn new(server: Server, door: Door, timing: Timing) -> Ctx {
        Ctx {
            server,
            door,
            timing,
            ledger: Ledger::default(),
            transcript: Transcript::default(),
            session: None,
            sessions: 0,
            max_in_flight: 4,
            sim_slot: None,
            finished: None,
            acked_earlier: None,
        }
    }

    /// Waits for the worker's next session and opens it.
    async fn connect(&mut self, wait: Duration) -> Result<(), String> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(ws) = self.server.next_socket(left).await else {
                return Err(format!(
                    "the worker did not connect within {} s",
                    wait.as_secs()
                ));
            };
            self.sessions += 1;
            match Session::open(
                ws,
                self.sessions,
                &self.door.device_id,
                self.timing.heartbeat_s,
                &mut self.ledger,
                &mut self.transcript,
                self.timing.patience,
            )
            .await
            {
                Ok(session) => {
                    self.max_in_flight = session.hello.capabilities.max_in_flight;
                    self.sim_slot = session.hello.sims.first().map(|it| it.slot);
                    self.session = Some(session);
                    return Ok(());
                }
                Err(why) => {
                    tracing::info!("{why}");
                    if Instant::now() >= deadline {
                        return Err(why);
                    }
                }
            }
        }
    }

    /// The open session, or the next one the worker opens.
    async fn live(&mut self) -> Result<&mut Session, String> {
        if self.session.is_none() {
            self.connect(self.timing.reconnect).await?;
        }
        self.session
            .as_mut()
            .ok_or_else(|| "no session".to_string())
    }

    /// Sends a frame on the open session (opening one first if needed).
    async fn send(&mut self, frame: &HubFrame) -> Result<(), String> {
        if let HubFrame::Send(job) = frame {
            self.ledger
                .jobs
                .entry(job.id.clone())
                .or_insert(Held::Offered);
        }
        if self.live().await?.send(frame).await {
            Ok(())
        } else {
            self.session = None;
            Err("the socket was closed".into())
        }
    }

    /// The next thing the worker did on the open session within `wait`; a close ends it.
    async fn next(&mut self, wait: Duration) -> Option<Got> {
        let session = self.session.as_mut()?;
        let got = session.next(wait, &mut self.transcript).await;
        if let Some(Got::Frame(DeviceFrame::Hello(_))) = &got {
            self.transcript.second_hellos += 1;
        }
        if matches!(got, Some(Got::Closed(_))) {
            self.session = None;
        }
        got
    }

    /// Waits for a frame `wanted` accepts; other frames are noted in `seen`.
    async fn expect(
        &mut self,
        what: &str,
        seen: &mut Vec<String>,
        mut wanted: impl FnMut(&DeviceFrame) -> bool,
    ) -> Result<DeviceFrame, String> {
        let deadline = Instant::now() + self.timing.patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(Got::Frame(frame)) if wanted(&frame) => return Ok(frame),
                Some(Got::Frame(frame)) => seen.push(brief(&frame)),
                Some(Got::Invalid(text)) => seen.push(format!("invalid frame {text:.80}")),
                Some(Got::Closed(code)) => {
                    return Err(format!(
                        "the worker closed the session ({}) while the hub waited for {what}{}",
                        close_text(code),
                        also(seen)
                    ));
                }
                None => {
                    return Err(format!(
                        "no {what} within {} s{}",
                        self.timing.patience.as_secs(),
                        also(seen)
                    ));
                }
            }
        }
    }

    /// Everything the worker did for `span` (a close ends it early).
    async fn watch(&mut self, span: Duration) -> Vec<Got> {
        let deadline = Instant::now() + span;
        let mut got = Vec::new();
        while self.session.is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.next(left).await {
                Some(it) => got.push(it),
                None => break,
            }
        }
        got
    }

    /// An offer of a fresh job (or of `id` again).
    fn offer(&self, id: &str, text: &str) -> SendJob {
        let valid_until = chrono::Utc::now() + chrono::Duration::minutes(10);
        SendJob {
            id: id.to_string(),
            to: "+15555550100".into(),
            text: format!("smshub conformance: {text}"),
            sim_slot: self.sim_slot,
            delivery_report: false,
            valid_until: Some(valid_until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            parts: 1,
        }
    }

    /// Offers a fresh job and waits for the worker's `accepted`.
    async fn offer_accepted(
        &mut self,
        text: &str,
        seen: &mut Vec<String>,
    ) -> Result<String, String> {
        let id = uuid::Uuid::new_v4().to_string();
        let job = self.offer(&id, text);
        self.send(&HubFrame::Send(job)).await?;
        let answer = self
            .expect("an answer to the offer", seen, |frame| names(frame, &id))
            .await?;
        match answer {
            DeviceFrame::Accepted(_) => Ok(id),
            other => Err(format!("the offer was answered {}", brief(&other))),
        }
    }

    /// Commits `id` (the hub has recorded the worker's ownership).
    async fn commit(&mut self, id: &str) -> Result<(), String> {
        self.ledger.jobs.insert(id.to_string(), Held::Owned);
        self.send(&HubFrame::Commit(JobIds {
            ids: vec![id.to_string()],
        }))
        .await
    }

    /// Drops the connection without a close frame.
    fn drop_connection(&mut self) {
        if let Some(session) = self.session.take() {
            session.drop_connection();
        }
    }

    fn hello_jobs(&self) -> Option<Vec<(String, HeldPhase)>> {
        let session = self.session.as_ref()?;
        Some(
            session
                .hello
                .jobs
                .iter()
                .flatten()
                .map(|it| (it.id.clone(), it.phase))
                .collect(),
        )
    }

    /// Reports (`sent`, `failed`) about `id` in what the worker did.
    fn reports_about<'a>(got: &'a [Got], id: &str) -> Vec<&'a DeviceFrame> {
        got.iter()
            .filter_map(|it| match it {
                Got::Frame(frame @ (DeviceFrame::Sent(_) | DeviceFrame::Failed(_))) => {
                    (report_id(frame) == Some(id)).then_some(frame)
                }
                _ => None,
            })
            .collect()
    }
}

/// Does `frame` (an answer or a report) name `id`?
fn names(frame: &DeviceFrame, id: &str) -> bool {
    match frame {
        DeviceFrame::Accepted(it) => it.ids.iter().any(|it| it == id),
        DeviceFrame::Rejected(it) => it.ids.iter().any(|it| it == id),
        other => report_id(other) == Some(id),
    }
}

fn is_report_of(frame: &DeviceFrame, id: &str) -> bool {
    matches!(frame, DeviceFrame::Sent(_) | DeviceFrame::Failed(_)) && report_id(frame) == Some(id)
}

fn close_text(code: Option<u16>) -> String {
    code.map_or("no close code".to_string(), |it| format!("close {it}"))
}

fn also(seen: &[String]) -> String {
    if seen.is_empty() {
        String::new()
    } else {
        format!("; meanwhile: {}", seen.join(", "))
    }
}

fn ms(since: Instant) -> u128 {
    since.elapsed().as_millis()
}

/// Every rule, in the order of the report.
pub const RULES: &[Rule] = &[
    Rule {
        key: "offer-accept-commit-send",
        section: "5.3, 5.5",
        title: "an offer is accepted, and sent after commit",
    },
    Rule {
        key: "commit-unknown-job",
        section: "5.4",
        title: "a commit for a job it does not hold is rejected unknown_job",
    },
    Rule {
        key: "duplicate-offer",
        section: "5.7",
        title: "the same offer twice: accepted, sent once",
    },
    Rule {
        key: "no-send-before-commit",
        section: "5.1, 10.4",
        title: "nothing is sent before commit",
    },
    Rule {
        key: "revoke-before-commit",
        section: "5.4, 10.8",
        title: "a revoked job is dropped and confirmed rejected revoked",
    },
    Rule {
        key: "expired-offer",
        section: "5.3, 5.5, 10.7",
        title: "a job past valid_until is never sent",
    },
    Rule {
        key: "flow-control",
        section: "6, 10.13",
        title: "an offer beyond max_in_flight is rejected busy",
    },
    Rule {
        key: "unknown-fields-and-frames",
        section: "10.16, 11",
        title: "unknown fields, frame types and ack kinds are ignored",
    },
    Rule {
        key: "malformed-frames",
        section: "2.3",
        title: "malformed and binary frames from the hub do not break the worker",
    },
    Rule {
        key: "oversized-frame",
        section: "2.3",
        title: "a frame over 64 KiB does not break the worker",
    },
    Rule {
        key: "heartbeat-when-idle",
        section: "4.3",
        title: "an idle worker sends heartbeat every heartbeat_s",
    },
    Rule {
        key: "dead-link",
        section: "4.3, 3",
        title: "a silent hub is declared dead within 2 × heartbeat_s, then reconnected",
    },
    Rule {
        key: "offer-after-outcome",
        section: "5.7, 10.6",
        title: "a job sent in an earlier session, offered again: accepted, outcome re-reported, not sent",
    },
    Rule {
        key: "drop-before-accept",
        section: "5.1, 5.8",
        title: "connection lost right after an offer: never sent, revoke confirmed",
    },
    Rule {
        key: "resume-accepted",
        section: "5.1, 5.8.1, 5.8.2",
        title: "resume with a job accepted, not committed: listed accepted, sent after commit",
    },
    Rule {
        key: "resume-committed",
        section: "5.8.1, 5.8.3",
        title: "resume with a job committed: listed committed, its outcome reported",
    },
    Rule {
        key: "resume-unacked-report",
        section: "5.6, 5.8.1, 5.8.5",
        title: "resume with a report not acknowledged: listed committed, report re-sent",
    },
    Rule {
        key: "hub-restart",
        section: "2.5, 3, 5.8",
        title: "hub restart (close 1001, refused connections): reconnect and resume",
    },
    Rule {
        key: "acked-report-forgotten",
        section: "5.6, 5.8.1",
        title: "an acknowledged report is neither listed nor re-sent",
    },
    Rule {
        key: "hello-first",
        section: "4.1, 5.8.1, 10.1",
        title: "every session opens with one hello (protocol 1, jobs listed)",
    },
    Rule {
        key: "wait-for-welcome",
        section: "10.2",
        title: "nothing is sent between hello and welcome",
    },
    Rule {
        key: "status-after-welcome",
        section: "4.2",
        title: "status is the first frame after welcome",
    },
    Rule {
        key: "report-format",
        section: "8.1, 9.1",
        title: "reports are well formed (failed carries temporary)",
    },
];

/// Runs every rule against the worker that connects, in order.
pub async fn run_all(ctx: &mut Ctx) -> Vec<Finding> {
    let mut results: Vec<Judged> = Vec::new();
    // The first session: the worker connects when it is ready.
    if let Err(why) = ctx
        .connect(ctx.timing.reconnect.max(Duration::from_secs(60)))
        .await
    {
        return RULES
            .iter()
            .map(|rule| finding(rule, Err(why.clone())))
            .collect();
    }
    results.push(offer_accept_commit_send(ctx).await);
    results.push(commit_unknown_job(ctx).await);
    results.push(duplicate_offer(ctx).await);
    results.push(no_send_before_commit(ctx).await);
    results.push(revoke_before_commit(ctx).await);
    results.push(expired_offer(ctx).await);
    results.push(flow_control(ctx).await);
    results.push(unknown_fields_and_frames(ctx).await);
    results.push(malformed_frames(ctx).await);
    results.push(oversized_frame(ctx).await);
    results.push(heartbeat_when_idle(ctx).await);
    results.push(dead_link(ctx).await);
    results.push(offer_after_outcome(ctx).await);
    results.push(drop_before_accept(ctx).await);
    results.push(resume_accepted(ctx).await);
    results.push(resume_committed(ctx).await);
    results.push(resume_unacked_report(ctx).await);
    let (restart, forgotten) = hub_restart(ctx).await;
    results.push(restart);
    results.push(forgotten);
    if let Some(session) = ctx.session.take() {
        session.close(1000, "conformance run finished").await;
    }
    results.push(hello_first(&ctx.transcript));
    results.push(wait_for_welcome(&ctx.transcript));
    results.push(status_after_welcome(&ctx.transcript));
    results.push(report_format(&ctx.transcript));
    RULES
        .iter()
        .zip(results)
        .map(|(rule, result)| finding(rule, result))
        .collect()
}

fn finding(rule: &Rule, result: Judged) -> Finding {
    let (pass, did) = match result {
        Ok(did) => (true, did),
        Err(did) => (false, did),
    };
    Finding {
        rule: rule.key,
        section: rule.section,
        title: rule.title,
        pass,
        did,
    }
}

async fn offer_accept_commit_send(ctx: &mut Ctx) -> Judged {
    let mut seen = Vec::new();
    let offered = Instant::now();
    let id = ctx.offer_accepted("basic", &mut seen).await?;
    let accepted_ms = ms(offered);
    ctx.commit(&id).await?;
    let committed = Instant::now();
    let report = ctx
        .expect("a sent or failed report", &mut seen, |it| {
            is_report_of(it, &id)
        })
        .await?;
    ctx.ledger.jobs.insert(id.clone(), Held::Done);
    match report {
        DeviceFrame::Sent(_) => {
            ctx.finished = Some(id);
            Ok(format!(
                "accepted {accepted_ms} ms after the offer; sent reported {} ms after commit",
                ms(committed)
            ))
        }
        other => Ok(format!(
            "accepted {accepted_ms} ms after the offer; after commit reported {} (the radio failed; the protocol was followed)",
            brief(&other)
        )),
    }
}

async fn commit_unknown_job(ctx: &mut Ctx) -> Judged {
    let mut seen = Vec::new();
    let id = uuid::Uuid::new_v4().to_string();
    ctx.send(&HubFrame::Commit(JobIds {
        ids: vec![id.clone()],
    }))
    .await?;
    let answer = ctx
        .expect("rejected unknown_job", &mut seen, |it| names(it, &id))
        .await?;
    match &answer {
        DeviceFrame::Rejected(it) if it.reason.as_deref() == Some("unknown_job") => {
            Ok("answered rejected unknown_job".into())
        }
        other => Err(format!("answered {}", brief(other))),
    }
}

async fn duplicate_offer(ctx: &mut Ctx) -> Judged {
    let mut seen = Vec::new();
    let id = uuid::Uuid::new_v4().to_string();
    let job = ctx.offer(&id, "duplicate offer");
    ctx.send(&HubFrame::Send(job.clone())).await?;
    ctx.send(&HubFrame::Send(job)).await?;
    let first = ctx
        .expect("an answer to the offer", &mut seen, |it| names(it, &id))
        .await?;
    if !matches!(first, DeviceFrame::Accepted(_)) {
        return Err(format!("answered {}", brief(&first)));
    }
    // The second answer may come before the commit or not at all (folded into the first).
    let mut answers = 1;
    let early = ctx.watch(Duration::from_millis(300)).await;
    for got in &early {
        if let Got::Frame(frame) = got {
            match frame {
                DeviceFrame::Accepted(it) if it.ids.contains(&id) => answers += 1,
                DeviceFrame::Rejected(it) if it.ids.contains(&id) => {
                    return Err(format!("the repeated offer was answered {}", brief(frame)));
                }
                _ => {}
            }
        }
    }
    ctx.commit(&id).await?;
    let report = ctx
        .expect("a sent or failed report", &mut seen, |it| {
            is_report_of(it, &id)
        })
        .await?;
    let later = ctx.watch(ctx.timing.quiet).await;
    let more = Ctx::reports_about(&later, &id).len() + Ctx::reports_about(&early, &id).len();
    ctx.ledger.jobs.insert(id, Held::Done);
    if more > 0 {
        return Err(format!(
            "{} reports for one job offered twice and committed once",
            more + 1
        ));
    }
    Ok(format!(
        "answered accepted {answers} time(s), then one report: {}",
        brief(&report)
    ))
}

async fn offer_after_outcome(ctx: &mut Ctx) -> Judged {
    // Run in a later session than the job's report: within one session the spec lets the
    // worker skip a re-report it already sent (5.7).
    let Some(id) = ctx.finished.clone() else {
        return Err("not run: the basic job was not sent".into());
    };
    let mut seen = Vec::new();
    let job = ctx.offer(&id, "basic");
    ctx.send(&HubFrame::Send(job)).await?;
    let answer = ctx
        .expect("an answer to the offer", &mut seen, |it| names(it, &id))
        .await?;
    if !matches!(answer, DeviceFrame::Accepted(_)) {
        return Err(format!(
            "a job it already sent, offered again, was answered {}",
            brief(&answer)
        ));
    }
    ctx.commit(&id).await?;
    let report = ctx
        .expect("the known outcome re-reported", &mut seen, |it| {
            is_report_of(it, &id)
        })
        .await?;
    let later = ctx.watch(ctx.timing.quiet).await;
    ctx.ledger.jobs.insert(id.clone(), Held::Done);
    match report {
        DeviceFrame::Sent(_) if Ctx::reports_about(&later, &id).is_empty() => {
            Ok("answered accepted; on commit re-reported sent once".into())
        }
        DeviceFrame::Sent(_) => Err("re-reported sent more than once".into()),
        other => Err(format!(
            "the known outcome was sent, but it reported {}",
            brief(&other)
        )),
    }
}

async fn no_send_before_commit(ctx: &mut Ctx) -> Judged {
    let mut seen = Vec::new();
    let id = ctx.offer_accepted("held without commit", &mut seen).await?;
    let got = ctx.watch(ctx.timing.quiet).await;
    let early = Ctx::reports_about(&got, &id)
        .into_iter()
        .map(brief)
        .collect::<Vec<_>>();
    // Clean up: take the job back.
    ctx.ledger.jobs.insert(id.clone(), Held::Gone);
    ctx.send(&HubFrame::Revoke(Revoke {
        ids: vec![id.clone()],
        reason: Some("cancelled".into()),
    }))
    .await?;
    let _ = ctx.watch(Duration::from_millis(300)).await;
    if early.is_empty() {
        Ok(format!(
            "accepted, then nothing about the job for {} ms without commit",
            ctx.timing.quiet.as_millis()
        ))
    } else {
        Err(format!(
            "reported {} for a job that was never committed: it sent before commit",
            early.join(", ")
        ))
    }
}

async fn revoke_before_commit(ctx: &mut Ctx) -> Judged {
    let mut seen = Vec::new();
    let id = ctx
        .offer_accepted("revoked before commit", &mut seen)
        .await?;
    ctx.ledger.jobs.insert(id.clone(), Held::Gone);
    ctx.send(&HubFrame::Revoke(Revoke {
        ids: vec![id.clone()],
        reason: Some("cancelled".into()),
    }))
    .await?;
    let answer = ctx
        .expect("rejected revoked", &mut seen, |it| names(it, &id))
        .await?;
    let later = ctx.watch(ctx.timing.quiet).await;
    let reports = Ctx::reports_about(&later, &id);
    match &answer {
        DeviceFrame::Rejected(it) if it.reason.as_deref() == Some("revoked") => {
            if reports.is_empty() {
                Ok("confirmed rejected revoked; nothing sent".into())
            } else {
                Err(format!(
                    "confirmed the revoke but then reported {}",
                    brief(reports[0])
                ))
            }
        }
        other => Err(format!("answered the revoke with {}", brief(other))),
    }
}

async fn expired_offer(ctx: &mut Ctx) -> Judged {
    let mut seen = Vec::new();
    let id = uuid::Uuid::new_v4().to_string();
    let mut job = ctx.offer(&id, "expired");
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    job.valid_until = Some(past.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    ctx.send(&HubFrame::Send(job)).await?;
    let answer = ctx
        .expect("an answer to the offer", &mut seen, |it| names(it, &id))
        .await?;
    let verdict = match &answer {
        DeviceFrame::Rejected(it) if it.reason.as_deref() == Some("expired") => {
            Ok("rejected expired".to_string())
        }
        DeviceFrame::Rejected(it) => Err(format!(
            "rejected with {:?}, not expired",
            it.reason.as_deref().unwrap_or("no reason")
        )),
        DeviceFrame::Accepted(_) => {
            ctx.commit(&id).await?;
            let report = ctx
                .expect("failed expired", &mut seen, |it| is_report_of(it, &id))
                .await?;
            match report {
                DeviceFrame::Failed(it) if it.code == "expired" => {
                    Ok("accepted, then on commit reported failed expired".to_string())
                }
                other => Err(format!(
                    "accepted a job past valid_until and reported {}",
                    brief(&other)
                )),
            }
        }
        other => Err(format!("answered {}", brief(other))),
    };
    ctx.ledger.jobs.insert(id, Held::Done);
    verdict
}

async fn flow_control(ctx: &mut Ctx) -> Judged {
    let mut seen = Vec::new();
    ctx.live().await?;
    let max = ctx.max_in_flight;
    if max == 0 {
        return Ok("max_in_flight 0: a receive-only worker; no offers made".into());
    }
    if max > 100 {
        return Ok(format!("max_in_flight {max}: not tried (over 100)"));
    }
    let ids: Vec<String> = (0..=max)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    for id in &ids {
        let job = ctx.offer(id, "flow control");
        ctx.send(&HubFrame::Send(job)).await?;
    }
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    while accepted.len() + rejected.len() < ids.len() {
        let answer = ctx
            .expect("answers to every offer", &mut seen, |it| {
                matches!(it, DeviceFrame::Accepted(_) | DeviceFrame::Rejected(_))
            })
            .await?;
        match answer {
            DeviceFrame::Accepted(it) => {
                accepted.extend(it.ids.into_iter().filter(|it| ids.contains(it)))
            }
            DeviceFrame::Rejected(it) => {
                let reason = it.reason.unwrap_or_default();
                rejected.extend(
                    it.ids
                        .into_iter()
                        .filter(|it| ids.contains(it))
                        .map(|id| (id, reason.clone())),
                );
            }
            _ => {}
        }
    }
    // Take them all back.
    for id in &ids {
        ctx.ledger.jobs.insert(id.clone(), Held::Gone);
    }
    ctx.send(&HubFrame::Revoke(Revoke {
        ids: accepted.clone(),
        reason: Some("cancelled".into()),
    }))
    .await?;
    let _ = ctx.watch(Duration::from_millis(500)).await;
    let busy = rejected
        .iter()
        .filter(|(_, reason)| reason == "busy")
        .count();
    let did = format!(
        "max_in_flight {max}; {} offers: {} accepted, {} rejected ({})",
        ids.len(),
        accepted.len(),
        rejected.len(),
        rejected
            .iter()
            .map(|(_, reason)| reason.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if accepted.len() as u32 <= max && busy >= 1 {
        Ok(did)
    } else {
        Err(did)
    }
}

async fn unknown_fields_and_frames(ctx: &mut Ctx) -> Judged {
    let mut seen = Vec::new();
    let session = ctx.live().await?;
    let number = session.number;
    session
        .send_text(r#"{"type":"x_future_frame","x_field":{"a":1}}"#.to_string())
        .await;
    session
        .send_text(
            r#"{"type":"ack","reports":[{"id":"x-unknown","report":"x_future_kind"}],"x_field":1}"#
                .to_string(),
        )
        .await;
    let id = uuid::Uuid::new_v4().to_string();
    let mut job = serde_json::to_value(HubFrame::Send(ctx.offer(&id, "unknown fields")))
        .map_err(|err| err.to_string())?;
    job["x_future_field"] = serde_json::json!({"nested": [1, 2, 3]});
    ctx.ledger.jobs.insert(id.clone(), Held::Offered);
    ctx.live().await?.send_text(job.to_string()).await;
    let answer = ctx
        .expect("an answer to the offer", &mut seen, |it| names(it, &id))
        .await?;
    ctx.ledger.jobs.insert(id.clone(), Held::Gone);
    ctx.send(&HubFrame::Revoke(Revoke {
        ids: vec![id.clone()],
        reason: Some("cancelled".into()),
    }))
    .await?;
    let _ = ctx.watch(Duration::from_millis(300)).await;
    let same = ctx.session.as_ref().is_some_and(|it| it.number == number);
    match answer {
        DeviceFrame::Accepted(_) if same => Ok(
            "ignored an unknown frame type and an ack of an unknown kind; accepted an offer with an unknown field".into(),
        ),
        DeviceFrame::Accepted(_) => Err("accepted, but the session ended".into()),
        other => Err(format!("the offer with an unknown field was answered {}", brief(&other))),
    }
}

/// After something that may have broken the session: the worker answers a commit of an
/// unknown job, on this session or a new one.
async fn still_works(ctx: &mut Ctx, number: usize) -> Judged {
    let mut seen = Vec::new();
    let id = uuid::Uuid::new_v4().to_string();
    // A close the worker made shows up here; then it must come back.
    let closed = ctx.session.is_none()
        || matches!(
            ctx.watch(Duration::from_millis(300)).await.last(),
            Some(Got::Closed(_))
        );
    let mut did = if closed {
        "closed the session".to_string()
    } else {
        "kept the session".to_string()
    };
    ctx.send(&HubFrame::Commit(JobIds {
        ids: vec![id.clone()],
    }))
    .await?;
    let answer = ctx
        .expect("rejected unknown_job", &mut seen, |it| names(it, &id))
        .await?;
    let now = ctx.session.as_ref().map_or(0, |it| it.number);
    if now != number && !closed {
        did = "reconnected".to_string();
    } else if now != number {
        did.push_str(" and reconnected");
    }
    match answer {
        DeviceFrame::Rejected(it) if it.reason.as_deref() == Some("unknown_job") => {
            Ok(format!("{did}; then answered a commit as the spec says"))
        }
        other => Err(format!(
            "{did}; then answered a commit of an unknown job with {}",
            brief(&other)
        )),
    }
}

async fn malformed_frames(ctx: &mut Ctx) -> Judged {
    let session = ctx.live().await?;
    let number = session.number;
    session.send_text("this is not JSON".to_string()).await;
    session.send_text(r#"{"no_type":true}"#.to_string()).await;
    session.send_text("[1,2,3]".to_string()).await;
    session
        .send_text(r#"{"type":"commit","ids":"not a list"}"#.to_string())
        .await;
    session.send_binary(vec![0, 1, 2, 3]).await;
    still_works(ctx, number).await
}

async fn oversized_frame(ctx: &mut Ctx) -> Judged {
    let session = ctx.live().await?;
    let number = session.number;
    let pad = "a".repeat(70 * 1024);
    session
        .send_text(format!(r#"{{"type":"x_padding","pad":"{pad}"}}"#))
        .await;
    still_works(ctx, number).await
}

async fn heartbeat_when_idle(ctx: &mut Ctx) -> Judged {
    let heartbeat = Duration::from_secs(u64::from(ctx.timing.heartbeat_s));
    let slack = (heartbeat / 2).max(Duration::from_secs(1));
    let number = ctx.live().await?.number;
    let start = Instant::now();
    let _ = ctx.watch(heartbeat * 2 + slack).await;
    let Some(session) = ctx.session.as_ref().filter(|it| it.number == number) else {
        return Err("the session ended while the hub was idle".into());
    };
    let beats: Vec<Instant> = session
        .heartbeats
        .iter()
        .copied()
        .filter(|it| *it >= start)
        .collect();
    let mut last = start;
    let mut longest = Duration::ZERO;
    for beat in &beats {
        longest = longest.max(beat.duration_since(last));
        last = *beat;
    }
    longest = longest.max(Instant::now().duration_since(last));
    let did = format!(
        "{} heartbeats in {} ms of silence (heartbeat_s {}); longest gap {} ms",
        beats.len(),
        start.elapsed().as_millis(),
        ctx.timing.heartbeat_s,
        longest.as_millis()
    );
    if !beats.is_empty() && longest <= heartbeat + slack {
        Ok(did)
    } else {
        Err(did)
    }
}

async fn dead_link(ctx: &mut Ctx) -> Judged {
    let heartbeat = Duration::from_secs(u64::from(ctx.timing.heartbeat_s));
    let slack = (heartbeat / 2).max(Duration::from_secs(1));
    let session = ctx.live().await?;
    session.answer_heartbeats = false;
    let silent_since = session.last_to_worker;
    let limit = heartbeat * 2 + slack;
    let mut closed = None;
    while ctx.session.is_some() {
        let left = (silent_since + limit + slack).saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Some(Got::Closed(code)) = ctx.next(left).await {
            closed = Some((silent_since.elapsed(), code));
        }
    }
    let Some((after, code)) = closed else {
        ctx.drop_connection();
        return Err(format!(
            "still connected {} ms after the hub fell silent (the limit is 2 × heartbeat_s = {} s)",
            silent_since.elapsed().as_millis(),
            2 * ctx.timing.heartbeat_s
        ));
    };
    let back = Instant::now();
    ctx.connect(ctx.timing.reconnect).await?;
    let did = format!(
        "closed the session ({}) {} ms after the hub fell silent; reconnected {} ms later",
        close_text(code),
        after.as_millis(),
        ms(back)
    );
    if after <= limit { Ok(did) } else { Err(did) }
}

async fn drop_before_accept(ctx: &mut Ctx) -> Judged {
    let mut seen = Vec::new();
    let id = uuid::Uuid::new_v4().to_string();
    let job = ctx.offer(&id, "dropped before accept");
    ctx.send(&HubFrame::Send(job)).await?;
    ctx.drop_connection();
    ctx.ledger.jobs.insert(id.clone(), Held::Offered);
    ctx.connect(ctx.timing.reconnect).await?;
    let listed = ctx
        .hello_jobs()
        .unwrap_or_default()
        .into_iter()
        .find(|(it, _)| *it == id);
    let mut did = match &listed {
        None => "the new hello did not list the job".to_string(),
        Some((_, phase)) => format!("the new hello listed the job as {phase:?}"),
    };
    if let Some((_, HeldPhase::Committed)) = listed {
        return Err(format!("{did}, though it was never committed"));
    }
    if listed.is_some() {
        // The session's opening revoked it (5.8.2).
        let answer = ctx
            .expect("rejected revoked", &mut seen, |it| names(it, &id))
            .await?;
        match &answer {
            DeviceFrame::Rejected(it) if it.reason.as_deref() == Some("revoked") => {
                did.push_str("; the hub revoked it and the worker confirmed rejected revoked");
            }
            other => return Err(format!("{did}; the revoke was answered {}", brief(other))),
        }
    }
    let later = ctx.watch(ctx.timing.quiet).await;
    match Ctx::reports_about(&later, &id).first() {
        None => Ok(format!("{did}; nothing sent")),
        Some(report) => Err(format!("{did}; then reported {}", brief(report))),
    }
}

async fn resume_accepted(ctx: &mut Ctx) -> Judged {
    let mut seen = Vec::new();
    let id = ctx.offer_accepted("resumed accepted", &mut seen).await?;
    // The hub recorded the ownership, but the commit never reached the worker.
    ctx.ledger.jobs.insert(id.clone(), Held::Owned);
    ctx.drop_connection();
    ctx.connect(ctx.timing.reconnect).await?;
    let listed = ctx
        .hello_jobs()
        .unwrap_or_default()
        .into_iter()
        .find(|(it, _)| *it == id);
    match listed {
        Some((_, HeldPhase::Accepted)) => {}
        Some((_, phase)) => {
            return Err(format!(
                "the new hello listed the job as {phase:?}, though no commit reached the worker"
            ));
        }
        None => return Err("the new hello did not list the accepted job".into()),
    }
    // The opening answered commit (5.8.2).
    let report = ctx
        .expect("a sent or failed report", &mut seen, |it| {
            is_report_of(it, &id)
        })
        .await?;
    ctx.ledger.jobs.insert(id, Held::Done);
    Ok(format!(
        "the new hello listed it as accepted; after the hub's commit it reported {}",
        brief(&report)
    ))
}

async fn resume_committed(ctx: &mut Ctx) -> Judged {
    let mut seen = Vec::new();
    let id = ctx.offer_accepted("resumed committed", &mut seen).await?;
    ctx.commit(&id).await?;
    ctx.drop_connection();
    ctx.connect(ctx.timing.reconnect).await?;
    let listed = ctx
        .hello_jobs()
        .unwrap_or_default()
        .into_iter()
        .find(|(it, _)| *it == id);
    let did = match listed {
        Some((_, HeldPhase::Committed)) => "the new hello listed it as committed",
        Some((_, phase)) => {
            return Err(format!(
                "the new hello listed the committed job as {phase:?}"
            ));
        }
        None => {
            return Err(
                "the new hello did not list a committed job whose report was never acknowledged"
                    .into(),
            );
        }
    };
    let report = ctx
        .expect("its report", &mut seen, |it| is_report_of(it, &id))
        .await?;
    ctx.ledger.jobs.insert(id, Held::Done);
    Ok(format!("{did}; then reported {}", brief(&report)))
}

async fn resume_unacked_report(ctx: &mut Ctx) -> Judged {
    let mut seen = Vec::new();
    let id = ctx
        .offer_accepted("report not acknowledged", &mut seen)
        .await?;
    ctx.live().await?.auto_ack = false;
    ctx.commit(&id).await?;
    let first = ctx
        .expect("a sent or failed report", &mut seen, |it| {
            is_report_of(it, &id)
        })
        .await?;
    ctx.drop_connection();
    ctx.connect(ctx.timing.reconnect).await?;
    let listed = ctx
        .hello_jobs()
        .unwrap_or_default()
        .into_iter()
        .find(|(it, _)| *it == id);
    match listed {
        Some((_, HeldPhase::Committed)) => {}
        Some((_, phase)) => {
            return Err(format!(
                "reported {}, not acknowledged; the new hello listed it as {phase:?}",
                brief(&first)
            ));
        }
        None => {
            return Err(format!(
                "reported {}, not acknowledged; the new hello did not list it",
                brief(&first)
            ));
        }
    }
    let again = ctx
        .expect("the report sent again", &mut seen, |it| {
            is_report_of(it, &id)
        })
        .await?;
    ctx.ledger.jobs.insert(id.clone(), Held::Done);
    ctx.acked_earlier = Some(id);
    if std::mem::discriminant(&again) != std::mem::discriminant(&first) {
        return Err(format!(
            "first reported {}, then after the reconnect {}",
            brief(&first),
            brief(&again)
        ));
    }
    Ok(format!(
        "the new hello listed it as committed; after status it re-sent {}",
        brief(&again)
    ))
}

/// The hub goes away (close 1001, then connections refused for a while) and comes back.
/// Returns the results of `hub-restart` and `acked-report-forgotten`.
async fn hub_restart(ctx: &mut Ctx) -> (Judged, Judged) {
    let restart = hub_restart_resume(ctx).await;
    let forgotten = match &ctx.acked_earlier {
        None => Err("not run: no acknowledged report from the previous rule".to_string()),
        Some(_) if ctx.session.is_none() => {
            Err("not run: the worker did not come back after the restart".to_string())
        }
        Some(id) => {
            let id = id.clone();
            let listed = ctx
                .hello_jobs()
                .unwrap_or_default()
                .into_iter()
                .any(|(it, _)| it == id);
            let resent = ctx
                .transcript
                .reports
                .iter()
                .filter(|(session, frame)| {
                    Some(*session) == ctx.session.as_ref().map(|it| it.number)
                        && is_report_of(frame, &id)
                })
                .count();
            if listed {
                Err("a job whose final report was acknowledged was listed in hello".into())
            } else if resent > 0 {
                Err("a report that was acknowledged was sent again".into())
            } else {
                Ok("neither listed nor re-sent in the next session".into())
            }
        }
    };
    (restart, forgotten)
}

async fn hub_restart_resume(ctx: &mut Ctx) -> Judged {
    let mut seen = Vec::new();
    let id = ctx
        .offer_accepted("held across a hub restart", &mut seen)
        .await?;
    ctx.ledger.jobs.insert(id.clone(), Held::Owned);
    let away = Duration::from_secs(3);
    if let Some(session) = ctx.session.take() {
        ctx.server.stop_listening();
        session.close(1001, "hub restarting").await;
    }
    tokio::time::sleep(away).await;
    ctx.server.drain();
    ctx.server
        .listen_again()
        .await
        .map_err(|err| format!("the conformance hub could not listen again: {err}"))?;
    let back = Instant::now();
    ctx.connect(ctx.timing.reconnect).await?;
    let after = ms(back);
    let listed = ctx
        .hello_jobs()
        .unwrap_or_default()
        .into_iter()
        .find(|(it, _)| *it == id);
    if !matches!(listed, Some((_, HeldPhase::Accepted))) {
        return Err(format!(
            "reconnected {after} ms after the hub came back, but hello listed the held job as {:?}",
            listed.map(|it| it.1)
        ));
    }
    let report = ctx
        .expect("a sent or failed report", &mut seen, |it| {
            is_report_of(it, &id)
        })
        .await?;
    ctx.ledger.jobs.insert(id, Held::Done);
    Ok(format!(
        "reconnected {after} ms after the hub came back (away {} s); listed the job accepted, got commit, reported {}",
        away.as_secs(),
        brief(&report)
    ))
}

fn hello_first(transcript: &Transcript) -> Judged {
    let mut wrong = Vec::new();
    for opening in &transcript.openings {
        match &opening.hello {
            None => wrong.push(format!(
                "session {}: first frame {:.80}",
                opening.number, opening.first
            )),
            Some(hello) if hello.jobs.is_none() => wrong.push(format!(
                "session {}: hello without jobs (a worker with no journal)",
                opening.number
            )),
            Some(_) => {}
        }
    }
    if transcript.second_hellos > 0 {
        wrong.push(format!(
            "{} hello frames inside open sessions",
            transcript.second_hellos
        ));
    }
    if wrong.is_empty() {
        Ok(format!(
            "{} sessions, each opened by one hello with protocol 1 and jobs",
            transcript.openings.len()
        ))
    } else {
        Err(wrong.join("; "))
    }
}

fn wait_for_welcome(transcript: &Transcript) -> Judged {
    let early: Vec<String> = transcript
        .openings
        .iter()
        .filter(|it| !it.before_welcome.is_empty())
        .map(|it| {
            format!(
                "session {}: {:.80} before welcome",
                it.number, it.before_welcome[0]
            )
        })
        .collect();
    if early.is_empty() {
        Ok(format!(
            "in {} sessions nothing came in the 250 ms the hub held welcome back",
            transcript.openings.len()
        ))
    } else {
        Err(early.join("; "))
    }
}

fn status_after_welcome(transcript: &Transcript) -> Judged {
    let mut wrong = Vec::new();
    let mut checked = 0;
    for opening in transcript.openings.iter().filter(|it| it.hello.is_some()) {
        let Some(first) = &opening.after_welcome else {
            continue;
        };
        checked += 1;
        if !matches!(DeviceFrame::parse(first), Ok(DeviceFrame::Status(_))) {
            wrong.push(format!("session {}: {first:.80}", opening.number));
        }
    }
    if wrong.is_empty() && checked > 0 {
        Ok(format!(
            "{checked} sessions: status came first after welcome; {} status frames in all",
            transcript.statuses
        ))
    } else if checked == 0 {
        Err("no session got as far as a frame after welcome".into())
    } else {
        Err(format!("first frame after welcome: {}", wrong.join("; ")))
    }
}

fn report_format(transcript: &Transcript) -> Judged {
    let mut wrong = Vec::new();
    let mut notes = Vec::new();
    let mut count = 0;
    for (_, frame) in &transcript.reports {
        count += 1;
        match frame {
            DeviceFrame::Failed(it) if it.temporary.is_none() => {
                wrong.push(format!("failed without temporary: {}", brief(frame)));
            }
            DeviceFrame::Sent(it)
                if it.parts == 0
                    || it
                        .at
                        .as_deref()
                        .is_some_and(|at| chrono::DateTime::parse_from_rfc3339(at).is_err()) =>
            {
                wrong.push(format!("sent with bad parts or at: {}", brief(frame)));
            }
            DeviceFrame::Rejected(it) if it.reason.is_none() => {
                // A SHOULD (8.1): noted, not failed.
                notes.push(format!("rejected without reason: {}", brief(frame)));
            }
            _ => {}
        }
    }
    if wrong.is_empty() {
        Ok(format!(
            "{count} reports and rejections, all well formed{}",
            also(&notes)
        ))
    } else {
        Err(wrong.join("; "))
    }
}
