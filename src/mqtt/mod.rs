//! The MQTT bridge (`--mqtt-url`): another consumer of the event log. It publishes every
//! event under `PREFIX/events/<type>` and devices' presence, retained, under
//! `PREFIX/devices/<id>/presence`, at QoS 1, moving its stored position only past what the
//! broker acknowledged; and it takes sends from `PREFIX/send`, answering each on
//! `PREFIX/send/reply/<id>` (or its `reply_to`) exactly as `POST /api/send-sms` would.
//!
//! - [`config`]: the flags and the checked configuration (TLS, credentials, topics).
//! - [`inflight`]: publishes awaiting their `PUBACK`, and the position they allow.
//! - [`publisher`]: what an event becomes on the broker; the log's tail; the stored position.
//! - [`intake`]: a send's envelope and its answer.
//! - `session.rs`: the connection loop, reconnecting with a growing pause.
//!
//! Must never: lose an event across a broker or hub restart (duplicates are allowed, told
//! apart by the event's id), poll the database in a loop, accept a send other than through
//! the REST handler, or stop or panic the hub when the broker misbehaves.

pub mod config;
pub mod inflight;
pub mod intake;
pub mod publisher;
mod session;

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{MqttArgs, MqttConfig};

use crate::api::ApiState;

/// A running bridge.
pub struct Bridge {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Bridge {
    /// Starts the bridge in a task of its own; it connects (and reconnects) by itself.
    pub fn start(config: MqttConfig, api: Arc<ApiState>) -> Bridge {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(session::run(config, api, stopped));
        Bridge { stop, task }
    }

    /// Disconnects from the broker and stores the last acknowledged position.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
