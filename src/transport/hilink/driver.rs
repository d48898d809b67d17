//! One HiLink stick's task: it owns the stick's [`Client`], turns `send` jobs into
//! `send-sms` calls, and what the stick says into store changes and dispatcher events, exactly
//! as a serial modem's task does.
//!
//! Life of a stick ([`Supervisor::run`]): connect (session, login, `device/information`; the
//! IMEI keys the hub device, created on first sight) → register in the registry → serve until
//! the circuit breaker trips (`breaker_failures` calls in a row without an answer) or the stick
//! is detached → go offline → reconnect after a backoff that doubles up to `max_backoff`. A
//! refused login stops the retries (sticks lock the account after a few failures).
//!
//! Serving, one thing at a time: a `send` job is accepted (the acceptance committed) right
//! before `send-sms`; "busy" answers are retried on the spot a few times; a full storage
//! prunes the sent box and tries once more; then `send-status` is polled until the number is
//! listed as sent or failed. Any other refusal means nothing went out, so it is failed
//! temporary (back to the queue through the store's retry rule) unless it says the message
//! itself is bad. A `send-sms` that got no answer, or whose outcome never shows, is
//! `outcome_unknown`, never resent. The stick keeps no journal, so it connects with an empty
//! one: jobs it accepted before a disconnect end as `outcome_unknown` in the dispatcher.
//! Incoming messages (`check-notifications`, and an `sms-count` sweep) are read from the
//! inbox, stored, and only then deleted; a message taken twice (a crash between the insert
//! and the delete) is stored once, by its external id.
//!
//! Must never: call `send-sms` for a job whose acceptance is not committed, call it twice for
//! one job, delete a message before the hub has committed it, or hold a lock across an
//! `.await`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use sha2::{Digest, Sha256};
use smshub_protocol::device::{Capabilities, ErrorCode, SimInfo, Status};
use smshub_protocol::gsm;
use smshub_protocol::hilink::api::{
    self, BOX_INBOX, BOX_SENT, CurrentPlmn, DeviceInformation, MonitoringStatus, Notifications,
    SendOutcome, SendStatus, Signal, SmsCount, SmsList, StoredMessage,
};
use smshub_protocol::hilink::{Element, ErrorClass};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::client::{Client, ClientError};
use super::{HilinkConfig, KIND, Target};
use crate::domain::{Millis, format_millis, now_millis};
use crate::registry::{Job, LiveDevice, Outbound};
use crate::store::Change;
use crate::transport::link::DeviceLink;
use crate::transport::radio::device::{self as radio, Incoming, model_name};
use crate::transport::radio::supervisor::{self, Driver, Ended};
use crate::transport::radio::{
    Balance, Control, ModemError, ModemState, ModemStatus, Operators, RawSent, StoredSms,
    UssdAnswer,
};

/// Messages read from a box per `sms-list` call.
const PAGE: u32 = 20;
/// `sms-list` calls per sweep at most.
const MAX_PAGES: u32 = 50;

/// Runs one stick: connects, serves, reconnects with backoff, until detached.
pub(crate) struct Supervisor {
    pub target: Target,
    pub link: DeviceLink,
    pub config: HilinkConfig,
    pub operators: Arc<Operators>,
    pub status: watch::Sender<ModemStatus>,
    pub control: mpsc::Receiver<Control>,
}

impl Supervisor {
    /// Keeps the stick attached (reconnecting with backoff after failures, never after a
    /// refused login) until detached.
    pub(crate) async fn run(self) {
        let Supervisor {
            target,
            link,
            config,
            operators,
            status,
            control,
        } = self;
        let client = Client::new(&target, config.request_timeout);
        let stick = Stick {
            url: target.url,
            client,
            link,
            config,
            operators,
        };
        supervisor::run(stick, status, control).await;
    }
}

/// A stick's sessions, for the supervisor loop. One client serves them all.
struct Stick {
    url: String,
    client: Client,
    link: DeviceLink,
    config: HilinkConfig,
    operators: Arc<Operators>,
}

/// What the status adds when the stick refused the login.
const LOGIN_ADVICE: &str = "not retrying (the stick locks the account after a few failures): \
                            fix the credentials, then disconnect and connect again";

impl Driver for Stick {
    async fn session(
        &mut self,
        status: &watch::Sender<ModemStatus>,
        control: &mut mpsc::Receiver<Control>,
    ) -> Ended {
        self.client.reset();
        Connection::new(self, status, control).run().await
    }

    fn wait(&self, failures: u32) -> Duration {
        backoff(self.config.retry, self.config.max_backoff, failures)
    }

    fn log(&self, ended: &Ended, failures: u32) {
        let url = &self.url;
        match ended {
            Ended::Stopped | Ended::Replaced => tracing::info!(%url, "HiLink stick detached"),
            Ended::GaveUp { error, .. } => {
                tracing::warn!(%url, %error, "HiLink login refused; not retrying");
            }
            Ended::Failed { error, .. } => {
                tracing::warn!(%url, %error, attempts = failures, "HiLink session ended; retrying");
            }
        }
    }
}

/// The wait before reconnect attempt `attempts` (1-based): `retry`, doubling, at most `max`.
fn backoff(retry: Duration, max: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    retry.saturating_mul(1 << doublings).min(max.max(retry))
}

/// Why sending a message failed, as stored.
#[derive(Debug)]
struct SendFailure {
    code: ErrorCode,
    message: String,
    temporary: bool,
}

impl SendFailure {
    fn temporary(code: ErrorCode, message: String) -> SendFailure {
        SendFailure {
            code,
            message,
            temporary: true,
        }
    }

    fn permanent(code: ErrorCode, message: String) -> SendFailure {
        SendFailure {
            code,
            message,
            temporary: false,
        }
    }
}

/// One session with a stick.
struct Connection<'a> {
    client: &'a mut Client,
    link: DeviceLink,
    url: String,
    config: HilinkConfig,
    operators: Arc<Operators>,
    status: &'a watch::Sender<ModemStatus>,
    control: &'a mut mpsc::Receiver<Control>,
    device_id: String,
    session_no: u64,
    /// Calls in a row that got no answer, and the last such error.
    silence: u32,
    last_silence: Option<String>,
    /// Whether `check-notifications` answers on this firmware.
    notifications: bool,
    /// The IMSI, to find the SIM's home operator.
    imsi: Option<String>,
    msisdn: Option<String>,
}

impl<'a> Connection<'a> {
    fn new(
        stick: &'a mut Stick,
        status: &'a watch::Sender<ModemStatus>,
        control: &'a mut mpsc::Receiver<Control>,
    ) -> Connection<'a> {
        Connection {
            client: &mut stick.client,
            link: stick.link.clone(),
            url: stick.url.clone(),
            config: stick.config.clone(),
            operators: stick.operators.clone(),
            status,
            control,
            device_id: String::new(),
            session_no: 0,
            silence: 0,
            last_silence: None,
            notifications: true,
            imsi: None,
            msisdn: None,
        }
    }

    fn publish(&self, update: impl FnOnce(&mut ModemStatus)) {
        self.status.send_modify(update);
    }

    // ---- calls and the circuit breaker -----------------------------------------------------

    async fn get(&mut self, path: &str) -> Result<Element, ClientError> {
        let result = self.client.get(path).await;
        self.note(&result);
        result
    }

    async fn post(&mut self, path: &str, body: &str) -> Result<Element, ClientError> {
        let result = self.client.post(path, body).await;
        self.note(&result);
        result
    }

    fn note<T>(&mut self, result: &Result<T, ClientError>) {
        match result {
            Err(err) if err.is_silence() => {
                self.silence += 1;
                self.last_silence = Some(err.to_string());
            }
            _ => self.silence = 0,
        }
    }

    /// Whether the breaker has tripped: the stick stopped answering.
    fn broken(&self) -> bool {
        self.silence >= self.config.breaker_failures.max(1)
    }

    fn failed(&self, error: impl Into<String>, was_online: bool) -> Ended {
        Ended::Failed {
            error: error.into(),
            was_online,
        }
    }

    // ---- life of a session -----------------------------------------------------------------

    async fn run(mut self) -> Ended {
        self.publish(|it| it.state = ModemState::Initializing);
        let information = match self.get("device/information").await {
            Ok(it) => DeviceInformation::from_element(&it),
            Err(err) if err.class() == Some(ErrorClass::LoginRefused) => {
                return login_refused(err);
            }
            Err(ClientError::Api(err)) if err.class() == ErrorClass::LoginRequired => {
                return self.failed(
                    format!(
                        "the stick requires a login ({err}); give credentials in the URL or \
                         with --hilink-user/--hilink-password"
                    ),
                    false,
                );
            }
            Err(err) => return self.failed(err.to_string(), false),
        };
        let identity = information
            .imei
            .clone()
            .or_else(|| information.serial_number.clone())
            .unwrap_or_else(|| self.url.clone());
        let limits = match self.link.device_for(KIND, &identity, "HiLink stick").await {
            Ok((id, limits)) => {
                self.device_id = id;
                limits
            }
            Err(error) => return self.failed(error, false),
        };
        self.imsi = information.imsi.clone();
        self.msisdn = information.msisdn.clone();
        let device_id = self.device_id.clone();
        self.publish(|it| {
            it.device_id = Some(device_id);
            it.manufacturer = Some("Huawei".to_string());
            it.model = information.device_name.clone();
            it.revision = information.software_version.clone();
            it.imei = information.imei.clone();
            it.sim.imsi = information.imsi.clone();
            it.sim.iccid = information.iccid.clone();
            it.storage = Some("local".to_string());
            it.cnmi = None;
        });
        if let Err(err) = self.refresh().await
            && err.is_silence()
        {
            return self.failed(err.to_string(), false);
        }
        let snapshot = self.status.borrow().clone();
        self.link
            .hello(
                &self.device_id,
                model_name(&snapshot),
                snapshot.revision.clone(),
                &[self.sim_info(&snapshot)],
            )
            .await;
        let (tx, mut outbound) = mpsc::channel::<Outbound>(64);
        let now = now_millis();
        let capabilities = capabilities();
        let live = LiveDevice {
            device_id: self.device_id.clone(),
            session: 0,
            kind: KIND,
            connected_at: now,
            last_seen_at: now,
            app_version: snapshot.revision.clone(),
            model: model_name(&snapshot),
            sims: vec![self.sim_info(&snapshot)],
            capabilities: capabilities.clone(),
            status: Some(self.radio_status()),
            in_flight: 0,
        };
        let session_no = self.link.register(live, tx.clone());
        self.session_no = session_no;
        // The stick keeps no journal: jobs of earlier sessions end as outcome_unknown.
        self.link.announce(
            &self.device_id,
            session_no,
            capabilities,
            limits,
            Some(Vec::new()),
        );
        self.link
            .report_status(&self.device_id, session_no, self.radio_status());
        drop(tx);
        self.publish(|it| {
            it.state = ModemState::Ready;
            it.last_error = None;
            it.connected_at = Some(format_millis(now));
        });
        tracing::info!(url = %self.url, device = %self.device_id, session = session_no, "HiLink stick online");

        // Messages that arrived while the stick was away.
        let ended = match self.sweep_inbox().await {
            Err(err) if err.is_silence() && self.broken() => self.failed(err.to_string(), true),
            _ => self.serve(&mut outbound).await,
        };

        self.link.go_offline(&self.device_id, session_no).await;
        tracing::info!(url = %self.url, device = %self.device_id, "HiLink stick offline");
        ended
    }

    async fn serve(&mut self, outbound: &mut mpsc::Receiver<Outbound>) -> Ended {
        enum Step {
            Frame(Option<Outbound>),
            Control(Option<Control>),
            Refresh,
            Poll,
            Sweep,
        }
        let start = Instant::now();
        let interval = |every: Duration| {
            let every = every.max(Duration::from_millis(10));
            let mut it = tokio::time::interval_at(start + every, every);
            it.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            it
        };
        let mut refresh = interval(self.config.refresh);
        let mut poll = interval(self.config.poll);
        let mut sweep = interval(self.config.sweep);
        loop {
            if self.broken() {
                return self.failed(
                    format!(
                        "the stick stopped answering ({} calls in a row): {}",
                        self.silence,
                        self.last_silence.as_deref().unwrap_or("no answer")
                    ),
                    true,
                );
            }
            let step = tokio::select! {
                frame = outbound.recv() => Step::Frame(frame),
                request = self.control.recv() => Step::Control(request),
                _ = refresh.tick() => Step::Refresh,
                _ = poll.tick() => Step::Poll,
                _ = sweep.tick() => Step::Sweep,
            };
            let result = match step {
                Step::Frame(Some(Outbound::Offer(job))) => {
                    self.send_job(*job).await;
                    Ok(())
                }
                // Jobs run one at a time, accepted right before they are sent: an offer
                // waiting in the channel is skipped at acceptance when it was taken back.
                Step::Frame(Some(Outbound::Revoke { .. })) => Ok(()),
                Step::Frame(Some(Outbound::Close(reason))) => {
                    tracing::info!(url = %self.url, reason = reason.describe(), "HiLink session closed by the hub");
                    return if reason.for_good() {
                        Ended::Replaced
                    } else {
                        Ended::Stopped
                    };
                }
                Step::Frame(None) | Step::Control(None | Some(Control::Stop)) => {
                    return Ended::Stopped;
                }
                Step::Control(Some(request)) => {
                    self.serve_control(request).await;
                    Ok(())
                }
                Step::Refresh => self.refresh_and_report().await,
                Step::Poll => self.poll().await,
                Step::Sweep => self.sweep().await,
            };
            match result {
                Err(err) if err.class() == Some(ErrorClass::LoginRefused) => {
                    return login_refused(err);
                }
                Err(err) => tracing::debug!(url = %self.url, error = %err, "HiLink call failed"),
                Ok(()) => {}
            }
        }
    }

    // ---- status ----------------------------------------------------------------------------

    async fn refresh_and_report(&mut self) -> Result<(), ClientError> {
        self.refresh().await?;
        self.link
            .report_status(&self.device_id, self.session_no, self.radio_status());
        Ok(())
    }

    /// Reads radio state, signal and network; a call the firmware refuses leaves its fields
    /// unknown, silence is an error.
    async fn refresh(&mut self) -> Result<(), ClientError> {
        let monitoring = MonitoringStatus::from_element(&self.get("monitoring/status").await?);
        let signal = match self.get("device/signal").await {
            Ok(it) => Signal::from_element(&it),
            Err(err) if err.is_silence() => return Err(err),
            Err(_) => Signal::default(),
        };
        let plmn = match self.get("net/current-plmn").await {
            Ok(it) => CurrentPlmn::from_element(&it),
            Err(err) if err.is_silence() => return Err(err),
            Err(_) => CurrentPlmn::default(),
        };
        // The SIM's home operator: from the IMSI, else the network it is on when not roaming.
        let profile = self
            .imsi
            .as_deref()
            .and_then(|it| self.operators.for_imsi(it))
            .or_else(|| {
                plmn.numeric
                    .as_deref()
                    .filter(|_| !monitoring.roaming)
                    .and_then(|it| self.operators.get(it))
            })
            .cloned();
        let imsi_code = self
            .imsi
            .as_ref()
            .map(|it| it.chars().take(5).collect::<String>());
        self.publish(|it| {
            it.network.signal_dbm = signal.rssi;
            it.network.signal_percent = monitoring.signal_percent();
            it.network.network_type = monitoring.network_type.map(str::to_string);
            it.network.registered = monitoring.registered();
            it.network.roaming = monitoring.roaming;
            it.network.operator = plmn.name();
            it.sim.pin_state = monitoring.sim_state().map(str::to_string);
            it.sim.mcc_mnc = profile.as_ref().map(|p| p.mcc_mnc.clone()).or(imsi_code);
            it.sim.operator = profile.as_ref().map(|p| p.name.clone());
            it.sim.profile = profile;
        });
        Ok(())
    }

    /// The radio status; the signal bars come from the percentage when the stick gives no dBm.
    fn radio_status(&self) -> Status {
        let snapshot = self.status.borrow();
        let network = &snapshot.network;
        let signal_level = radio::signal_level(network.signal_dbm).or_else(|| {
            network
                .signal_percent
                .map(|it| (u32::from(it) * 4 / 100) as u8)
        });
        radio::radio_status(&snapshot, signal_level)
    }

    fn sim_info(&self, status: &ModemStatus) -> SimInfo {
        radio::sim_info(status, self.msisdn.clone())
    }

    // ---- sending ---------------------------------------------------------------------------

    async fn send_job(&mut self, job: Job) {
        let device = self.device_id.clone();
        let id = job.id;
        if !self.link.accept(&device, id, "HiLink stick").await {
            return;
        }
        let parts = gsm::segment(&job.text).parts;
        let (change, code) = match self.send_text(job.recipient.as_str(), &job.text).await {
            Ok(()) => {
                self.publish(|it| it.sent += 1);
                (
                    Change::Sent {
                        id,
                        device: device.clone(),
                        parts: parts as u32,
                    },
                    None,
                )
            }
            Err(failure) => {
                self.publish(|it| it.failed += 1);
                tracing::info!(url = %self.url, %id, code = failure.code.as_str(), message = %failure.message, "HiLink send failed");
                let change = self.link.failure(
                    id,
                    &device,
                    failure.code.as_str(),
                    failure.message,
                    failure.temporary,
                );
                (change, Some(failure.code.as_str().to_string()))
            }
        };
        let outcome = self.link.store().apply(change).await;
        self.link.finish(&device, id, outcome, code, "HiLink stick");
    }

    /// Hands one message to the stick and waits until it says sent or failed.
    async fn send_text(&mut self, to: &str, text: &str) -> Result<(), SendFailure> {
        let parts = gsm::segment(text).parts;
        let body = api::send_sms_request(to, text, &local_now());
        let mut busy_left = self.config.busy_retries;
        let mut pruned = !self.config.prune_sent;
        loop {
            match self.post("sms/send-sms", &body).await {
                Ok(reply) if api::is_ok(&reply) => break,
                Ok(reply) => {
                    return Err(SendFailure::permanent(
                        ErrorCode::OutcomeUnknown,
                        format!(
                            "the stick answered send-sms with <{}> instead of OK; it may have \
                             been sent",
                            reply.name
                        ),
                    ));
                }
                Err(ClientError::Api(err)) => match err.class() {
                    ErrorClass::Busy if busy_left > 0 => {
                        busy_left -= 1;
                        tracing::debug!(url = %self.url, code = err.code, "stick busy; trying again");
                        tokio::time::sleep(self.config.busy_wait).await;
                    }
                    ErrorClass::StorageFull if !pruned => {
                        pruned = true;
                        if let Err(err) = self.prune_sent_box().await {
                            tracing::warn!(url = %self.url, error = %err, "could not prune the sent box");
                        }
                    }
                    class => return Err(refusal(&err.to_string(), class)),
                },
                // Nothing reached the stick.
                Err(ClientError::Unreachable(error)) => {
                    return Err(SendFailure::temporary(
                        ErrorCode::GenericFailure,
                        format!("the stick cannot be reached: {error}"),
                    ));
                }
                Err(ClientError::Status(status)) => {
                    return Err(SendFailure::temporary(
                        ErrorCode::GenericFailure,
                        format!("the stick refused send-sms with HTTP {status}"),
                    ));
                }
                // The request went out and no readable answer came: it may have been sent.
                Err(err @ (ClientError::NoAnswer(_) | ClientError::Malformed(_))) => {
                    return Err(SendFailure::permanent(
                        ErrorCode::OutcomeUnknown,
                        format!("{err} after send-sms was written; it may have been sent"),
                    ));
                }
            }
        }
        self.await_sent(to, parts).await
    }

    /// Polls `send-status` until `to` is listed as sent or failed.
    async fn await_sent(&mut self, to: &str, parts: usize) -> Result<(), SendFailure> {
        let deadline = Instant::now() + self.config.send_timeout;
        loop {
            tokio::time::sleep(self.config.send_poll).await;
            match self.get("sms/send-status").await {
                Ok(reply) => match SendStatus::from_element(&reply).outcome(to) {
                    SendOutcome::Sent => return Ok(()),
                    SendOutcome::Failed => return Err(self.failed_by_stick(parts)),
                    SendOutcome::Pending => {}
                },
                Err(err) if self.broken() => {
                    return Err(SendFailure::permanent(
                        ErrorCode::OutcomeUnknown,
                        format!(
                            "the stick took the message, then stopped answering ({err}); it \
                             may have been sent"
                        ),
                    ));
                }
                Err(err) => {
                    tracing::debug!(url = %self.url, error = %err, "send-status failed");
                }
            }
            if Instant::now() >= deadline {
                return Err(SendFailure::permanent(
                    ErrorCode::OutcomeUnknown,
                    format!(
                        "the stick took the message but reported no outcome within {} s; it \
                         may have been sent",
                        self.config.send_timeout.as_secs()
                    ),
                ));
            }
        }
    }

    /// The stick lists the number under `FailPhone`, without a reason. One part: nothing went
    /// out, so another try (here or elsewhere) is safe. Several: some parts may have gone out,
    /// and sending again would repeat them.
    fn failed_by_stick(&self, parts: usize) -> SendFailure {
        if parts > 1 {
            return SendFailure::permanent(
                ErrorCode::GenericFailure,
                format!(
                    "the stick reports the send failed; some of the {parts} parts may have gone \
                     out, so it is not sent again"
                ),
            );
        }
        if !self.status.borrow().network.registered {
            return SendFailure::temporary(
                ErrorCode::NoService,
                "the stick reports the send failed and has no network service".to_string(),
            );
        }
        SendFailure::temporary(
            ErrorCode::GenericFailure,
            "the stick reports the send failed (it gives no reason)".to_string(),
        )
    }

    /// Deletes the copies the stick filed in its sent box.
    async fn prune_sent_box(&mut self) -> Result<(), ClientError> {
        let list = SmsList::from_element(
            &self
                .post("sms/sms-list", &api::sms_list_request(1, 50, BOX_SENT))
                .await?,
        );
        for message in list.messages {
            self.post("sms/delete-sms", &api::delete_sms_request(message.index))
                .await?;
        }
        Ok(())
    }

    // ---- receiving -------------------------------------------------------------------------

    /// The cheap poll: `check-notifications` says whether unread messages wait.
    async fn poll(&mut self) -> Result<(), ClientError> {
        if !self.notifications {
            return Ok(());
        }
        let notes = match self.get("monitoring/check-notifications").await {
            Ok(it) => Notifications::from_element(&it),
            Err(err) if err.class() == Some(ErrorClass::NotSupported) => {
                // Old firmware: the sweep's sms-count does the work, at the sweep's pace.
                self.notifications = false;
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        if notes.unread_message > 0 || notes.sms_storage_full {
            self.sweep().await?;
        }
        Ok(())
    }

    /// `sms-count`: takes what is in the inbox (read or not) and prunes the sent box.
    async fn sweep(&mut self) -> Result<(), ClientError> {
        let count = SmsCount::from_element(&self.get("sms/sms-count").await?);
        if count.local_inbox + count.sim_inbox > 0 {
            self.sweep_inbox().await?;
        }
        if self.config.prune_sent && count.local_outbox > 0 {
            self.prune_sent_box().await?;
        }
        Ok(())
    }

    /// Reads the inbox page by page, storing and deleting each message.
    async fn sweep_inbox(&mut self) -> Result<(), ClientError> {
        let mut seen = HashSet::new();
        let mut page = 1;
        for _ in 0..MAX_PAGES {
            let list = SmsList::from_element(
                &self
                    .post(
                        "sms/sms-list",
                        &api::sms_list_request(page, PAGE, BOX_INBOX),
                    )
                    .await?,
            );
            let full = list.messages.len() as u32 >= PAGE;
            let fresh: Vec<StoredMessage> = list
                .messages
                .into_iter()
                .filter(|it| seen.insert(it.index))
                .collect();
            if fresh.is_empty() {
                // Everything here was taken but could not be deleted: look further.
                if full {
                    page += 1;
                    continue;
                }
                break;
            }
            for message in fresh {
                self.take(message).await?;
            }
        }
        Ok(())
    }

    /// Stores one received message, then deletes it from the stick.
    async fn take(&mut self, message: StoredMessage) -> Result<(), ClientError> {
        if !message.is_report() {
            let incoming = Incoming {
                external_id: external_id(&message),
                sender: message.phone.clone(),
                body: message.content.clone(),
                received_at: stick_time(&message.date).unwrap_or_else(now_millis),
            };
            if let Err(err) =
                radio::store_incoming(&self.link, self.status, &self.device_id, incoming).await
            {
                tracing::error!(error = %err, index = message.index, "could not store an incoming SMS; it stays on the stick");
                return Ok(());
            }
        }
        match self
            .post("sms/delete-sms", &api::delete_sms_request(message.index))
            .await
        {
            Err(err) if !err.is_silence() => {
                tracing::warn!(url = %self.url, index = message.index, error = %err, "could not delete a stored message");
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    // ---- requests from the API -------------------------------------------------------------

    async fn serve_control(&mut self, request: Control) {
        match request {
            Control::ListSms(reply) => {
                let result = self.list_stored().await;
                let _ = reply.send(result);
            }
            Control::DeleteSms(index, reply) => {
                let result = self
                    .post("sms/delete-sms", &api::delete_sms_request(index))
                    .await
                    .map(|_| ())
                    .map_err(modem_error);
                let _ = reply.send(result);
            }
            Control::SendRaw { to, text, reply } => {
                let parts = gsm::segment(&text).parts;
                let result = self
                    .send_text(&to, &text)
                    .await
                    .map(|()| RawSent {
                        parts,
                        references: Vec::new(),
                    })
                    .map_err(|it| {
                        ModemError::Invalid(format!("{}: {}", it.code.as_str(), it.message))
                    });
                let _ = reply.send(result);
            }
            Control::Ussd { code, reply } => {
                let result = self.ussd(&code).await;
                let _ = reply.send(result);
            }
            Control::Balance(reply) => {
                let result = self.balance().await;
                let _ = reply.send(result);
            }
            Control::Stop => {}
        }
    }

    /// The inbox and the sent box, first page of each.
    async fn list_stored(&mut self) -> Result<Vec<StoredSms>, ModemError> {
        let mut stored = Vec::new();
        for box_type in [BOX_INBOX, BOX_SENT] {
            let list = SmsList::from_element(
                &self
                    .post("sms/sms-list", &api::sms_list_request(1, 50, box_type))
                    .await
                    .map_err(modem_error)?,
            );
            stored.extend(
                list.messages
                    .into_iter()
                    .map(|it| describe_stored(it, box_type)),
            );
        }
        Ok(stored)
    }

    async fn ussd(&mut self, code: &str) -> Result<UssdAnswer, ModemError> {
        let body = api::ussd_send_request(code);
        let mut released = false;
        loop {
            match self.post("ussd/send", &body).await {
                Ok(_) => break,
                // A request from earlier (the web UI, a timed-out call) is still open.
                Err(ClientError::Api(err))
                    if err.class() == ErrorClass::UssdPending && !released =>
                {
                    released = true;
                    let _ = self.get("ussd/release").await;
                }
                Err(err) => return Err(modem_error(err)),
            }
        }
        let deadline = Instant::now() + self.config.ussd_timeout;
        loop {
            tokio::time::sleep(self.config.ussd_poll).await;
            match self.get("ussd/get").await {
                Ok(reply) => {
                    // The hub does not navigate menus: end the session.
                    let _ = self.get("ussd/release").await;
                    return Ok(UssdAnswer {
                        code: code.to_string(),
                        status: "done",
                        text: api::ussd_content(&reply),
                        dcs: None,
                    });
                }
                Err(ClientError::Api(err)) if err.class() == ErrorClass::UssdPending => {}
                Err(ClientError::Api(err)) if err.class() == ErrorClass::UssdFailed => {
                    let _ = self.get("ussd/release").await;
                    return Err(ModemError::Refused(err.to_string()));
                }
                Err(err) => return Err(modem_error(err)),
            }
            if Instant::now() >= deadline {
                let _ = self.get("ussd/release").await;
                return Err(ModemError::Timeout);
            }
        }
    }

    async fn balance(&mut self) -> Result<Balance, ModemError> {
        let (profile, code) = radio::balance_code(&self.status.borrow())?;
        let answer = self.ussd(&code).await?;
        Ok(radio::balance(profile, code, answer))
    }
}

/// The end of a session whose login the stick refused: retrying could lock the account.
fn login_refused(err: ClientError) -> Ended {
    Ended::GaveUp {
        error: err.to_string(),
        advice: LOGIN_ADVICE,
        refusal: "the stick refused the login",
    }
}

fn capabilities() -> Capabilities {
    Capabilities {
        max_in_flight: 1,
        // The stick splits long texts itself.
        multipart: true,
        // The HiLink API gives no delivery reports the hub can match to a message.
        delivery_reports: false,
        incoming: true,
    }
}

/// How a refused `send-sms` ends the message. The stick answered, so nothing went out: every
/// refusal may be retried except those that say the message itself is bad.
fn refusal(error: &str, class: ErrorClass) -> SendFailure {
    match class {
        ErrorClass::InvalidRequest => SendFailure::permanent(
            ErrorCode::Unsupported,
            format!("the stick refused the message: {error}"),
        ),
        ErrorClass::Busy => {
            SendFailure::temporary(ErrorCode::Busy, format!("the stick stayed busy: {error}"))
        }
        ErrorClass::StorageFull => SendFailure::temporary(
            ErrorCode::Busy,
            format!("the stick's message storage is full: {error}"),
        ),
        ErrorClass::LoginRequired | ErrorClass::LoginRefused => SendFailure::temporary(
            ErrorCode::GenericFailure,
            format!("the stick wants a login: {error}"),
        ),
        ErrorClass::Session
        | ErrorClass::UssdPending
        | ErrorClass::UssdFailed
        | ErrorClass::NotSupported
        | ErrorClass::Other => SendFailure::temporary(
            ErrorCode::GenericFailure,
            format!("the stick refused send-sms: {error}"),
        ),
    }
}

fn modem_error(err: ClientError) -> ModemError {
    match err {
        ClientError::Unreachable(error) => ModemError::Unreachable(error),
        ClientError::NoAnswer(_) => ModemError::Timeout,
        ClientError::Api(error) => ModemError::Refused(error.to_string()),
        ClientError::Status(status) => ModemError::Refused(format!("HTTP {status}")),
        ClientError::Malformed(error) => ModemError::Refused(error),
    }
}

/// The dedupe key of a received message: the stick's index with its date, sender and text,
/// so taking it again after a crash (stored, not yet deleted) finds the same row, while a
/// later message that reuses the index does not.
fn external_id(message: &StoredMessage) -> String {
    let mut hash = Sha256::new();
    for field in [
        message.index.to_string().as_str(),
        &message.date,
        &message.phone,
        &message.content,
    ] {
        hash.update(field.as_bytes());
        hash.update([0]);
    }
    format!("hilink-{}", &hex::encode(hash.finalize())[..32])
}

/// A stick date (`2021-04-23 14:17:33`, the stick's local time, taken as the hub's).
fn stick_time(date: &str) -> Option<Millis> {
    let naive = chrono::NaiveDateTime::parse_from_str(date.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|it| it.timestamp_millis())
}

fn local_now() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

fn describe_stored(message: StoredMessage, box_type: u8) -> StoredSms {
    let status = match (box_type, message.smstat) {
        (BOX_SENT, 4) => "sto_unsent",
        (BOX_SENT, _) => "sto_sent",
        (_, 0) => "rec_unread",
        _ => "rec_read",
    };
    let kind = match (box_type, message.is_report()) {
        (_, true) => "status_report",
        (BOX_SENT, false) => "submit",
        _ => "deliver",
    };
    StoredSms {
        index: message.index,
        status,
        kind,
        number: Some(message.phone).filter(|it| !it.is_empty()),
        text: Some(message.content),
        timestamp: Some(message.date).filter(|it| !it.is_empty()),
        part: None,
        pdu: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(5), s(120), 1), s(5));
        assert_eq!(backoff(s(5), s(120), 2), s(10));
        assert_eq!(backoff(s(5), s(120), 4), s(40));
        assert_eq!(backoff(s(5), s(120), 6), s(120));
        assert_eq!(backoff(s(5), s(120), u32::MAX), s(120));
        assert_eq!(
            backoff(s(5), s(1), 3),
            s(5),
            "the cap never undercuts the first wait"
        );
    }

    #[test]
    fn refusals() {
        for (class, code, temporary) in [
            (ErrorClass::Busy, ErrorCode::Busy, true),
            (ErrorClass::StorageFull, ErrorCode::Busy, true),
            (ErrorClass::InvalidRequest, ErrorCode::Unsupported, false),
            (ErrorClass::NotSupported, ErrorCode::GenericFailure, true),
            (ErrorClass::LoginRequired, ErrorCode::GenericFailure, true),
            (ErrorClass::Other, ErrorCode::GenericFailure, true),
        ] {
            let failure = refusal("error 1", class);
            assert_eq!(
                (failure.code, failure.temporary),
                (code, temporary),
                "{class:?}"
            );
        }
    }

    #[test]
    fn external_ids() {
        let message = StoredMessage {
            index: 40001,
            smstat: 0,
            phone: "+213770123456".into(),
            content: "hello".into(),
            date: "2024-02-03 04:05:06".into(),
            sms_type: 1,
        };
        let again = message.clone();
        assert_eq!(external_id(&message), external_id(&again));
        let later = StoredMessage {
            date: "2024-02-04 04:05:06".into(),
            ..message.clone()
        };
        assert_ne!(external_id(&message), external_id(&later));
        assert!(external_id(&message).starts_with("hilink-"));
    }

    #[test]
    fn stick_times() {
        let parsed = stick_time("2021-04-23 14:17:33").unwrap();
        let back = chrono::Local
            .timestamp_millis_opt(parsed)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        assert_eq!(back, "2021-04-23 14:17:33");
        assert_eq!(stick_time(""), None);
        assert_eq!(stick_time("23.04.2021"), None);
    }
}
