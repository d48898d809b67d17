//! Webhooks registered through capcom6's SMS Gateway API (`api::compat`), delivered as that
//! app delivers them: one event per webhook, the body `{id, webhookId, event, deviceId,
//! payload}`, signed with `X-Signature` (the hex HMAC-SHA256 of the body followed by the
//! `X-Timestamp` value, keyed with the signing key's UTF-8 bytes) and `X-Timestamp` (Unix
//! seconds).
//!
//! [`EVENTS`] is the one table between that app's event names and smshub's event types.
//! Must never: send anything (the sender does), or change a delivery's order.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::domain::format_millis;
use crate::store::{Event, Store, StoreError, WebhookRecord};

/// One event name of that app and the smshub event types it is made of (empty: smshub never
/// produces it; a webhook for it is accepted and never called).
pub struct CompatEvent {
    pub name: &'static str,
    pub types: &'static [&'static str],
}

/// Every event name of that app's webhooks, and where smshub's events go.
pub const EVENTS: &[CompatEvent] = &[
    CompatEvent {
        name: "sms:received",
        types: &["sms.received"],
    },
    CompatEvent {
        name: "sms:sent",
        types: &["message.sent"],
    },
    CompatEvent {
        name: "sms:delivered",
        types: &["message.delivered"],
    },
    CompatEvent {
        name: "sms:failed",
        types: &["message.failed", "message.expired"],
    },
    CompatEvent {
        name: "sms:cancelled",
        types: &["message.cancelled"],
    },
    CompatEvent {
        name: "system:ping",
        types: &["device.status"],
    },
    CompatEvent {
        name: "sms:data-received",
        types: &[],
    },
    CompatEvent {
        name: "mms:received",
        types: &[],
    },
    CompatEvent {
        name: "mms:downloaded",
        types: &[],
    },
    CompatEvent {
        name: "app:started",
        types: &[],
    },
];

/// The entry of an event name of that app.
pub fn event(name: &str) -> Option<&'static CompatEvent> {
    EVENTS.iter().find(|it| it.name == name)
}

/// The type filter stored for a webhook of `event`: its smshub types, or, for an event smshub
/// never produces, one type whose events [`body`] turns into nothing.
pub fn type_filter(event: &CompatEvent) -> String {
    if event.types.is_empty() {
        "device.online".to_string()
    } else {
        event.types.join(",")
    }
}

/// `X-Signature`: the hex HMAC-SHA256 of `body` followed by `timestamp`, keyed with `key`.
pub fn signature(key: &str, body: &[u8], timestamp: i64) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    mac.update(timestamp.to_string().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The body of the delivery of `event` to `hook` (a webhook of that API), or `None` when the
/// event is not one the hook's event stands for. Reads the message (its recipient, SIM,
/// parts) and the id that API shows for it (its send's key).
pub async fn body(
    store: &Store,
    hook: &WebhookRecord,
    event: &Event,
) -> Result<Option<String>, StoreError> {
    let Some(name) = hook.compat_event.as_deref() else {
        return Ok(None);
    };
    let Some(entry) = self::event(name) else {
        return Ok(None);
    };
    if !entry.types.contains(&event.kind.as_str()) {
        return Ok(None);
    }
    let at = format_millis(event.at);
    let payload = match event.kind.as_str() {
        "sms.received" => {
            let field = |name: &str| event.payload.as_ref().and_then(|it| it.get(name));
            let sender = field("sender").cloned().unwrap_or(Value::Null);
            json!({
                "messageId": field("id").cloned().unwrap_or(Value::Null),
                "phoneNumber": sender,
                "sender": sender,
                "message": field("text").cloned().unwrap_or(Value::Null),
                "receivedAt": field("received_at").cloned().unwrap_or_else(|| at.clone().into()),
                "simNumber": field("sim_slot").and_then(Value::as_u64).map(|it| it + 1),
            })
        }
        "device.status" => json!({}),
        kind => {
            let Some(id) = event.message_id else {
                return Ok(None);
            };
            let Some(message) = store.get_message(id).await? else {
                return Ok(None);
            };
            let shown = match message.api_key_id {
                Some(owner) => store
                    .send_group_of(owner, id)
                    .await?
                    .map_or_else(|| id.to_string(), |it| it.key),
                None => id.to_string(),
            };
            let mut payload = json!({
                "messageId": shown,
                "phoneNumber": message.recipient,
                "simNumber": message.sim_slot.map(|it| u32::from(it) + 1),
            });
            match kind {
                "message.sent" => {
                    payload["sentAt"] = at.into();
                    payload["partsCount"] = message.parts.into();
                }
                "message.delivered" => payload["deliveredAt"] = at.into(),
                "message.cancelled" => payload["cancelledAt"] = at.into(),
                _ => {
                    payload["failedAt"] = at.into();
                    let reason = if kind == "message.expired" {
                        "TTL expired".to_string()
                    } else {
                        message
                            .error
                            .as_ref()
                            .map_or_else(|| "failed".to_string(), |it| it.message.clone())
                    };
                    payload["reason"] = reason.into();
                }
            }
            payload
        }
    };
    let body = json!({
        "id": format!("{}_{}", hook.id.simple(), event.id),
        "webhookId": hook.compat_id,
        "event": entry.name,
        "deviceId": event.device_id,
        "payload": payload,
    });
    Ok(Some(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheme of the app's `PayloadSingingPlugin`, computed by hand with Python's
    /// `hmac.new(b"key", b'{"a":1}' + b"1700000000", "sha256").hexdigest()`.
    #[test]
    fn signs_body_then_timestamp_in_hex() {
        assert_eq!(
            signature("key", br#"{"a":1}"#, 1_700_000_000),
            "5cff791334e7fd8344cc05c2398964f60329f4edd6ab1087ed1ba6c34eefeeca"
        );
    }

    #[test]
    fn every_event_maps_to_known_types() {
        for entry in EVENTS {
            let filter = type_filter(entry);
            assert!(
                crate::events::access::Filter::parse_types(&filter).is_ok(),
                "{}",
                entry.name
            );
        }
    }
}
