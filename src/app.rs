//! Building and running a hub: open the store, rebuild the dispatcher, bind the listener,
//! serve until asked to stop, then shut down in order.
//!
//! [`App::build`] binds before it returns, so tests can ask for port 0 and read
//! [`App::port`]. Shutdown: stop accepting, finish HTTP requests in flight, close every
//! device socket with "going away", then wait for the store to commit what it holds.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api;
use crate::auth::ApiKeys;
use crate::dispatch::core::DispatchConfig;
use crate::dispatch::{Backlog, Clock, Dispatcher};
use crate::registry::{DeviceRegistry, close_code};
use crate::store::{Durability, Store};
use crate::transport::modem::{ModemConfig, Modems};

/// Everything a hub needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://...`.
    pub database_url: String,
    pub durability: Durability,
    /// Region for numbers written without `+`, e.g. `DZ`.
    pub default_region: Option<phonenumber::country::Id>,
    /// Longest accepted text, in SMS parts.
    pub max_parts: u32,
    /// Seconds between device heartbeats.
    pub heartbeat_s: u32,
    /// Leases, retries, breaker, default SIM limits, scoring.
    pub dispatch: DispatchConfig,
    /// Most messages waiting for a device, in all and per API key; beyond, `503`.
    pub max_queued: usize,
    pub max_queued_per_key: usize,
    /// Serial modems: timeouts, refresh and sweep intervals, SIM PIN, allow-list, ...
    pub modems: ModemConfig,
    /// Serial ports with a modem to attach at start (e.g. `/dev/ttyUSB2`).
    pub modem_ports: Vec<String>,
    /// Detect modems and watch for hot-plugged ones.
    pub modem_scan: bool,
    /// HiLink sticks to attach at start (`http://192.168.8.1`, credentials as userinfo).
    pub hilinks: Vec<String>,
}

impl Config {
    /// A configuration for a hub on `listen` with database `database_url` and defaults
    /// for everything else.
    pub fn new(listen: SocketAddr, database_url: String) -> Config {
        Config {
            listen,
            database_url,
            durability: Durability::Full,
            default_region: None,
            max_parts: 10,
            heartbeat_s: 30,
            dispatch: DispatchConfig::default(),
            max_queued: 200_000,
            max_queued_per_key: 100_000,
            modems: ModemConfig::default(),
            modem_ports: Vec::new(),
            modem_scan: false,
            hilinks: Vec::new(),
        }
    }
}

/// The shared state every request and device session works with.
pub struct Hub {
    pub config: Config,
    pub store: Store,
    pub registry: Arc<DeviceRegistry>,
    pub dispatcher: Dispatcher,
    pub api_keys: ApiKeys,
    pub backlog: Arc<Backlog>,
    pub clock: Clock,
    /// Serial modems and HiLink sticks attached to this hub.
    pub modems: Arc<Modems>,
}

/// A hub bound to its address, ready to run.
pub struct App {
    hub: Arc<Hub>,
    listener: TcpListener,
    addr: SocketAddr,
}

impl App {
    /// Opens and migrates the database, rebuilds queues from it and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let store = Store::open(&config.database_url, config.durability).await?;
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
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let api_keys = ApiKeys::new(store.clone());
        let modems = Arc::new(Modems::new(config.modems.clone()));
        let hub = Arc::new(Hub {
            config,
            store,
            registry,
            dispatcher,
            api_keys,
            backlog,
            clock,
            modems,
        });
        Ok(App {
            hub,
            listener,
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn hub(&self) -> Arc<Hub> {
        self.hub.clone()
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let App {
            hub,
            listener,
            addr,
        } = self;
        tracing::info!(%addr, "smshub listening");
        // Modems attach in the background: a slow or broken one never delays the others.
        for port in hub.config.modem_ports.clone() {
            let hub = hub.clone();
            tokio::spawn(async move {
                let status = hub.modems.connect(hub.clone(), &port).await;
                tracing::info!(%port, ?status, "modem attached");
            });
        }
        for url in hub.config.hilinks.clone() {
            let hub = hub.clone();
            tokio::spawn(async move {
                let status = hub.modems.connect(hub.clone(), &url).await;
                tracing::info!(url = %status.port, state = ?status.state, error = ?status.last_error, "HiLink stick attached");
            });
        }
        if hub.config.modem_scan {
            hub.modems.spawn_scanner(hub.clone());
        }
        let routes = api::routes(hub.clone());
        warp::serve(routes)
            .incoming(listener)
            .graceful(shutdown)
            .run()
            .await;
        tracing::info!("stopped accepting; closing device sessions");
        hub.modems.stop_all().await;
        hub.registry
            .close_all(close_code::GOING_AWAY, "hub shutting down");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !hub.registry.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        hub.store.flush().await?;
        tracing::info!("shutdown complete");
        Ok(())
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
