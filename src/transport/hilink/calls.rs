//! The calls one stick answers, with nothing of the hub in them: the hub's driver
//! ([`super::driver`]) and the remote worker (`crate::worker::hilink`) both drive a stick
//! through a [`Calls`], and differ only in where what it says goes (the hub's store and
//! registry, or the worker's journal).
//!
//! Every call goes through [`Calls::get`] and [`Calls::post`], so the circuit breaker sees it:
//! calls in a row that got no answer are counted, any answer (even a refusal) resets the count,
//! and `breaker_failures` of them mean the stick is gone ([`Calls::broken`]).
//!
//! Sending ([`Calls::send_text`]): "busy" answers are tried again on the spot, a full storage
//! prunes the sent box once, then `send-status` is polled until the stick lists the number as
//! sent or failed; how each answer ends the message is decided here. Receiving
//! ([`Calls::sweep_inbox`]): the inbox page by page, each message handed to the caller's
//! [`Keep`], and deleted from the stick only once it says the message is kept.
//!
//! Must never: repeat a call on its own (only "busy" `send-sms` answers, which say nothing went
//! out), call `send-sms` again once a request may have reached the stick (no answer, an
//! unreadable one, no outcome in time: `outcome_unknown`), delete a message its caller has not
//! kept, or count a refusal as silence.

use std::collections::HashSet;
use std::time::Duration;

use chrono::TimeZone;
use sha2::{Digest, Sha256};
use smshub_protocol::device::ErrorCode;
use smshub_protocol::gsm;
use smshub_protocol::hilink::api::{
    self, BOX_INBOX, BOX_SENT, CurrentPlmn, MonitoringStatus, Notifications, SendOutcome,
    SendStatus, Signal, SmsCount, SmsList, StoredMessage,
};
use smshub_protocol::hilink::{Element, ErrorClass};
use tokio::time::Instant;

use super::client::{Client, ClientError};
use super::{HilinkConfig, Target};
use crate::domain::Millis;
use crate::transport::radio::session::SendFailure;
use crate::transport::radio::{ModemError, OperatorProfile, Operators, UssdAnswer};

/// Messages read from a box per `sms-list` call.
const PAGE: u32 = 20;
/// `sms-list` calls per sweep at most.
const MAX_PAGES: u32 = 50;

/// Where the inbox sweep hands each received message: `true` once it is kept (stored by the
/// hub, journaled by the worker), and only then is it deleted from the stick.
pub trait Keep {
    fn keep(&mut self, message: &StoredMessage) -> impl Future<Output = bool> + Send;
}

/// One stick's client with its circuit breaker.
pub struct Calls {
    client: Client,
    pub config: HilinkConfig,
    /// The stick's address, for logs.
    pub url: String,
    /// Calls in a row that got no answer, and the last such error.
    silence: u32,
    last_silence: Option<String>,
    /// Whether `check-notifications` answers on this firmware.
    notifications: bool,
}

/// What a stick says of its radio: any part the firmware refuses stays at its default.
#[derive(Debug, Default)]
pub struct Radio {
    pub monitoring: MonitoringStatus,
    pub signal: Signal,
    pub plmn: CurrentPlmn,
}

impl Radio {
    /// The SIM's home operator: from the IMSI, else the network it is on when not roaming.
    pub fn home_operator<'a>(
        &self,
        imsi: Option<&str>,
        operators: &'a Operators,
    ) -> Option<&'a OperatorProfile> {
        imsi.and_then(|it| operators.for_imsi(it)).or_else(|| {
            self.plmn
                .numeric
                .as_deref()
                .filter(|_| !self.monitoring.roaming)
                .and_then(|it| operators.get(it))
        })
    }
}

/// Signal bars 0..=4: from the dBm, else from the percentage when the stick gives no dBm.
pub fn signal_level(dbm: Option<i32>, percent: Option<u8>) -> Option<u8> {
    crate::transport::radio::device::signal_level(dbm)
        .or_else(|| percent.map(|it| (u32::from(it) * 4 / 100) as u8))
}

impl Calls {
    pub fn new(target: &Target, config: HilinkConfig) -> Calls {
        Calls {
            client: Client::new(target, config.request_timeout),
            config,
            url: target.url.clone(),
            silence: 0,
            last_silence: None,
            notifications: true,
        }
    }

    /// Forgets the session and the breaker's count, for a new session.
    pub fn reset(&mut self) {
        self.client.reset();
        self.silence = 0;
        self.last_silence = None;
        self.notifications = true;
    }

    /// A `GET` of an API path (`device/information`).
    pub async fn get(&mut self, path: &str) -> Result<Element, ClientError> {
        let result = self.client.get(path).await;
        self.note(&result);
        result
    }

    /// A `POST` of an XML request to an API path (`sms/send-sms`).
    pub async fn post(&mut self, path: &str, body: &str) -> Result<Element, ClientError> {
        let result = self.client.post(path, body).await;
        self.note(&result);
        result
    }

    /// Counts a call that got no answer; any answer resets the count.
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
    pub fn broken(&self) -> bool {
        self.silence >= self.config.breaker_failures.max(1)
    }

    /// Why the breaker tripped, in words.
    pub fn silence(&self) -> String {
        format!(
            "the stick stopped answering ({} calls in a row): {}",
            self.silence,
            self.last_silence.as_deref().unwrap_or("no answer")
        )
    }

    /// Signal, network and operator; a call the firmware refuses leaves its part unknown,
    /// silence is an error.
    pub async fn radio(&mut self) -> Result<Radio, ClientError> {
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
        Ok(Radio {
            monitoring,
            signal,
            plmn,
        })
    }

    /// Hands one message to the stick and waits until it says sent or failed. `registered`:
    /// whether the stick has network service (a refusal without it is `no_service`).
    pub async fn send_text(
        &mut self,
        to: &str,
        text: &str,
        registered: bool,
    ) -> Result<(), SendFailure> {
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
        self.await_sent(to, parts, registered).await
    }

    /// Polls `send-status` until `to` is listed as sent or failed.
    async fn await_sent(
        &mut self,
        to: &str,
        parts: usize,
        registered: bool,
    ) -> Result<(), SendFailure> {
        let deadline = Instant::now() + self.config.send_timeout;
        loop {
            tokio::time::sleep(self.config.send_poll).await;
            match self.get("sms/send-status").await {
                Ok(reply) => match SendStatus::from_element(&reply).outcome(to) {
                    SendOutcome::Sent => return Ok(()),
                    SendOutcome::Failed => return Err(failed_by_stick(parts, registered)),
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

    /// Deletes the copies the stick filed in its sent box.
    pub async fn prune_sent_box(&mut self) -> Result<(), ClientError> {
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

    /// The cheap poll: whether `check-notifications` says unread messages wait (or storage is
    /// full). Old firmwares without it answer `false` from then on: the sweep does the work.
    pub async fn unread(&mut self) -> Result<bool, ClientError> {
        if !self.notifications {
            return Ok(false);
        }
        match self.get("monitoring/check-notifications").await {
            Ok(it) => {
                let notes = Notifications::from_element(&it);
                Ok(notes.unread_message > 0 || notes.sms_storage_full)
            }
            Err(err) if err.class() == Some(ErrorClass::NotSupported) => {
                self.notifications = false;
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    /// `sms-count`: takes what is in the inbox (read or not) and prunes the sent box.
    pub async fn sweep(&mut self, take: &mut impl Keep) -> Result<(), ClientError> {
        let count = SmsCount::from_element(&self.get("sms/sms-count").await?);
        if count.local_inbox + count.sim_inbox > 0 {
            self.sweep_inbox(take).await?;
        }
        if self.config.prune_sent && count.local_outbox > 0 {
            self.prune_sent_box().await?;
        }
        Ok(())
    }

    /// Reads the inbox page by page; each received message goes to `take`, and is deleted
    /// from the stick once `take` answers that it is kept (status reports are deleted).
    pub async fn sweep_inbox(&mut self, take: &mut impl Keep) -> Result<(), ClientError> {
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
                if !message.is_report() && !take.keep(&message).await {
                    continue;
                }
                match self
                    .post("sms/delete-sms", &api::delete_sms_request(message.index))
                    .await
                {
                    Err(err) if err.is_silence() => return Err(err),
                    Err(err) => {
                        tracing::warn!(url = %self.url, index = message.index, error = %err, "could not delete a stored message");
                    }
                    Ok(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Runs a USSD code (releasing a session left open before), polls for the answer and
    /// releases the session: menus are not navigated.
    pub async fn ussd(&mut self, code: &str) -> Result<UssdAnswer, ModemError> {
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
}

/// The stick lists the number under `FailPhone`, without a reason. One part: nothing went
/// out, so another try (here or elsewhere) is safe. Several: some parts may have gone out,
/// and sending again would repeat them.
fn failed_by_stick(parts: usize, registered: bool) -> SendFailure {
    if parts > 1 {
        return SendFailure::permanent(
            ErrorCode::GenericFailure,
            format!(
                "the stick reports the send failed; some of the {parts} parts may have gone \
                 out, so it is not sent again"
            ),
        );
    }
    if !registered {
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

/// A call's error as the API's caller sees it.
pub fn modem_error(err: ClientError) -> ModemError {
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
pub fn external_id(message: &StoredMessage) -> String {
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

/// A stick date (`2021-04-23 14:17:33`, the stick's local time, taken as the host's).
pub fn stick_time(date: &str) -> Option<Millis> {
    let naive = chrono::NaiveDateTime::parse_from_str(date.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|it| it.timestamp_millis())
}

/// The wait before reconnect attempt `attempts` (1-based): `retry`, doubling, at most `max`.
pub fn backoff(retry: Duration, max: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    retry.saturating_mul(1 << doublings).min(max.max(retry))
}

/// The stick's clock format, for `send-sms`.
fn local_now() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let none = failed_by_stick(1, false);
        assert_eq!((none.code, none.temporary), (ErrorCode::NoService, true));
        let some_out = failed_by_stick(2, true);
        assert!(!some_out.temporary, "parts may have gone out: not again");
    }

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
