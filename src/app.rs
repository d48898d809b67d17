//! Building and running a hub: open the store, rebuild the dispatcher, wire the transports
//! and the API to them, bind the listener, serve until asked to stop, then shut down in
//! order. This module only wires: it holds no logic of its own.
//!
//! [`App::build`] binds before it returns, so tests can ask for port 0 and read
//! [`App::port`]. Shutdown: stop accepting, finish HTTP requests in flight, close every
//! device socket with "going away", then wait for the store to commit what it holds.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use warp::Filter;

use crate::api::credential::Access;
use crate::api::{self, ApiConfig, ApiState};
use crate::auth::oidc::{Oidc, OidcConfig};
use crate::auth::pairing::Pairings;
use crate::auth::tokens::{HubTokens, JWT_SECRET_NAME, new_jwt_secret};
use crate::auth::users::{FirstAdmin, Lockout, first_admin};
use crate::auth::{ApiKeys, KeyLimits, RateLimits};
use crate::dispatch::core::DispatchConfig;
use crate::dispatch::{Backlog, Clock, Dispatcher};
use crate::events::EventsConfig;
use crate::registry::{CloseReason, DeviceRegistry};
use crate::server::{self, Connections, ServerLimits, Tls, TlsFiles};
use crate::store::{AccessChange, Change};
use crate::store::{Durability, Store};
use crate::transport::android;
use crate::transport::attached::Modems;
use crate::transport::gateway_app;
use crate::transport::hilink::HilinkConfig;
use crate::transport::link::DeviceLink;
use crate::transport::modem::ModemConfig;
use crate::webhooks::Webhooks;

/// Everything a hub needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The epoch a cluster's leader took (`cluster::run` sets it): its writes commit only
    /// while the epoch is still its own. `None` for a single node.
    pub fence: Option<i64>,
    /// `sqlite://PATH` or `postgres://...`.
    pub database_url: String,
    pub durability: Durability,
    /// Region for numbers written without `+`, e.g. `DZ`.
    pub default_region: Option<phonenumber::country::Id>,
    /// Longest accepted text, in SMS parts.
    pub max_parts: u32,
    /// How recipients' numbers are checked (`--phone-validation`).
    pub phone_validation: crate::api::send::PhoneValidation,
    /// Seconds between device heartbeats.
    pub heartbeat_s: u32,
    /// Incoming SMS a device may report per minute (0: no limit).
    pub incoming_per_minute: u32,
    /// Leases, retries, breaker, default SIM limits, scoring.
    pub dispatch: DispatchConfig,
    /// Most messages waiting for a device, in all and per API key; beyond, `503`.
    pub max_queued: usize,
    pub max_queued_per_key: usize,
    /// A bearer token `GET /metrics` requires; open without.
    pub metrics_token: Option<String>,
    /// Serial modems: timeouts, refresh and sweep intervals, SIM PIN, allow-list, ...
    pub modems: ModemConfig,
    /// Serial ports with a modem to attach at start (e.g. `/dev/ttyUSB2`).
    pub modem_ports: Vec<String>,
    /// Detect modems and watch for hot-plugged ones.
    pub modem_scan: bool,
    /// HiLink sticks to attach at start (`http://192.168.8.1`, credentials as userinfo).
    pub hilinks: Vec<String>,
    /// HiLink sticks: timeouts, polling, backoff, login.
    pub hilink: HilinkConfig,
    /// How long HTTP requests in flight get to finish at shutdown before their connections
    /// are closed, whatever the clients do.
    pub shutdown_grace: Duration,
    /// Connection caps (API and devices apart) and header and body timeouts.
    pub server: ServerLimits,
    /// How long a device's WebSocket may stay open without `hello` (then closed with 4003).
    pub hello_timeout: Duration,
    /// Default rate limits of every API key and user (0 or `None`: no limit).
    pub rate_limits: KeyLimits,
    /// Session cookies are marked `Secure` (set when the hub serves TLS).
    pub cookie_secure: bool,
    /// Make the first admin at start if the hub has no user (`smshub serve` does).
    pub first_admin: bool,
    /// The first admin's password; `None`: generated and printed once.
    pub admin_password: Option<String>,
    /// Serve HTTPS and `wss://` with this certificate and key; plain HTTP without.
    pub tls: Option<TlsFiles>,
    /// Origins allowed to call the API from a browser (`*`: any); empty: CORS off.
    pub cors_origins: Vec<String>,
    /// Accept bearer JWTs of this OpenID provider.
    pub oidc: Option<OidcConfig>,
    /// Event retention, webhooks, MQTT.
    pub events: EventsConfig,
    /// The MQTT bridge (`--mqtt-url`); none without.
    pub mqtt: Option<crate::mqtt::MqttConfig>,
}

impl Config {
    /// A configuration for a hub on `listen` with database `database_url` and defaults
    /// for everything else.
    pub fn new(listen: SocketAddr, database_url: String) -> Config {
        Config {
            listen,
            fence: None,
            database_url,
            durability: Durability::Full,
            default_region: None,
            max_parts: 10,
            phone_validation: crate::api::send::PhoneValidation::Strict,
            heartbeat_s: 30,
            incoming_per_minute: 600,
            dispatch: DispatchConfig::default(),
            max_queued: 200_000,
            max_queued_per_key: 100_000,
            metrics_token: None,
            modems: ModemConfig::default(),
            modem_ports: Vec::new(),
            modem_scan: false,
            hilinks: Vec::new(),
            hilink: HilinkConfig::default(),
            shutdown_grace: Duration::from_secs(10),
            server: ServerLimits::default(),
            hello_timeout: Duration::from_secs(10),
            rate_limits: KeyLimits::default(),
            cookie_secure: false,
            first_admin: false,
            admin_password: None,
            tls: None,
            cors_origins: Vec::new(),
            oidc: None,
            events: EventsConfig::default(),
            mqtt: None,
        }
    }
}

/// A hub bound to its address, ready to run.
pub struct App {
    config: Config,
    store: Store,
    registry: Arc<DeviceRegistry>,
    link: DeviceLink,
    api: Arc<ApiState>,
    listener: TcpListener,
    addr: SocketAddr,
    first_admin: Option<FirstAdmin>,
    tls: Option<Arc<Tls>>,
}

impl App {
    /// Opens and migrates the database, rebuilds queues from it and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let listener = TcpListener::bind(config.listen).await?;
        App::build_on(config, listener).await
    }

    /// [`App::build`] on a listener already bound (a cluster node that led no hub until now
    /// serves on the listener it relayed from).
    pub async fn build_on(config: Config, listener: TcpListener) -> anyhow::Result<App> {
        crate::telemetry::install();
        let store =
            Store::open_fenced(&config.database_url, config.durability, config.fence).await?;
        store.events().set_retention(config.events.retention);
        let registry = Arc::new(DeviceRegistry::default());
        let backlog = Arc::new(Backlog::default());
        let clock = Clock::new();
        let dispatcher = Dispatcher::start(
            store.clone(),
            registry.clone(),
            config.dispatch.clone(),
            backlog.clone(),
            clock,
        )
        .await?;
        let tls = config.tls.clone().map(Tls::load).transpose()?;
        if tls.is_none() && !config.listen.ip().is_loopback() {
            tracing::warn!(
                listen = %config.listen,
                "listening beyond this machine without TLS: keys, tokens and messages travel in \
                 clear text; use --tls-cert and --tls-key, or a TLS proxy in front"
            );
        }
        let oidc = config.oidc.clone().map(Oidc::new).transpose()?;
        let addr = listener.local_addr()?;
        let link = DeviceLink::new(
            store.clone(),
            registry.clone(),
            dispatcher.clone(),
            config.dispatch.retry(),
            config.heartbeat_s,
        )
        .with_incoming_per_minute(config.incoming_per_minute);
        let modems = Arc::new(Modems::new(
            config.modems.clone(),
            config.hilink.clone(),
            link.clone(),
        ));
        let connections = Connections::new(config.server.clone());
        // The JWT signing secret: generated once, kept in the database (shared by every
        // process on it). A hub that cannot write now (a read-only database) still starts,
        // with a secret of its own for this run, and makes no first admin.
        let put = store
            .apply(Change::Access(AccessChange::PutSecret {
                name: JWT_SECRET_NAME.to_string(),
                value: new_jwt_secret(),
            }))
            .await;
        if let Err(err) = &put {
            tracing::warn!(error = %err, "cannot store the JWT secret now; tokens will last this run only");
        }
        let secret = match store.secret(JWT_SECRET_NAME).await {
            Ok(Some(secret)) => secret,
            _ => new_jwt_secret(),
        };
        let first_admin = if config.first_admin {
            match first_admin(&store, config.admin_password.as_deref()).await {
                Ok(made) => made,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot make the first admin now");
                    None
                }
            }
        } else {
            None
        };
        let access = Access {
            rate_limits: RateLimits::new(config.rate_limits),
            lockout: Lockout::default(),
            hub_tokens: HubTokens::new(&secret).map_err(anyhow::Error::msg)?,
            cookie_secure: config.cookie_secure || tls.is_some(),
        };
        let api = Arc::new(ApiState {
            config: ApiConfig {
                default_region: config.default_region,
                max_parts: config.max_parts,
                max_queued: config.max_queued,
                max_queued_per_key: config.max_queued_per_key,
                metrics_token: config.metrics_token.clone(),
                tls_enabled: tls.is_some(),
                cors_origins: config.cors_origins.clone(),
                phone_validation: config.phone_validation,
            },
            store: store.clone(),
            registry: registry.clone(),
            dispatcher,
            api_keys: ApiKeys::new(store.clone()),
            backlog,
            modems,
            connections,
            access,
            oidc,
            pairings: Pairings::default(),
            redeem_limiter: Default::default(),
            webhooks: Webhooks::new(config.events.webhooks.clone(), Some(addr)),
            history: Default::default(),
        });
        Ok(App {
            config,
            store,
            registry,
            link,
            api,
            listener,
            addr,
            first_admin,
            tls,
        })
    }

    /// The admin made at this start (no user existed), with its password if generated.
    pub fn first_admin(&self) -> Option<&FirstAdmin> {
        self.first_admin.as_ref()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Its store (to create keys and devices before it serves).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What a transport gets of the hub (for a transport started from outside).
    pub fn link(&self) -> DeviceLink {
        self.link.clone()
    }

    /// The modems attached to this hub.
    pub fn modems(&self) -> Arc<Modems> {
        self.api.modems.clone()
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let App {
            config,
            store,
            registry,
            link,
            api,
            listener,
            addr,
            first_admin: _,
            tls,
        } = self;
        tracing::info!(%addr, tls = tls.is_some(), "smshub listening");
        let watcher = tls.as_ref().map(Tls::watch);
        // The transports: each starts here, in one line.
        let modems = api.modems.clone();
        let dispatcher = api.dispatcher.clone();
        modems.start(&config.modem_ports, &config.hilinks, config.modem_scan);
        let devices = android::routes(link.clone(), config.hello_timeout)
            .or(gateway_app::routes(link, tls.is_some()))
            .unify()
            .boxed();

        let connections = api.connections.clone();
        // Keys' last uses are written at most once a minute each (and at shutdown).
        let usage = api.clone();
        let usage_flush = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                usage.api_keys.flush().await;
            }
        });
        // The console's charts: the queue depth and the devices online, every 5 s.
        let sampled = api.clone();
        let sampler = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                let depth = sampled.dispatcher.queue_len().await as u64;
                let online = sampled.registry.len() as u64;
                crate::series::sample(depth, online, crate::domain::now_millis());
                sample_devices(&sampled).await;
            }
        });
        let keys = api.clone();
        // Webhooks: the fan-out from the event log and the sender.
        let webhook_tasks = api.webhooks.start(store.clone());
        let mqtt = config
            .mqtt
            .clone()
            .map(|it| crate::mqtt::Bridge::start(it, api.clone()));
        let routes = api::routes(api, devices);
        // A client that holds a request open (half its headers, a trickled body) must not keep
        // the hub up: once asked to stop, requests get `shutdown_grace` to finish.
        server::serve(
            listener,
            tls,
            routes,
            connections,
            shutdown,
            config.shutdown_grace,
        )
        .await;
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        tracing::info!("stopped accepting; closing device sessions");
        modems.stop_all().await;
        dispatcher.send(crate::dispatch::Event::Stopping);
        registry.close_all(CloseReason::GoingAway);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !registry.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(mqtt) = mqtt {
            mqtt.stop().await;
        }
        usage_flush.abort();
        sampler.abort();
        webhook_tasks.iter().for_each(|it| it.abort());
        keys.api_keys.flush().await;
        store.flush().await?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Each device's history (`crate::history`): its stored counters, and the live status of
/// those online. A store that cannot be read skips the round.
async fn sample_devices(api: &ApiState) {
    let Ok(devices) = api.store.device_counters().await else {
        return;
    };
    let samples: Vec<crate::history::Sample> = devices
        .into_iter()
        .map(|device| {
            let live = api.registry.read(&device.id, |live| {
                let status = live.status.as_ref();
                let battery = status.and_then(|it| it.battery).map(|it| it.level);
                let signal = status
                    .map(|it| {
                        it.sims
                            .iter()
                            .filter_map(|sim| Some((sim.slot, sim.signal_dbm?)))
                            .collect()
                    })
                    .unwrap_or_default();
                (battery, signal)
            });
            let online = live.is_some();
            let (battery, signal) = live.unwrap_or_default();
            crate::history::Sample {
                online,
                battery,
                signal,
                sent_count: device.sent_count,
                failed_count: device.failed_count,
                created_at: device.created_at,
                device_id: device.id,
            }
        })
        .collect();
    api.history.sample(crate::domain::now_millis(), &samples);
}

/// Resolves on SIGINT or SIGTERM, with the SIGTERM handler installed now (not at the first
/// poll), so a SIGTERM that comes right after the hub said it listens is a graceful stop.
pub fn shutdown_signal_armed() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            return;
        }
        shutdown_signal().await;
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(it) => it,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
