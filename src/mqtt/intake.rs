//! Sends received on `PREFIX/send`: the envelope (a `POST /api/send-sms` body with an `id`,
//! the idempotency key, and an optional `reply_to` topic) is read here, the send itself is the
//! REST handler's (`api::relay`), and the answer goes to `PREFIX/send/reply/<id>` or
//! `reply_to`: `{"id", "status", "body"}`, the body being what the REST API answers.
//!
//! A broker redelivers a message it has no `PUBACK` for: the `id` makes a repeat answer with
//! the messages the first one created (`200`, nothing stored twice).
//!
//! Must never: store anything for a send that the REST API would refuse; answer a send on a
//! topic with wildcards.

use bytes::Bytes;
use serde_json::{Value, json};
use warp::http::StatusCode;

use crate::api::error::ApiError;
use crate::api::relay::Answer;

/// Where a send is answered and what it asks, once its envelope is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The idempotency key (also the `id` of the send's body).
    pub id: String,
    /// The topic of the answer.
    pub reply_topic: String,
    /// The REST body: the payload less `reply_to`.
    pub body: Bytes,
}

/// A send whose envelope cannot be read: its error, and where to say so.
#[derive(Debug)]
pub struct Unreadable {
    pub id: Option<String>,
    pub reply_topic: String,
    pub error: ApiError,
}

/// The topic sends are read from.
pub fn send_topic(prefix: &str) -> String {
    format!("{prefix}/send")
}

/// The default answer topic of a send with `id` (`None`: an envelope without a usable id).
pub fn reply_topic(prefix: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{prefix}/send/reply/{id}"),
        None => format!("{prefix}/send/reply"),
    }
}

/// Whether `topic` is a topic one may publish to (no wildcard, no empty name, no NUL).
pub fn publishable(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= 1024 && !topic.contains(['+', '#', '\0'])
}

/// Reads a send's envelope. Pure.
pub fn read(prefix: &str, payload: &[u8]) -> Result<Envelope, Box<Unreadable>> {
    let unreadable = |id: Option<String>, reply: Option<String>, error: ApiError| {
        let reply_topic = reply.unwrap_or_else(|| reply_topic(prefix, id.as_deref()));
        Box::new(Unreadable {
            id,
            reply_topic,
            error,
        })
    };
    let mut object = match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(it)) => it,
        Ok(_) => {
            let error = ApiError::bad_request("invalid_request", "a send is a JSON object");
            return Err(unreadable(None, None, error));
        }
        Err(err) => {
            let error = ApiError::bad_request("invalid_json", format!("a send: {err}"));
            return Err(unreadable(None, None, error));
        }
    };
    let reply_to = match object.remove("reply_to") {
        None | Some(Value::Null) => None,
        Some(Value::String(topic)) if publishable(&topic) => Some(topic),
        Some(_) => {
            let error = ApiError::bad_request(
                "invalid_reply_to",
                "reply_to must be a topic without wildcards",
            );
            return Err(unreadable(None, None, error));
        }
    };
    let id = match object.get("id") {
        Some(Value::String(id)) if !id.trim().is_empty() && !id.contains(['/', '+', '#', '\0']) => {
            id.clone()
        }
        Some(Value::String(_)) => {
            let error = ApiError::bad_request(
                "invalid_id",
                "id must be a non-empty string without '/', '+' or '#'",
            );
            return Err(unreadable(None, reply_to, error));
        }
        _ => {
            let error = ApiError::bad_request(
                "missing_id",
                "a send over MQTT needs an id (its idempotency key, and its answer's topic)",
            );
            return Err(unreadable(None, reply_to, error));
        }
    };
    let reply_topic = reply_to.unwrap_or_else(|| reply_topic(prefix, Some(&id)));
    let body = Bytes::from(serde_json::to_vec(&Value::Object(object)).unwrap_or_default());
    Ok(Envelope {
        id,
        reply_topic,
        body,
    })
}

/// The answer's payload.
pub fn reply_payload(id: Option<&str>, answer: &Answer) -> Vec<u8> {
    serde_json::to_vec(&json!({ "id": id, "status": answer.status, "body": answer.body }))
        .unwrap_or_default()
}

/// The answer to a send when the bridge has no `--mqtt-key`.
pub fn sends_disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "mqtt_sends_disabled",
        "this hub accepts no sends over MQTT (it has no --mqtt-key)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_read_or_refused_with_a_stable_code() {
        let ok = read(
            "p",
            br#"{"id":"a1","phone_number":"+14155552671","message":"hi","reply_to":"r/x"}"#,
        )
        .unwrap();
        assert_eq!(ok.id, "a1");
        assert_eq!(ok.reply_topic, "r/x");
        let body: Value = serde_json::from_slice(&ok.body).unwrap();
        assert_eq!(
            body,
            json!({"id":"a1","phone_number":"+14155552671","message":"hi"})
        );
        assert_eq!(
            read("p", br#"{"id":"a2","message":"hi"}"#)
                .unwrap()
                .reply_topic,
            "p/send/reply/a2"
        );
        let cases: [(&[u8], &str, &str); 7] = [
            (b"{nope", "invalid_json", "p/send/reply"),
            (b"[1]", "invalid_request", "p/send/reply"),
            (br#"{"message":"hi"}"#, "missing_id", "p/send/reply"),
            (br#"{"id":7}"#, "missing_id", "p/send/reply"),
            (br#"{"id":"a/b"}"#, "invalid_id", "p/send/reply"),
            (
                br#"{"id":"a","reply_to":"x/#"}"#,
                "invalid_reply_to",
                "p/send/reply",
            ),
            (br#"{"reply_to":"mine"}"#, "missing_id", "mine"),
        ];
        for (payload, code, topic) in cases {
            let err = read("p", payload).unwrap_err();
            assert_eq!(err.error.code, code, "{}", String::from_utf8_lossy(payload));
            assert_eq!(err.reply_topic, topic);
        }
    }
}
