//! One HiLink stick's task: it owns the stick's [`Client`], turns `send` jobs into
//! `send-sms` calls, and what the stick says into store changes and dispatcher events, exactly
//! as a serial modem's task does.
//!
//! Life of a stick (`Supervisor::run`, through the loop of
//! [`crate::transport::radio::supervisor`]): connect (session, login, `device/information`;
//! the IMEI keys the hub device, created on first sight) → register in the registry → serve
//! until the circuit breaker trips (`breaker_failures` calls in a row without an answer) or
//! the stick is detached → go offline → reconnect after a backoff that doubles up to
//! `max_backoff`. A refused login stops the retries (sticks lock the account after a few
//! failures).
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
//! This file holds the session: the `Connection` with one stick, its life (`run`) and its
//! loop (`serve`), which hands each thing to the file of its job: `status` (radio and SIM),
//! `send` (jobs into `send-sms`), `receive` (the inbox) and `control` (the API's requests).
//! Every call to the stick goes through its [`Calls`] (the circuit breaker, and the call
//! sequences the remote worker shares).
//!
//! Must never: call `send-sms` for a job whose acceptance is not committed, call it twice for
//! one job, delete a message before the hub has committed it, or hold a lock across an
//! `.await`.

mod control;
mod receive;
mod send;
mod status;

use std::sync::Arc;
use std::time::Duration;

use smshub_protocol::device::Capabilities;
use smshub_protocol::hilink::api::DeviceInformation;
use smshub_protocol::hilink::{Element, ErrorClass};
use tokio::sync::{mpsc, watch};

use super::calls::{Calls, backoff};
use super::client::ClientError;
use super::{HilinkConfig, KIND, Target};
use crate::domain::DeviceId;
use crate::registry::Outbound;
use crate::transport::link::DeviceLink;
use crate::transport::radio::session::{self, Identified, Next};
use crate::transport::radio::supervisor::{self, Attachment, Driver, Ended};
use crate::transport::radio::{Control, ModemState, ModemStatus, Operators};

/// Keeps the stick at `target` attached (reconnecting with backoff after failures, never
/// after a refused login) until detached.
pub(crate) async fn run(target: Target, config: HilinkConfig, attachment: Attachment) {
    let Attachment {
        link,
        operators,
        status,
        control,
    } = attachment;
    let calls = Calls::new(&target, config.clone());
    let stick = Stick {
        url: target.url,
        calls,
        link,
        config,
        operators,
    };
    supervisor::run(stick, status, control).await;
}

/// A stick's sessions, for the supervisor loop. One client serves them all.
struct Stick {
    url: String,
    calls: Calls,
    link: DeviceLink,
    config: HilinkConfig,
    operators: Arc<Operators>,
}

impl Driver for Stick {
    async fn session(
        &mut self,
        status: &watch::Sender<ModemStatus>,
        control: &mut mpsc::Receiver<Control>,
    ) -> Ended {
        self.calls.reset();
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

/// One session with a stick.
struct Connection<'a> {
    calls: &'a mut Calls,
    link: DeviceLink,
    url: String,
    config: HilinkConfig,
    operators: Arc<Operators>,
    status: &'a watch::Sender<ModemStatus>,
    control: &'a mut mpsc::Receiver<Control>,
    /// The hub device of this modem; empty until `run` has identified it.
    device_id: DeviceId,
    session_no: u64,
    /// The IMSI, to find the SIM's home operator.
    imsi: Option<String>,
}

impl<'a> Connection<'a> {
    fn new(
        stick: &'a mut Stick,
        status: &'a watch::Sender<ModemStatus>,
        control: &'a mut mpsc::Receiver<Control>,
    ) -> Connection<'a> {
        Connection {
            calls: &mut stick.calls,
            link: stick.link.clone(),
            url: stick.url.clone(),
            config: stick.config.clone(),
            operators: stick.operators.clone(),
            status,
            control,
            device_id: DeviceId::stored(""),
            session_no: 0,
            imsi: None,
        }
    }

    fn publish(&self, update: impl FnOnce(&mut ModemStatus)) {
        self.status.send_modify(update);
    }

    /// A `GET` through the stick's calls (counted by the breaker).
    async fn get(&mut self, path: &str) -> Result<Element, ClientError> {
        self.calls.get(path).await
    }

    /// A `POST` through the stick's calls (counted by the breaker).
    async fn post(&mut self, path: &str, body: &str) -> Result<Element, ClientError> {
        self.calls.post(path, body).await
    }

    /// Whether the breaker has tripped: the stick stopped answering.
    fn broken(&self) -> bool {
        self.calls.broken()
    }

    /// The session's life: identify, register and announce, sweep the inbox, serve, go
    /// offline.
    async fn run(mut self) -> Ended {
        self.publish(|it| it.state = ModemState::Initializing);
        let information = match self.get("device/information").await {
            Ok(it) => DeviceInformation::from_element(&it),
            Err(err) if err.class() == Some(ErrorClass::LoginRefused) => {
                return login_refused(err);
            }
            Err(ClientError::Api(err)) if err.class() == ErrorClass::LoginRequired => {
                return failed(
                    format!(
                        "the stick requires a login ({err}); give credentials in the URL or \
                         with --hilink-user/--hilink-password"
                    ),
                    false,
                );
            }
            Err(err) => return failed(err.to_string(), false),
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
            Err(error) => return failed(error, false),
        };
        self.imsi = information.imsi.clone();
        let device_id = self.device_id.clone();
        self.publish(|it| {
            it.device_id = Some(device_id.to_string());
            it.manufacturer = Some("Huawei".to_string());
            it.model = information.device_name.clone();
            it.revision = information.software_version.clone();
            it.imei = information.imei.clone();
            it.sim.imsi = information.imsi.clone();
            it.sim.iccid = information.iccid.clone();
            it.sim.phone_number = information.msisdn.clone();
            it.storage = Some("local".to_string());
            it.cnmi = None;
        });
        if let Err(err) = self.refresh().await
            && err.is_silence()
        {
            return failed(err.to_string(), false);
        }
        // The stick keeps no journal: jobs of earlier sessions end as outcome_unknown.
        let (session_no, mut outbound) = session::go_online(Identified {
            link: &self.link,
            status: self.status,
            kind: KIND,
            device_id: &self.device_id,
            capabilities: capabilities(),
            limits,
            radio: self.radio_status(),
        })
        .await;
        self.session_no = session_no;
        tracing::info!(url = %self.url, device = %self.device_id, session = session_no, "HiLink stick online");

        // Messages that arrived while the stick was away.
        let ended = match self.sweep_inbox().await {
            Err(err) if err.is_silence() && self.broken() => failed(err.to_string(), true),
            _ => self.serve(&mut outbound).await,
        };

        self.link.go_offline(&self.device_id, session_no).await;
        tracing::info!(url = %self.url, device = %self.device_id, "HiLink stick offline");
        ended
    }

    /// Serves the hub's jobs, the API's requests and the periodic refresh, poll and sweep, one
    /// at a time, until the session ends or the breaker trips.
    async fn serve(&mut self, outbound: &mut mpsc::Receiver<Outbound>) -> Ended {
        enum Own {
            Refresh,
            Poll,
            Sweep,
        }
        let mut refresh = session::ticker(self.config.refresh);
        let mut poll = session::ticker(self.config.poll);
        let mut sweep = session::ticker(self.config.sweep);
        loop {
            if self.broken() {
                return failed(self.calls.silence(), true);
            }
            let own = async {
                tokio::select! {
                    _ = refresh.tick() => Own::Refresh,
                    _ = poll.tick() => Own::Poll,
                    _ = sweep.tick() => Own::Sweep,
                }
            };
            let next = session::next(outbound, self.control, own, "HiLink", &self.url).await;
            let result = match next {
                Next::Offer(job) => {
                    self.send_job(job).await;
                    Ok(())
                }
                Next::Control(request) => {
                    self.serve_control(request).await;
                    Ok(())
                }
                Next::End(ended) => return ended,
                Next::Own(Own::Refresh) => self.refresh_and_report().await,
                Next::Own(Own::Poll) => self.poll().await,
                Next::Own(Own::Sweep) => self.sweep().await,
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
}

/// A failed session; `was_online` once the stick was registered with the hub.
fn failed(error: impl Into<String>, was_online: bool) -> Ended {
    Ended::Failed {
        error: error.into(),
        was_online,
    }
}

/// What the status adds when the stick refused the login.
const LOGIN_ADVICE: &str = "not retrying (the stick locks the account after a few failures): \
                            fix the credentials, then disconnect and connect again";

/// The end of a session whose login the stick refused: retrying could lock the account.
fn login_refused(err: ClientError) -> Ended {
    Ended::GaveUp {
        error: err.to_string(),
        advice: LOGIN_ADVICE,
        refusal: "the stick refused the login",
    }
}

/// What a stick offers the dispatcher.
fn capabilities() -> Capabilities {
    Capabilities {
        max_in_flight: 1,
        // The stick splits long texts itself.
        multipart: true,
        // The HiLink API gives no delivery reports the hub can match to a message.
        delivery_reports: false,
        incoming: true,
        ussd: false,
    }
}
