//! [`DeviceLink`]: everything a transport may touch of the hub, and the one way every
//! transport (phones, serial modems, HiLink sticks) becomes a device: find or create the
//! device, register and announce a session, commit the acceptance and the outcome of jobs,
//! store incoming messages, report status, go offline.
//!
//! A transport gets a `DeviceLink` and nothing else: the store, the registry, the dispatcher,
//! the retry policy for temporary failures and the heartbeat interval. It never sees the HTTP
//! API, API keys, back-pressure or the modems of other transports.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use smshub_protocol::device::{Capabilities, SimInfo, Status};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::auth;
use crate::dispatch::core::JobEnd;
use crate::dispatch::limits::Limits;
use crate::dispatch::{Dispatcher, Event};
use crate::domain::FailureCode;
use crate::domain::{DeviceId, DeviceKind, now_millis};
use crate::registry::{DeviceRegistry, LiveDevice, Outbound};
use crate::store::{
    Change, Committed, EventType, NewEvent, Outcome, Retry, SeenSim, SimCardChange, Store,
    StoreError,
};

/// The hub as a transport sees it; cheap to clone.
#[derive(Clone)]
pub struct DeviceLink {
    store: Store,
    registry: Arc<DeviceRegistry>,
    dispatcher: Dispatcher,
    retry: Retry,
    heartbeat_s: u32,
    /// Incoming SMS each device may report per minute (`None`: no limit), shared by every
    /// transport and kept across a device's sessions.
    incoming: Option<Arc<DefaultKeyedRateLimiter<DeviceId>>>,
}

impl DeviceLink {
    /// A link to `store`, `registry` and `dispatcher`; temporary failures are retried by
    /// `retry`, devices heartbeat every `heartbeat_s` seconds.
    pub fn new(
        store: Store,
        registry: Arc<DeviceRegistry>,
        dispatcher: Dispatcher,
        retry: Retry,
        heartbeat_s: u32,
    ) -> DeviceLink {
        DeviceLink {
            store,
            registry,
            dispatcher,
            retry,
            heartbeat_s,
            incoming: None,
        }
    }

    /// The same link, with at most `per_minute` incoming SMS stored per device and minute (in
    /// a burst or spread out); 0 means no limit.
    pub fn with_incoming_per_minute(mut self, per_minute: u32) -> DeviceLink {
        self.incoming = NonZeroU32::new(per_minute)
            .map(|it| Arc::new(RateLimiter::keyed(Quota::per_minute(it))));
        self
    }

    /// Whether `device` may report one more incoming SMS now (it is counted if so).
    pub fn incoming_allowed(&self, device: &DeviceId) -> bool {
        self.incoming
            .as_ref()
            .is_none_or(|it| it.check_key(device).is_ok())
    }

    /// The store, for changes a transport commits itself.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Seconds between device heartbeats.
    pub fn heartbeat_s(&self) -> u32 {
        self.heartbeat_s
    }

    /// Submits changes to the writer, in order, without waiting for their commit.
    pub async fn submit(&self, changes: Vec<Change>) -> Result<Committed, StoreError> {
        self.store.submit(changes).await
    }

    /// The hub device named `{kind}-{identity}` and its stored limits; the device is created
    /// the first time it is seen. `what` names the device in the log ("modem").
    pub async fn device_for(
        &self,
        kind: DeviceKind,
        identity: &str,
        what: &str,
    ) -> Result<(DeviceId, Option<Limits>), String> {
        let name = format!("{kind}-{identity}");
        let devices = self
            .store
            .list_devices()
            .await
            .map_err(|it| it.to_string())?;
        if let Some(found) = devices
            .into_iter()
            .find(|it| it.kind == kind && it.name == name)
        {
            return Ok((found.id, parse_limits(found.limits)));
        }
        let created = auth::create_device(&self.store, &name, kind)
            .await
            .map_err(|it| it.to_string())?;
        tracing::info!(device = %created.id, %name, "new {what} registered as a device");
        Ok((created.id, None))
    }

    /// Records the model, version and SIMs the device reported, without waiting for the
    /// commit.
    pub async fn hello(
        &self,
        device_id: &DeviceId,
        model: Option<String>,
        app_version: Option<String>,
        sims: &[SimInfo],
    ) {
        let changes = hello_changes(device_id, model, app_version, sims);
        let _ = self.store.submit(changes).await;
    }

    /// Registers a session in the registry (closing the one it replaces) and returns its
    /// number. The device gets no job before [`DeviceLink::announce`].
    pub fn register(&self, live: LiveDevice, tx: mpsc::Sender<Outbound>) -> u64 {
        self.registry.connect(live, tx)
    }

    /// Tells the dispatcher the session is up and may get jobs. `held` is the device's
    /// journal: the jobs it holds from earlier sessions (`Some(empty)` for a device that keeps
    /// none, whose unreported accepted jobs then end as `outcome_unknown`).
    pub fn announce(
        &self,
        device_id: &DeviceId,
        session: u64,
        capabilities: Capabilities,
        limits: Option<Limits>,
        held: Option<Vec<Uuid>>,
    ) {
        self.dispatcher.send(Event::Connected {
            device_id: device_id.clone(),
            session,
            capabilities,
            limits,
            held,
        });
    }

    /// Ends a session: out of the registry (recording when the device was last seen, if this
    /// session was still the registered one), then tells the dispatcher.
    pub async fn go_offline(&self, device_id: &DeviceId, session: u64) {
        if self.registry.disconnect(device_id, session) {
            let _ = self
                .store
                .submit(vec![
                    Change::DeviceSeen {
                        id: device_id.clone(),
                        at: now_millis(),
                    },
                    Change::Emit(vec![NewEvent::device(
                        EventType::DeviceOffline,
                        device_id,
                        None,
                    )]),
                ])
                .await;
        }
        self.dispatcher.send(Event::Disconnected {
            device_id: device_id.clone(),
            session,
        });
    }

    /// Records that the session showed a sign of life.
    pub fn touch(&self, device_id: &DeviceId, session: u64) {
        self.registry.touch(device_id, session);
    }

    /// Hands a status report to the registry and the dispatcher.
    /// A change of its condition (a low battery, a SIM without service, or their end) is
    /// recorded as a `device.status` event.
    pub fn report_status(&self, device_id: &DeviceId, session: u64, status: Status) {
        let now = now_millis();
        let mut before = None;
        self.registry.update(device_id, session, |it| {
            before = Some(condition(it.status.as_ref()));
            it.status = Some(status.clone());
            it.last_seen_at = now;
        });
        let after = condition(Some(&status));
        if let Some(before) = before
            && before != after
        {
            let payload = serde_json::json!({
                "low_battery": after.0,
                "no_signal": after.1,
                "battery": status.battery.map(|it| it.level),
                "charging": status.battery.map(|it| it.charging),
            });
            let event = NewEvent::device(EventType::DeviceStatus, device_id, Some(payload));
            let store = self.store.clone();
            tokio::spawn(async move {
                let _ = store.submit(vec![Change::Emit(vec![event])]).await;
            });
        }
        self.dispatcher.send(Event::Status {
            device_id: device_id.clone(),
            session,
            status,
        });
    }

    /// The device owns these jobs: their acceptance is committed.
    pub fn owned(&self, device_id: &DeviceId, ids: Vec<Uuid>) {
        self.dispatcher.send(Event::Owned {
            device_id: device_id.clone(),
            ids,
        });
    }

    /// These offers are not the device's (the store refused them): offer them elsewhere.
    pub fn offer_refused(&self, device_id: &DeviceId, ids: Vec<Uuid>) {
        self.dispatcher.send(Event::OfferRefused {
            device_id: device_id.clone(),
            ids,
        });
    }

    /// The device refused these offers, for `reason`.
    pub fn rejected(&self, device_id: &DeviceId, ids: Vec<Uuid>, reason: String) {
        self.dispatcher.send(Event::Rejected {
            device_id: device_id.clone(),
            ids,
            reason,
        });
    }

    /// Commits the acceptance of job `id` by `device_id` and tells the dispatcher; whether
    /// the job is this device's to send (`false`: cancelled or reassigned, or the store
    /// failed, and nothing must be sent).
    pub async fn accept(&self, device_id: &DeviceId, id: Uuid, what: &str) -> bool {
        let change = Change::Accept {
            id,
            device: device_id.clone(),
        };
        match self.store.apply(change).await {
            Ok(Outcome::Applied | Outcome::Unchanged) => {
                self.owned(device_id, vec![id]);
                true
            }
            Ok(Outcome::Refused | Outcome::Requeued) => {
                // Not this device's any more (cancelled, reassigned): nothing is sent.
                self.offer_refused(device_id, vec![id]);
                false
            }
            Err(err) => {
                tracing::error!(error = %err, "could not record a {what}'s acceptance");
                self.rejected(device_id, vec![id], "hub_error".into());
                false
            }
        }
    }

    /// The change that fails message `id` on `device_id` with `code`; a temporary failure
    /// goes back to the queue by the retry policy.
    pub fn failure(
        &self,
        id: Uuid,
        device_id: &DeviceId,
        code: FailureCode,
        message: String,
        temporary: bool,
    ) -> Change {
        Change::Failed {
            id,
            device: Some(device_id.clone()),
            code,
            message,
            temporary,
            retry: temporary.then_some(self.retry),
        }
    }

    /// Tells the dispatcher how job `id` ended, from the outcome of committing its report
    /// (`code` is `None` for sent, the error code for failed). When the commit failed, the
    /// job stays accepted and ends as outcome unknown when the device reconnects.
    pub fn finish(
        &self,
        device_id: &DeviceId,
        id: Uuid,
        outcome: Result<Outcome, StoreError>,
        code: Option<FailureCode>,
        what: &str,
    ) {
        let end = match (outcome, code) {
            (Ok(Outcome::Applied), None) => JobEnd::Sent,
            (Ok(Outcome::Applied), Some(code)) => JobEnd::Failed { code },
            (Ok(Outcome::Requeued), Some(code)) => JobEnd::Retried { code },
            (Ok(_), _) => return,
            (Err(err), _) => {
                tracing::error!(error = %err, %id, "could not record a {what}'s report");
                return;
            }
        };
        self.finished(device_id, id, end);
    }

    /// Tells the dispatcher that job `id` no longer occupies the device.
    pub fn finished(&self, device_id: &DeviceId, id: Uuid, end: JobEnd) {
        self.dispatcher.send(Event::Finished {
            device_id: device_id.clone(),
            id,
            end,
        });
    }
}

/// The changes that record the model, version and SIMs a device reported: every SIM becomes
/// a managed card (or updates its card).
pub fn hello_changes(
    device_id: &DeviceId,
    model: Option<String>,
    app_version: Option<String>,
    sims: &[SimInfo],
) -> Vec<Change> {
    let seen = sims
        .iter()
        .map(|it| SeenSim {
            slot: it.slot,
            iccid: it.iccid.clone().filter(|it| !it.is_empty()),
            operator: it.operator.clone(),
            phone_number: it.phone_number.clone(),
        })
        .collect::<Vec<_>>();
    let sims = serde_json::to_value(sims).unwrap_or_default();
    let mut changes = vec![Change::DeviceHello {
        id: device_id.clone(),
        model,
        app_version,
        sims,
    }];
    if !seen.is_empty() {
        changes.push(Change::SimCards(SimCardChange::Seen {
            device: device_id.to_string(),
            sims: seen,
        }));
    }
    changes
}

/// A device's stored limits; unreadable ones count as none (the hub's defaults apply).
pub fn parse_limits(stored: Option<serde_json::Value>) -> Option<Limits> {
    stored.and_then(|it| serde_json::from_value(it).ok())
}

/// Battery at or under this percent, not charging, is low.
const LOW_BATTERY_PERCENT: u8 = 15;

/// (low battery, a SIM without service) in a status report; a device without one has neither.
fn condition(status: Option<&Status>) -> (bool, bool) {
    let Some(status) = status else {
        return (false, false);
    };
    let low = status
        .battery
        .is_some_and(|it| it.level <= LOW_BATTERY_PERCENT && !it.charging);
    let no_signal = status.sims.iter().any(|it| !it.registered);
    (low, no_signal)
}
