//! Standard Webhooks signatures: secrets (`whsec_` and base64), the `webhook-id` of a
//! delivery, and `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of
//! `id.timestamp.body` under the secret's decoded bytes).
//!
//! Pure: no I/O, no clock (the caller passes the timestamp).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;

/// A secret's prefix.
const PREFIX: &str = "whsec_";

/// Bytes of a generated secret; what a given one may have.
const GENERATED_BYTES: usize = 32;
const MIN_BYTES: usize = 24;
const MAX_BYTES: usize = 64;

/// A new random secret, `whsec_` and the base64 of 32 bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; GENERATED_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// Checks a secret given by a client: `whsec_` and the base64 of 24 to 64 bytes.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let bytes =
        key_bytes(secret).ok_or_else(|| "a secret is `whsec_` followed by base64".to_string())?;
    if !(MIN_BYTES..=MAX_BYTES).contains(&bytes.len()) {
        return Err(format!(
            "a secret must decode to {MIN_BYTES} to {MAX_BYTES} bytes, not {}",
            bytes.len()
        ));
    }
    Ok(())
}

fn key_bytes(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(PREFIX)?).ok()
}

/// The `webhook-id` of the delivery of event `event` to webhook `webhook`: the same for
/// every attempt and replay, so receivers can drop repeats.
pub fn message_id(webhook: Uuid, event: i64) -> String {
    format!("msg_{}_{event}", webhook.simple())
}

/// `v1,<signature>` of one secret; `None` if the secret is not one (checked at creation).
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = key_bytes(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header: a signature per valid secret, space-separated.
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|it| signature(it, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_as_the_reference_libraries_do() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, id, 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn secrets_are_checked() {
        assert!(check_secret(&new_secret()).is_ok());
        for bad in ["", "whsec_", "abc", "whsec_!!!", "whsec_AAAA"] {
            assert!(check_secret(bad).is_err(), "{bad}");
        }
        let two = header(&[&new_secret(), &new_secret()], "msg_1", 1, b"{}");
        assert_eq!(two.split(' ').count(), 2);
        assert!(two.split(' ').all(|it| it.starts_with("v1,")));
    }
}
