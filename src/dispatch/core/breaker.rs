//! The circuit breaker: a device whose jobs fail too many times in a row is rested (offered
//! nothing) for a while; each further rest in a row lasts twice as long, up to 16 times the
//! first. A sent job resets the count. Failures that say nothing about the device (a bad
//! recipient, an expired message, a failed delivery report) do not count.
//!
//! Pure, like all of the core: no I/O and no clock reads (every call carries `now`). A rest
//! that starts comes out as an [`Action::Rest`]; one that ends is applied by `tick`.

use super::{Action, Core};
use crate::domain::FailureCode;
use crate::domain::{DeviceId, Millis};

/// Circuit breaker state of a device; outlives its sessions.
#[derive(Debug, Default)]
pub(super) struct Breaker {
    consecutive_failures: u32,
    rests_in_a_row: u32,
    pub(super) rested_until: Option<Millis>,
    /// Why, when an operator rested it (`None`: the breaker did).
    pub(super) reason: Option<String>,
}

impl Core {
    /// A job of `device` was sent: its failures in a row and rests in a row start over.
    pub(super) fn success(&mut self, device: &DeviceId) {
        if let Some(breaker) = self.breakers.get_mut(device) {
            breaker.consecutive_failures = 0;
            breaker.rests_in_a_row = 0;
        }
    }

    /// A job of `device` failed with `code`: counts towards a rest, unless the code says
    /// nothing about the device.
    pub(super) fn failure(
        &mut self,
        device: &DeviceId,
        code: &FailureCode,
        now: Millis,
    ) -> Vec<Action> {
        // Failures that say nothing about the device's health do not count.
        if code.is_the_message() {
            return Vec::new();
        }
        let threshold = self.config.breaker_failures;
        let breaker = self.breakers.entry(device.clone()).or_default();
        breaker.consecutive_failures += 1;
        if threshold == 0 || breaker.consecutive_failures < threshold {
            return Vec::new();
        }
        let reason = format!(
            "{} failures in a row, the last one {code}",
            breaker.consecutive_failures
        );
        self.rest(device, &reason, now)
    }

    /// Rests `device` now for `reason`: the breaker's period, doubled for each rest in a row.
    pub(super) fn rest(&mut self, device: &DeviceId, reason: &str, now: Millis) -> Vec<Action> {
        let base = self.config.breaker_rest_ms;
        let breaker = self.breakers.entry(device.clone()).or_default();
        let factor = 1i64 << breaker.rests_in_a_row.min(4);
        breaker.rests_in_a_row += 1;
        let mut until = now + base * factor;
        // An operator's longer rest stands.
        match breaker.rested_until {
            Some(manual) if manual > until && breaker.reason.is_some() => until = manual,
            _ => breaker.reason = None,
        }
        breaker.rested_until = Some(until);
        breaker.consecutive_failures = 0;
        vec![Action::Rest {
            device: device.clone(),
            until: Some(until),
            reason: Some(reason.to_string()),
        }]
    }

    /// An operator rests `device` until `until` for `reason`: it is offered nothing new until
    /// then (the jobs it holds stay its own). `until` of `None` (or not after `now`) ends its
    /// rest, an operator's or the breaker's, and its failures in a row start over.
    pub fn set_rest(
        &mut self,
        device: &DeviceId,
        until: Option<Millis>,
        reason: Option<String>,
        now: Millis,
    ) -> Vec<Action> {
        match until.filter(|it| *it > now) {
            Some(until) => {
                let reason = reason.unwrap_or_else(|| "rested by an operator".to_string());
                let breaker = self.breakers.entry(device.clone()).or_default();
                breaker.rested_until = Some(until);
                breaker.reason = Some(reason.clone());
                vec![Action::Rest {
                    device: device.clone(),
                    until: Some(until),
                    reason: Some(reason),
                }]
            }
            None => {
                let Some(breaker) = self.breakers.get_mut(device) else {
                    return Vec::new();
                };
                let was_rested = breaker.rested_until.take().is_some();
                breaker.reason = None;
                breaker.consecutive_failures = 0;
                breaker.rests_in_a_row = 0;
                if !was_rested {
                    return Vec::new();
                }
                vec![Action::Rest {
                    device: device.clone(),
                    until: None,
                    reason: None,
                }]
            }
        }
    }

    /// Why `device` is rested, to show when it reconnects during a rest.
    pub(super) fn rest_reason(&self, device: &DeviceId) -> Option<String> {
        self.breakers.get(device).map(|it| match &it.reason {
            Some(reason) => reason.clone(),
            None => format!("rested after {} failed rests in a row", it.rests_in_a_row),
        })
    }

    /// Whether `device` is resting at `now`.
    pub(super) fn rested(&self, device: &DeviceId, now: Millis) -> bool {
        self.breakers
            .get(device)
            .and_then(|it| it.rested_until)
            .is_some_and(|until| until > now)
    }
}
