//! A follower's listener: every connection it accepts is piped, byte for byte, to the leader.
//!
//! The relay reads nothing of what it carries (HTTP, WebSocket, TLS all pass through), so a
//! phone, a worker or an API client may use any node and the leader alone speaks to them.
//! When the leader goes, its side of every relayed connection closes, the relay closes the
//! client's side, and the client reconnects (to this node or another) and finds the next
//! leader. Must never: answer a client itself, or hold more connections than its cap.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot, watch};

/// How long a connection waits for a leader to be known (during a failover) before closing.
const LEADER_WAIT: Duration = Duration::from_secs(10);
/// How long connecting to the leader may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Relays connections accepted on `listener` to the leader `leader` names, at most `cap` at
/// once, until `stop` fires; then gives the listener back (this node is to serve on it).
pub async fn serve(
    listener: TcpListener,
    leader: watch::Receiver<Option<String>>,
    cap: usize,
    stop: oneshot::Receiver<()>,
) -> TcpListener {
    let slots = Arc::new(Semaphore::new(cap.max(1)));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return listener,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    // Beyond the cap the connection is closed at once: the client retries.
                    if let Ok(slot) = slots.clone().try_acquire_owned() {
                        let leader = leader.clone();
                        tokio::spawn(async move {
                            relay(client, leader).await;
                            drop(slot);
                        });
                    }
                }
                Err(err) => {
                    // Out of descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %err, "relay cannot accept now");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Pipes one client connection to the leader until either side closes.
async fn relay(mut client: TcpStream, mut leader: watch::Receiver<Option<String>>) {
    let _ = client.set_nodelay(true);
    let address = match tokio::time::timeout(LEADER_WAIT, leader.wait_for(Option::is_some)).await {
        Ok(Ok(address)) => address.clone().unwrap_or_default(),
        _ => return,
    };
    let mut upstream =
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address)).await {
            Ok(Ok(upstream)) => upstream,
            Ok(Err(err)) => {
                tracing::debug!(%address, error = %err, "cannot reach the leader");
                return;
            }
            Err(_) => return,
        };
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
