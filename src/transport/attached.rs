//! [`Modems`]: every serial modem and HiLink stick attached to this hub, by port (a serial
//! path or a stick's URL). Attach and detach, read status and SIM info, list and delete SMS
//! stored on a modem, send a raw SMS, USSD, balance, detection and hot-plug scanning.
//!
//! It keeps one entry per port; every call goes to the port's task over a channel, so no lock
//! is held across an `.await`. Serial ports are driven by [`crate::transport::modem`], sticks
//! by [`crate::transport::hilink`]; both answer the same [`Control`] requests with the same
//! [`ModemStatus`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::{mpsc, oneshot, watch};

use crate::store::{Change, ModemRefChange, Outcome};
use crate::transport::hilink::{self, HilinkConfig};
use crate::transport::link::DeviceLink;
use crate::transport::modem::{self, ModemConfig, detect};
use crate::transport::radio::supervisor::Attachment;
use crate::transport::radio::{
    Balance, Control, ModemError, ModemState, ModemStatus, Operators, RawSent, SimDetails,
    StoredSms, UssdAnswer,
};

pub use crate::transport::modem::detect::Detection;

#[derive(Clone)]
struct PortHandle {
    control: mpsc::Sender<Control>,
    status: watch::Receiver<ModemStatus>,
}

/// Every attached modem, by port.
pub struct Modems {
    config: ModemConfig,
    hilink: HilinkConfig,
    link: DeviceLink,
    operators: Arc<Operators>,
    ports: DashMap<String, PortHandle>,
    scanning: AtomicBool,
    /// HiLink sticks already logged, by USB device.
    hilink_seen: dashmap::DashSet<String>,
}

/// How long `connect` waits for a modem to come up before answering with its state.
const CONNECT_WAIT: Duration = Duration::from_secs(30);

impl Modems {
    /// No modems yet. Attached modems become devices through `link`.
    pub fn new(config: ModemConfig, hilink: HilinkConfig, link: DeviceLink) -> Modems {
        let operators = Arc::new(Operators::new(config.operators.clone()));
        Modems {
            config,
            hilink,
            link,
            operators,
            ports: DashMap::new(),
            scanning: AtomicBool::new(false),
            hilink_seen: dashmap::DashSet::new(),
        }
    }

    /// How serial modems are driven.
    pub fn config(&self) -> &ModemConfig {
        &self.config
    }

    /// How HiLink sticks are driven (their default login, among others).
    pub fn hilink_config(&self) -> &HilinkConfig {
        &self.hilink
    }

    /// The operator profiles in use.
    pub fn operators(&self) -> &Operators {
        &self.operators
    }

    /// Attaches, in the background, the serial modems at `ports`, the HiLink sticks at `urls`
    /// and the modems remembered from `POST /api/modems/connect` ([`Modems::remember`]), and
    /// starts the hot-plug scanner when `scan` is set: a slow or broken modem never delays the
    /// others or the hub's start.
    pub fn start(self: &Arc<Self>, ports: &[String], urls: &[String], scan: bool) {
        let modems = self.clone();
        let given: Vec<String> = ports.iter().chain(urls).cloned().collect();
        tokio::spawn(async move { modems.attach_remembered(&given).await });
        for port in ports {
            let modems = self.clone();
            let port = port.clone();
            tokio::spawn(async move {
                let status = modems.connect(&port).await;
                tracing::info!(%port, ?status, "modem attached");
            });
        }
        for url in urls {
            let modems = self.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let status = modems.connect(&url).await;
                tracing::info!(url = %status.port, state = ?status.state, error = ?status.last_error, "HiLink stick attached");
            });
        }
        if scan {
            self.spawn_scanner();
        }
    }

    /// Attaches the modems remembered from the API, except those `given` on the command line.
    /// A remembered serial port that is gone (unplugged while the hub was down, or renamed by
    /// the kernel) is not attached, so nothing retries it every few seconds: one warning, and it
    /// stays remembered for the next start; `POST /api/modems/disconnect` forgets it.
    async fn attach_remembered(self: &Arc<Self>, given: &[String]) {
        let remembered = match self.link.store().remembered_modems().await {
            Ok(it) => it,
            Err(error) => {
                tracing::error!(%error, "could not read the remembered modems");
                return;
            }
        };
        for port in remembered {
            if given.contains(&port) || self.ports.contains_key(&port) {
                continue;
            }
            if !hilink::is_url(&port) && !std::path::Path::new(&port).exists() {
                tracing::warn!(%port, "remembered modem port is gone; not attached (disconnect it through the API to forget it)");
                continue;
            }
            let modems = self.clone();
            tokio::spawn(async move {
                let status = modems.connect(&port).await;
                tracing::info!(port = %status.port, state = ?status.state, error = ?status.last_error, "remembered modem attached");
            });
        }
    }

    /// Remembers the modem at `port` (a serial path or a stick's URL without credentials), to
    /// attach it again at every start until [`Modems::forget`].
    pub async fn remember(&self, port: &str) {
        let change = Change::ModemRefs(ModemRefChange::RememberPort {
            port: port.to_string(),
        });
        if let Err(error) = self.link.store().apply(change).await {
            tracing::error!(%port, %error, "could not remember the modem");
        }
    }

    /// Forgets a remembered modem; whether it was remembered.
    pub async fn forget(&self, port: &str) -> bool {
        let change = Change::ModemRefs(ModemRefChange::ForgetPort {
            port: port.to_string(),
        });
        match self.link.store().apply(change).await {
            Ok(outcome) => outcome == Outcome::Applied,
            Err(error) => {
                tracing::error!(%port, %error, "could not forget the modem");
                false
            }
        }
    }

    /// Attaches the modem at `port` (its task keeps reopening the port until detached) and
    /// waits until it is ready or has failed once. An `http://` URL attaches a HiLink stick
    /// (see [`Modems::connect_hilink`]).
    pub async fn connect(&self, port: &str) -> ModemStatus {
        if hilink::is_url(port) {
            let config = &self.hilink;
            return match hilink::Target::parse(
                port,
                config.username.as_deref(),
                config.password.as_deref(),
            ) {
                Ok(target) => self.connect_hilink(target).await,
                Err(error) => ModemStatus {
                    transport: hilink::KIND.as_str(),
                    state: ModemState::Error,
                    last_error: Some(error),
                    ..ModemStatus::new(&hilink::redact(port))
                },
            };
        }
        let config = self.config.clone();
        let path = port.to_string();
        self.attach(port, ModemStatus::new(port), move |attachment| {
            tokio::spawn(modem::driver::run(path, config, attachment));
        })
        .await
    }

    /// Attaches a HiLink stick (its task keeps reconnecting, with backoff, until detached)
    /// and waits until it is ready or has failed once. Its key is the URL without credentials.
    pub async fn connect_hilink(&self, target: hilink::Target) -> ModemStatus {
        let key = target.url.clone();
        let initial = ModemStatus {
            transport: hilink::KIND.as_str(),
            ..ModemStatus::new(&key)
        };
        let config = self.hilink.clone();
        self.attach(&key, initial, move |attachment| {
            tokio::spawn(hilink::driver::run(target, config, attachment));
        })
        .await
    }

    /// Registers `key` and starts its task with `spawn` unless a live task already has it,
    /// then waits for the first outcome.
    async fn attach(
        &self,
        key: &str,
        initial: ModemStatus,
        spawn: impl FnOnce(Attachment),
    ) -> ModemStatus {
        // Bound first, so the map's read guard is gone before `insert`.
        let existing = self.ports.get(key).map(|it| it.clone());
        let (mut status, fresh) = match existing {
            Some(handle) if handle.status.borrow().state != ModemState::Disconnected => {
                (handle.status, false)
            }
            _ => {
                let (control, control_rx) = mpsc::channel(16);
                let (status_tx, status_rx) = watch::channel(initial);
                self.ports.insert(
                    key.to_string(),
                    PortHandle {
                        control,
                        status: status_rx.clone(),
                    },
                );
                spawn(Attachment {
                    link: self.link.clone(),
                    operators: self.operators.clone(),
                    status: status_tx,
                    control: control_rx,
                });
                (status_rx, true)
            }
        };
        // A new port answers with its first outcome; a port already retrying, once it is back.
        let _ = tokio::time::timeout(
            CONNECT_WAIT,
            status.wait_for(|it| match it.state {
                ModemState::Ready | ModemState::Disconnected => true,
                ModemState::Error => fresh,
                ModemState::Connecting | ModemState::Initializing => false,
            }),
        )
        .await;
        status.borrow().clone()
    }

    /// Detaches a modem (by port, device id or IMEI): its session ends and it goes offline.
    pub async fn disconnect(&self, id: &str) -> Result<ModemStatus, ModemError> {
        let (port, handle) = self.find(id)?;
        let mut status = handle.status.clone();
        let _ = handle.control.send(Control::Stop).await;
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            status.wait_for(|it| it.state == ModemState::Disconnected),
        )
        .await;
        self.ports.remove(&port);
        let snapshot = status.borrow().clone();
        Ok(snapshot)
    }

    /// Detaches every modem (at shutdown, before the registry closes the other devices), so
    /// no port task is left retrying.
    pub async fn stop_all(&self) {
        let handles: Vec<PortHandle> = self.ports.iter().map(|it| it.value().clone()).collect();
        for handle in &handles {
            let _ = handle.control.send(Control::Stop).await;
        }
        for handle in handles {
            let mut status = handle.status;
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                status.wait_for(|it| it.state == ModemState::Disconnected),
            )
            .await;
        }
        self.ports.clear();
    }

    /// Every attached modem.
    pub fn status_list(&self) -> Vec<ModemStatus> {
        let mut list: Vec<ModemStatus> = self
            .ports
            .iter()
            .map(|it| it.status.borrow().clone())
            .collect();
        list.sort_by(|a, b| a.port.cmp(&b.port));
        list
    }

    /// One modem, by port (path or file name), device id or IMEI.
    pub fn status(&self, id: &str) -> Result<ModemStatus, ModemError> {
        let (_, handle) = self.find(id)?;
        let snapshot = handle.status.borrow().clone();
        Ok(snapshot)
    }

    /// The SIM of one modem.
    pub fn sim_info(&self, id: &str) -> Result<SimDetails, ModemError> {
        self.status(id).map(|it| it.sim)
    }

    /// Messages stored on the modem's storage.
    pub async fn list_sms(&self, id: &str) -> Result<Vec<StoredSms>, ModemError> {
        self.ask(id, Control::ListSms).await
    }

    /// Deletes a stored message; [`ModemError::SmsNotFound`] when the index holds none.
    pub async fn delete_sms(&self, id: &str, index: u32) -> Result<(), ModemError> {
        self.ask(id, |reply| Control::DeleteSms(index, reply)).await
    }

    /// Sends an SMS straight through the modem, outside the message queue (for diagnostics:
    /// nothing is stored, there is no retry).
    pub async fn send_raw(&self, id: &str, to: &str, text: &str) -> Result<RawSent, ModemError> {
        let (to, text) = (to.to_string(), text.to_string());
        self.ask(id, |reply| Control::SendRaw { to, text, reply })
            .await
    }

    /// Runs a USSD code (`*100#`) and returns the network's answer.
    pub async fn ussd(&self, id: &str, code: &str) -> Result<UssdAnswer, ModemError> {
        let code = code.trim().to_string();
        if code.is_empty()
            || code.len() > 160
            || !code
                .chars()
                .all(|c| c.is_ascii_digit() || "*#+".contains(c))
        {
            return Err(ModemError::Invalid(format!(
                "{code:?} is not a USSD code (digits, * and #)"
            )));
        }
        self.ask(id, |reply| Control::Ussd { code, reply }).await
    }

    /// Checks the balance with the USSD code of the SIM's operator.
    pub async fn balance(&self, id: &str) -> Result<Balance, ModemError> {
        self.ask(id, Control::Balance).await
    }

    /// Serial ports that answer `AT`, one per modem (probes ports not already attached), and
    /// the sticks in HiLink (network-only) mode, which have no AT port (logged once each).
    pub async fn detect(&self) -> Detection {
        let attached: Vec<String> = self.ports.iter().map(|it| it.key().clone()).collect();
        let found = detect::detect(
            &self.config.host,
            &self.config.allow,
            &attached,
            self.config.timeouts.command,
        )
        .await;
        for stick in &found.hilink {
            if self.hilink_seen.insert(stick.usb_device.clone()) {
                tracing::info!(
                    usb = %stick.usb_device,
                    id = %format!("{}:{}", stick.vid, stick.pid),
                    net = ?stick.net_interfaces,
                    "Huawei stick in HiLink (network-only) mode: it has no AT port to drive"
                );
            }
        }
        found
    }

    /// Detects modems and attaches the new ones; returns their states.
    pub async fn scan(&self) -> Vec<ModemStatus> {
        let mut attached = Vec::new();
        for found in self.detect().await.ports {
            if !self.ports.contains_key(&found.port) {
                attached.push(self.connect(&found.port).await);
            }
        }
        attached
    }

    /// Re-scans every `scan_interval` for hot-plugged modems, until the hub stops. Starting it
    /// twice does nothing.
    pub fn spawn_scanner(self: &Arc<Self>) {
        if self.scanning.swap(true, Ordering::SeqCst) {
            return;
        }
        let modems = Arc::downgrade(self);
        let interval = self.config.scan_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                let Some(modems) = modems.upgrade() else {
                    return;
                };
                let attached = modems.scan().await;
                for status in attached {
                    tracing::info!(port = %status.port, state = ?status.state, "modem found by scan");
                }
            }
        });
    }

    fn find(&self, id: &str) -> Result<(String, PortHandle), ModemError> {
        self.ports
            .iter()
            .find(|it| it.key() == id || it.status.borrow().matches(id))
            .map(|it| (it.key().clone(), it.value().clone()))
            .ok_or_else(|| ModemError::NotFound(id.to_string()))
    }

    async fn ask<T>(
        &self,
        id: &str,
        request: impl FnOnce(oneshot::Sender<Result<T, ModemError>>) -> Control,
    ) -> Result<T, ModemError> {
        let (_, handle) = self.find(id)?;
        let (reply, answer) = oneshot::channel();
        handle
            .control
            .send(request(reply))
            .await
            .map_err(|_| ModemError::NotReady("its task has stopped".to_string()))?;
        answer
            .await
            .map_err(|_| ModemError::NotReady("its task has stopped".to_string()))?
    }
}
