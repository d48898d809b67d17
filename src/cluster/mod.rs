//! Several hub nodes on one PostgreSQL database: one leader serves, the others relay to it.
//!
//! Every node listens. The node holding the leader lock (`store::cluster`) runs the whole hub
//! (the same `App` as a single node: store, dispatcher, registry, API, transports); every
//! other node pipes its connections to the leader (`relay`). So a phone, a worker or an API
//! client may use any node, and every guarantee of a single node holds across nodes because
//! one process owns the queues at a time. A follower polls the lock twice a second; when the
//! leader dies its session ends, the lock is free, a follower takes it, rebuilds the queues
//! from the database exactly as a restarted single node does (offers go back to the queue,
//! accepted jobs stay with their phones), announces its address and serves on the listener
//! it relayed from. Before it rebuilds anything it raises the cluster's epoch, the fence
//! every transaction of its writer checks: an old leader still running (cut off from its
//! lock's session but not from the database) commits nothing more, so it answers no `202` the
//! new leader would not see. A leader that cannot confirm its lock for two seconds exits.
//!
//! Must never: serve as leader without the lock and a fresh epoch, or hold a queue on a
//! follower.

pub mod relay;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::app::{App, Config};
use crate::store::Store;
use crate::store::cluster::LeaderLock;

/// How often a follower tries the lock and reads where the leader is.
const ELECTION_EVERY: Duration = Duration::from_millis(500);
/// How often the leader checks it still holds the lock, and how long a check may take.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// The exit code of a leader that lost its lock (a supervisor restarts it as a follower).
pub const LOST_LOCK_EXIT: i32 = 75;

/// The address other nodes reach this one on: `node_address` if given, else the listener's
/// own address unless it is a wildcard (which names no machine).
pub fn advertised(node_address: Option<&str>, local: SocketAddr) -> anyhow::Result<String> {
    match node_address {
        Some(address) => Ok(address.to_string()),
        None if local.ip().is_unspecified() => anyhow::bail!(
            "listening on {local} in a cluster: give --node-address, the host:port other \
             nodes reach this one on"
        ),
        None => Ok(local.to_string()),
    }
}

/// Runs one node on `listener` until `shutdown`: a follower relaying to the leader until it
/// takes the lock, then the hub itself. `serving` is called once the hub is built (to print
/// what a starting hub prints).
pub async fn run(
    config: Config,
    listener: TcpListener,
    node_address: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    serving: impl FnOnce(&App),
) -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let address = advertised(node_address.as_deref(), listener.local_addr()?)?;
    Store::migrate(&config.database_url).await?;
    let mut lock = LeaderLock::connect(&config.database_url).await?;
    let (leader_tx, leader_rx) = watch::channel(None::<String>);
    let (stop_relay, stopped) = oneshot::channel();
    let cap = config.server.max_api_connections + config.server.max_device_connections;
    let relaying = tokio::spawn(relay::serve(listener, leader_rx, cap, stopped));
    let mut shutdown = Box::pin(shutdown);
    let mut announced = None;
    loop {
        if lock.try_acquire().await? {
            break;
        }
        let leader = lock.leader().await?;
        if let Some(leader) = &leader
            && !leader.version.is_empty()
            && leader.version != version
        {
            anyhow::bail!(
                "the leader runs smshub {}, this node {version}: nodes of one version only",
                leader.version
            );
        }
        let now = leader.and_then(|it| it.address);
        if now != announced {
            tracing::info!(leader = ?now, node = %address, "following");
            announced = now.clone();
            let _ = leader_tx.send(now);
        }
        tokio::select! {
            _ = &mut shutdown => {
                let _ = stop_relay.send(());
                let _ = relaying.await;
                return Ok(());
            }
            _ = tokio::time::sleep(ELECTION_EVERY) => {}
        }
    }
    tracing::info!(node = %address, "took the leader lock; rebuilding the queues");
    let _ = stop_relay.send(());
    let listener = relaying.await?;
    // The fence first: from here the old leader, should it still run, commits nothing.
    let mut config = config;
    config.fence = Some(lock.take_epoch().await?);
    let app = App::build_on(config, listener).await?;
    lock.announce(version, &address).await?;
    serving(&app);
    tokio::spawn(keep(lock));
    app.run_until_stopped(shutdown).await
}

/// Checks the lock every second; exits the process when a check fails or takes too long.
async fn keep(mut lock: LeaderLock) {
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        match tokio::time::timeout(CHECK_TIMEOUT, lock.still_held()).await {
            Ok(Ok(true)) => {}
            outcome => {
                tracing::error!(
                    ?outcome,
                    "lost the leader lock (or cannot confirm it): stopping so another node leads"
                );
                std::process::exit(LOST_LOCK_EXIT);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_on_a_wildcard_address_must_say_how_to_reach_it() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(advertised(None, any).is_err());
        assert_eq!(
            advertised(Some("10.0.0.5:8080"), any).unwrap(),
            "10.0.0.5:8080"
        );
        let local: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(advertised(None, local).unwrap(), "127.0.0.1:9000");
    }
}
