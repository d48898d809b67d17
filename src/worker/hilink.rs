//! One task per HiLink stick of the worker (`--modem http://192.168.8.1`): the hub's own
//! stick calls ([`crate::transport::hilink::calls`]: client, circuit breaker, sending to an
//! outcome, the inbox sweep, radio, USSD), reporting to the worker's job rules
//! ([`super::jobs`]) through the same [`ModemEvent`]s as a serial modem.
//!
//! Life of a stick: identify (`device/information`) → read the radio → take what waits in the
//! inbox → serve (jobs, USSD, the periodic refresh, notification poll and sweep) until the
//! breaker trips → report the SIM unregistered → again after a backoff that doubles up to
//! `max_backoff`. A refused login is not retried (sticks lock the account after a few
//! failures): from then on the stick's jobs fail temporary, so the hub sends them elsewhere.
//!
//! Sending: the job rules' permit ([`ModemEvent::Start`], `sending` on disk) comes before
//! `send-sms`. The stick gives no delivery reports the worker could match, so its `sent` says
//! none will come. An incoming message is deleted from the stick only after the journal has
//! it, under an id derived from the stick's record, so a message taken twice (a crash between
//! the journal and the delete) is stored once by the hub.
//!
//! Must never: call `send-sms` without a permit, or delete a message the journal lacks.

use std::sync::Arc;

use smshub_protocol::device::{SimInfo, SimStatus};
use smshub_protocol::gsm;
use smshub_protocol::hilink::ErrorClass;
use smshub_protocol::hilink::api::{DeviceInformation, StoredMessage};
use tokio::sync::{mpsc, oneshot};

use super::jobs::format_ms;
use super::modem::{self, ModemEvent, ModemHandle, ModemJob, UssdRequest};
use crate::transport::hilink::calls::{
    Calls, Keep, Radio, backoff, external_id, signal_level, stick_time,
};
use crate::transport::hilink::client::ClientError;
use crate::transport::hilink::{HilinkConfig, Target};
use crate::transport::radio::Operators;

/// Starts the task of the stick at `target`, SIM slot `slot`.
pub fn spawn(
    slot: u8,
    target: Target,
    config: HilinkConfig,
    events: mpsc::Sender<ModemEvent>,
    operators: Arc<Operators>,
) -> ModemHandle {
    let (handle, jobs, ussd) = modem::channels(&events);
    tokio::spawn(run(slot, target, config, events, jobs, ussd, operators));
    handle
}

/// How a session with the stick ended.
enum Ended {
    /// The worker is stopping.
    Stopping,
    /// The stick refused the login: not retried.
    GaveUp(String),
    Failed(String),
}

async fn run(
    slot: u8,
    target: Target,
    config: HilinkConfig,
    events: mpsc::Sender<ModemEvent>,
    mut jobs: mpsc::UnboundedReceiver<ModemJob>,
    mut ussd: mpsc::Receiver<UssdRequest>,
    operators: Arc<Operators>,
) {
    let mut calls = Calls::new(&target, config.clone());
    let mut sim = SimInfo {
        slot,
        ..SimInfo::default()
    };
    let mut failures: u32 = 0;
    loop {
        calls.reset();
        let mut stick = Stick {
            slot,
            calls: &mut calls,
            events: events.clone(),
            operators: operators.clone(),
            sim: sim.clone(),
            status: down(slot),
            imsi: None,
            served: false,
        };
        let ended = stick.serve(&mut jobs, &mut ussd).await;
        let served = stick.served;
        sim = stick.sim.clone();
        let gave_up = match ended {
            Ended::Stopping => return,
            Ended::GaveUp(error) => {
                tracing::error!(url = %target.url, slot, %error, "HiLink login refused; not retrying (the stick locks the account after a few failures)");
                true
            }
            Ended::Failed(error) => {
                tracing::warn!(url = %target.url, slot, %error, "HiLink session ended; reconnecting");
                false
            }
        };
        let told = events
            .send(ModemEvent::Status {
                slot,
                sim: sim.clone(),
                status: down(slot),
            })
            .await;
        if told.is_err() {
            return;
        }
        if gave_up {
            refuse_all(&events, &mut jobs, &mut ussd).await;
            return;
        }
        failures = if served { 1 } else { failures + 1 };
        tokio::time::sleep(backoff(config.retry, config.max_backoff, failures)).await;
    }
}

/// A stick given up on: its jobs fail temporary (another device will send them) and USSD
/// requests are refused, until the worker stops.
async fn refuse_all(
    events: &mpsc::Sender<ModemEvent>,
    jobs: &mut mpsc::UnboundedReceiver<ModemJob>,
    ussd: &mut mpsc::Receiver<UssdRequest>,
) {
    const WHY: &str = "the HiLink stick refused the login";
    loop {
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { return };
                let failed = ModemEvent::Failed {
                    id: job.id,
                    code: "sim_unavailable".to_string(),
                    temporary: true,
                    reason: WHY.to_string(),
                };
                if events.send(failed).await.is_err() {
                    return;
                }
            }
            request = ussd.recv() => {
                let Some(request) = request else { return };
                let _ = request.reply.send(Err(WHY.to_string()));
            }
        }
    }
}

fn down(slot: u8) -> SimStatus {
    SimStatus {
        slot,
        registered: false,
        ..SimStatus::default()
    }
}

/// One session with a stick.
struct Stick<'a> {
    slot: u8,
    calls: &'a mut Calls,
    events: mpsc::Sender<ModemEvent>,
    operators: Arc<Operators>,
    sim: SimInfo,
    status: SimStatus,
    imsi: Option<String>,
    /// The session got as far as serving (resets the backoff).
    served: bool,
}

impl Stick<'_> {
    async fn serve(
        &mut self,
        jobs: &mut mpsc::UnboundedReceiver<ModemJob>,
        ussd: &mut mpsc::Receiver<UssdRequest>,
    ) -> Ended {
        let information = match self.calls.get("device/information").await {
            Ok(it) => DeviceInformation::from_element(&it),
            Err(err) if err.class() == Some(ErrorClass::LoginRefused) => {
                return Ended::GaveUp(err.to_string());
            }
            Err(ClientError::Api(err)) if err.class() == ErrorClass::LoginRequired => {
                return Ended::Failed(format!(
                    "the stick requires a login ({err}); give the credentials in the URL \
                     (http://admin:password@192.168.8.1)"
                ));
            }
            Err(err) => return Ended::Failed(err.to_string()),
        };
        self.imsi = information.imsi.clone();
        self.sim.iccid = information.iccid.clone().or(self.sim.iccid.take());
        self.sim.phone_number = information.msisdn.clone().or(self.sim.phone_number.take());
        if let Err(err) = self.refresh(true).await {
            return Ended::Failed(err.to_string());
        }
        self.served = true;
        tracing::info!(url = %self.calls.url, slot = self.slot, "HiLink stick ready");
        // Messages that arrived while the stick was away.
        if let Err(err) = self.sweep(true).await
            && self.calls.broken()
        {
            return Ended::Failed(err.to_string());
        }
        let config = self.calls.config.clone();
        let mut refresh = tokio::time::interval(config.refresh);
        let mut poll = tokio::time::interval(config.poll);
        let mut sweep = tokio::time::interval(config.sweep);
        for ticker in [&mut refresh, &mut poll, &mut sweep] {
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.reset();
        }
        enum Next {
            Job(ModemJob),
            Ussd(UssdRequest),
            Refresh,
            Poll,
            Sweep,
            Gone,
        }
        loop {
            if self.calls.broken() {
                return Ended::Failed(self.calls.silence());
            }
            let next = tokio::select! {
                job = jobs.recv() => job.map_or(Next::Gone, Next::Job),
                request = ussd.recv() => request.map_or(Next::Gone, Next::Ussd),
                _ = refresh.tick() => Next::Refresh,
                _ = poll.tick() => Next::Poll,
                _ = sweep.tick() => Next::Sweep,
            };
            let result = match next {
                Next::Gone => return Ended::Stopping,
                Next::Job(job) => {
                    self.send_job(job).await;
                    Ok(())
                }
                Next::Ussd(request) => {
                    let answer = self.calls.ussd(&request.code).await;
                    let _ = request.reply.send(
                        answer
                            .map(|it| it.text.unwrap_or_default())
                            .map_err(|err| err.to_string()),
                    );
                    Ok(())
                }
                Next::Refresh => self.refresh(false).await,
                Next::Poll => match self.calls.unread().await {
                    Ok(true) => self.sweep(false).await,
                    Ok(false) => Ok(()),
                    Err(err) => Err(err),
                },
                Next::Sweep => self.sweep(false).await,
            };
            match result {
                Err(err) if err.class() == Some(ErrorClass::LoginRefused) => {
                    return Ended::GaveUp(err.to_string());
                }
                Err(err) => {
                    tracing::debug!(url = %self.calls.url, error = %err, "HiLink call failed")
                }
                Ok(()) => {}
            }
        }
    }

    /// Sends one committed job, if the job rules still permit it.
    async fn send_job(&mut self, job: ModemJob) {
        if !modem::permitted(&self.events, &job.id).await {
            return;
        }
        let parts = gsm::segment(&job.text).parts as u32;
        let event = match self
            .calls
            .send_text(&job.to, &job.text, self.status.registered)
            .await
        {
            // No references: a stick's status reports cannot be matched, none will come.
            Ok(()) => ModemEvent::Sent {
                id: job.id,
                parts,
                references: Vec::new(),
            },
            Err(failure) => ModemEvent::Failed {
                id: job.id,
                code: failure.code.as_str().to_string(),
                temporary: failure.temporary,
                reason: failure.message,
            },
        };
        let _ = self.events.send(event).await;
    }

    /// Reads the radio and tells the job rules when it changed (`always`: tell anyway).
    async fn refresh(&mut self, always: bool) -> Result<(), ClientError> {
        let radio = self.calls.radio().await?;
        let profile = radio.home_operator(self.imsi.as_deref(), &self.operators);
        self.sim.operator = profile
            .map(|it| it.name.clone())
            .or(self.sim.operator.take());
        self.sim.mcc_mnc = profile.map(|it| it.mcc_mnc.clone()).or_else(|| {
            self.imsi
                .as_ref()
                .and_then(|it| it.get(..5))
                .map(str::to_string)
        });
        let Radio {
            monitoring,
            signal,
            plmn,
        } = radio;
        let status = SimStatus {
            slot: self.slot,
            signal_dbm: signal.rssi,
            signal_level: signal_level(signal.rssi, monitoring.signal_percent()),
            network: monitoring.network_type.map(str::to_string),
            registered: monitoring.registered(),
            operator: plmn.name(),
        };
        modem::tell_status(
            &self.events,
            self.slot,
            &self.sim,
            &mut self.status,
            status,
            always,
        )
        .await;
        Ok(())
    }

    /// Takes what waits in the inbox (`all`: read it whatever `sms-count` says).
    async fn sweep(&mut self, all: bool) -> Result<(), ClientError> {
        let mut journal = Journal {
            events: self.events.clone(),
            slot: self.slot,
        };
        if all {
            self.calls.sweep_inbox(&mut journal).await
        } else {
            self.calls.sweep(&mut journal).await
        }
    }
}

/// The worker's journal, where a swept message is kept.
struct Journal {
    events: mpsc::Sender<ModemEvent>,
    slot: u8,
}

impl Keep for Journal {
    fn keep(&mut self, message: &StoredMessage) -> impl Future<Output = bool> + Send {
        journal(self.events.clone(), self.slot, message.clone())
    }
}

/// Hands a received message to the journal; `true` once it is stored there.
async fn journal(events: mpsc::Sender<ModemEvent>, slot: u8, message: StoredMessage) -> bool {
    let (stored, done) = oneshot::channel();
    let sent = events
        .send(ModemEvent::Incoming {
            slot,
            key: Some(external_id(&message)),
            from: message.phone.clone(),
            text: message.content.clone(),
            received_at: stick_time(&message.date).map(format_ms),
            stored,
        })
        .await;
    sent.is_ok() && done.await.is_ok()
}
