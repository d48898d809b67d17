//! What the bridge publishes of the event log: each event as JSON under
//! `PREFIX/events/<type>` (the SSE stream's JSON, with its id), and a device's presence,
//! retained, under `PREFIX/devices/<id>/presence` (`online` / `offline`); the [`Tail`] that
//! reads the log from the bridge's position, woken by the writer; and [`keep_position`], which
//! stores that position through the writer as the broker acknowledges.
//!
//! Must never: read the log without waiting for the writer's signal, or store a position the
//! broker has not acknowledged up to.

use std::time::Duration;

use tokio::sync::watch;

use crate::events::access::Filter;
use crate::store::{Change, Event, EventLog, EventType, Store, StoreError};

/// Events read per query.
const PAGE: u64 = 256;

/// One MQTT message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// The topic of events of type `kind`.
pub fn event_topic(prefix: &str, kind: &str) -> String {
    format!("{prefix}/events/{kind}")
}

/// The retained presence topic of device `device`.
pub fn presence_topic(prefix: &str, device: &str) -> String {
    format!("{prefix}/devices/{device}/presence")
}

/// What `event` becomes: its own message if `filter` wants its type, and for a device coming
/// online or going offline its retained presence whatever the filter. Pure.
pub fn publications(prefix: &str, filter: &Filter, event: &Event) -> Vec<Publication> {
    let mut out = Vec::new();
    if filter.matches(event) {
        out.push(Publication {
            topic: event_topic(prefix, &event.kind),
            payload: serde_json::to_vec(event).unwrap_or_default(),
            retain: false,
        });
    }
    let presence = match EventType::parse(&event.kind) {
        Some(EventType::DeviceOnline) => Some("online"),
        Some(EventType::DeviceOffline) => Some("offline"),
        _ => None,
    };
    if let (Some(presence), Some(device)) = (presence, &event.device_id)
        && !device.is_empty()
        && !device.contains(['/', '+', '#', '\0'])
    {
        out.push(Publication {
            topic: presence_topic(prefix, device),
            payload: presence.as_bytes().to_vec(),
            retain: true,
        });
    }
    out
}

/// The event log read from a position, every event, oldest first.
pub struct Tail {
    log: EventLog,
    cursor: i64,
    woken: watch::Receiver<i64>,
}

impl Tail {
    /// A tail after event `after`.
    pub fn new(log: EventLog, after: i64) -> Tail {
        let woken = log.subscribe();
        Tail {
            log,
            cursor: after,
            woken,
        }
    }

    /// The next events after the cursor, waiting for the writer's signal when there are
    /// none; the cursor moves past them. Cancel-safe: the cursor moves only when the events
    /// are returned.
    pub async fn next(&mut self) -> Result<Vec<Event>, StoreError> {
        loop {
            let last = *self.woken.borrow_and_update();
            if last <= self.cursor {
                if self.woken.changed().await.is_err() {
                    // The writer is gone: nothing new will come.
                    std::future::pending::<()>().await;
                }
                continue;
            }
            let rows = self.log.after(self.cursor, PAGE, None, None).await?;
            match rows.last() {
                Some(it) => {
                    self.cursor = it.id;
                    return Ok(rows);
                }
                // Pruned, or rolled back: nothing up to `last` is left to read.
                None => self.cursor = last,
            }
        }
    }
}

/// Stores each new position of `consumer` through the writer, the latest one when several
/// came while a write was under way; ends after storing the last one once `positions`' sender
/// is gone.
pub async fn keep_position(store: Store, consumer: String, mut positions: watch::Receiver<i64>) {
    while positions.changed().await.is_ok() {
        let position = *positions.borrow_and_update();
        let change = Change::SetConsumerPosition {
            consumer: consumer.clone(),
            position,
        };
        if let Err(err) = store.apply(change).await {
            tracing::warn!(error = %err, consumer, "cannot store the MQTT bridge's position now");
            tokio::time::sleep(Duration::from_secs(1)).await;
            positions.mark_changed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, device: Option<&str>) -> Event {
        Event {
            id: 7,
            kind: kind.into(),
            at: 1,
            message_id: None,
            device_id: device.map(Into::into),
            owner: None,
            payload: None,
        }
    }

    #[test]
    fn events_go_to_their_type_topic_and_presence_is_retained() {
        let all = Filter::default();
        let messages = Filter {
            types: vec!["message.*".into()],
            ..Filter::default()
        };
        let topics = |filter: &Filter, event: &Event| {
            publications("p", filter, event)
                .into_iter()
                .map(|it| (it.topic, String::from_utf8(it.payload).unwrap(), it.retain))
                .collect::<Vec<_>>()
        };
        let online = event("device.online", Some("d1"));
        let json = serde_json::to_string(&online).unwrap();
        assert_eq!(
            topics(&all, &online),
            vec![
                ("p/events/device.online".into(), json, false),
                ("p/devices/d1/presence".into(), "online".into(), true),
            ]
        );
        assert_eq!(
            topics(&messages, &event("device.offline", Some("d1"))),
            vec![("p/devices/d1/presence".into(), "offline".into(), true)]
        );
        assert!(topics(&messages, &event("device.status", Some("d1"))).is_empty());
        assert_eq!(topics(&all, &event("device.offline", Some("a/+"))).len(), 1);
        assert_eq!(
            topics(&messages, &event("message.sent", None))[0].0,
            "p/events/message.sent"
        );
    }
}
