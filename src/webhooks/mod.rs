//! Webhooks: events of the log delivered to applications' HTTP endpoints, signed as the
//! Standard Webhooks specification says, each delivery a durable row retried until it is
//! acknowledged or its retry window ends.
//!
//! - [`config`]: the flags (`--webhook-timeout`, `--webhook-retry-for`, ...).
//! - [`sign`]: secrets, `webhook-id`, `webhook-signature`.
//! - [`target`]: where a webhook may point (SSRF checks, at creation and on every request).
//! - [`fanout`]: reads the event log from each webhook's durable position (woken by the
//!   writer after each commit) and commits one delivery per event an endpoint wants.
//! - [`compat`]: webhooks of capcom6's SMS Gateway API: that app's event names, envelope and
//!   `X-Signature`.
//! - [`send`]: sends due deliveries, in order per message and endpoint, and commits each
//!   attempt's result (backoff, giving up, disabling an endpoint that keeps failing).
//!
//! Must never: poll the database in a loop (the fan-out waits for the writer's signal, the
//! sender for a wake-up or the next due attempt), send a later event of a message before an
//! earlier one was acknowledged or given up, or connect to a target the policy refuses.

pub mod compat;
pub mod config;
pub mod fanout;
mod send;
pub mod sign;
pub mod target;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use config::{WebhookArgs, WebhookConfig};
use target::Policy;

use crate::store::Store;

/// The webhook machinery's handle, shared by the routes: its settings, its target policy and
/// the way to wake it; cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    pub config: Arc<WebhookConfig>,
    pub policy: Policy,
    fanout: Arc<Notify>,
    sender: Arc<Notify>,
}

impl Webhooks {
    /// `own` is the hub's listening address (a target it refuses).
    pub fn new(config: WebhookConfig, own: Option<SocketAddr>) -> Webhooks {
        let policy = Policy {
            require_https: config.require_https,
            allow_loopback: config.allow_loopback,
            own,
        };
        Webhooks {
            config: Arc::new(config),
            policy,
            fanout: Arc::default(),
            sender: Arc::default(),
        }
    }

    /// Something changed that the machinery must look at now: a webhook created or enabled
    /// (the fan-out), deliveries made due (the sender).
    pub fn wake(&self) {
        self.fanout.notify_one();
        self.sender.notify_one();
    }

    /// Starts the fan-out and the sender; they run until the handles are aborted.
    pub fn start(&self, store: Store) -> Vec<JoinHandle<()>> {
        let fanout = tokio::spawn(fanout::run(
            store.clone(),
            self.fanout.clone(),
            self.sender.clone(),
        ));
        let sender = match send::Sender::new(store, self) {
            Ok(sender) => tokio::spawn(sender.run()),
            Err(err) => {
                tracing::error!(error = %err, "cannot build the webhook HTTP client; webhooks are not sent");
                tokio::spawn(async {})
            }
        };
        vec![fanout, sender]
    }
}
