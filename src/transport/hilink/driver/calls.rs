//! Every call a session makes to its stick goes through here, so the circuit breaker sees it:
//! calls in a row that got no answer are counted, any answer (even a refusal) resets the count,
//! and `breaker_failures` of them take the stick offline.
//!
//! Must never: repeat a call (whether to try again is the caller's choice: a `send-sms` must
//! reach the stick at most once), or count a refusal as silence.

use smshub_protocol::hilink::Element;

use super::Connection;
use crate::transport::hilink::client::ClientError;

impl Connection<'_> {
    /// A `GET` of an API path (`device/information`).
    pub(super) async fn get(&mut self, path: &str) -> Result<Element, ClientError> {
        let result = self.client.get(path).await;
        self.note(&result);
        result
    }

    /// A `POST` of an XML request to an API path (`sms/send-sms`).
    pub(super) async fn post(&mut self, path: &str, body: &str) -> Result<Element, ClientError> {
        let result = self.client.post(path, body).await;
        self.note(&result);
        result
    }

    /// Counts a call that got no answer; any answer resets the count.
    fn note<T>(&mut self, result: &Result<T, ClientError>) {
        match result {
            Err(err) if err.is_silence() => {
                self.silence += 1;
                self.last_silence = Some(err.to_string());
            }
            _ => self.silence = 0,
        }
    }

    /// Whether the breaker has tripped: the stick stopped answering.
    pub(super) fn broken(&self) -> bool {
        self.silence >= self.config.breaker_failures.max(1)
    }
}
