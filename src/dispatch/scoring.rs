//! Which device (and SIM) should send the next message: eligibility and health scores.
//!
//! Pure functions of the devices' last reported status; no I/O, no clock. The rules are
//! documented in the README ("How a device is chosen") and must stay in step with it.

use smshub_protocol::device::{Battery, SimStatus, Status};

/// Tunables for eligibility.
#[derive(Debug, Clone, Copy)]
pub struct ScoringConfig {
    /// Below this battery percentage a device that is not charging gets no new jobs.
    pub min_battery: u8,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig { min_battery: 15 }
    }
}

/// A device eligible for a message: the SIM to use and the device's weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// `None` when the device reported no SIMs and chooses itself.
    pub sim_slot: Option<u8>,
    /// Higher is better; always > 0.
    pub weight: f64,
}

/// Scores a device for one message, or `None` if it must not get it.
///
/// - excluded: no `status` reported yet (a device reports it right after `hello`); at its
///   in-flight limit; battery below `min_battery` and not charging; the requested SIM
///   missing; every usable SIM unregistered or without signal.
/// - `power` = 1 when charging, else battery/100 (0.5 when unknown);
/// - `signal` = (dBm + 113) / 62 clamped to 0..1, else level/4, else 0.5 when unknown;
/// - `weight` = (power + signal) / 2 × (1 − in_flight / max_in_flight), at least 0.01.
pub fn score(
    status: Option<&Status>,
    in_flight: u32,
    max_in_flight: u32,
    requested_sim: Option<u8>,
    config: &ScoringConfig,
) -> Option<Candidate> {
    score_with(
        status,
        in_flight,
        max_in_flight,
        requested_sim,
        config,
        |_| true,
    )
}

/// [`score`], considering only the SIMs for which `usable` says yes (quotas, pacing).
pub fn score_with(
    status: Option<&Status>,
    in_flight: u32,
    max_in_flight: u32,
    requested_sim: Option<u8>,
    config: &ScoringConfig,
    usable: impl FnMut(u8) -> bool,
) -> Option<Candidate> {
    Health::of(status?, config)?.candidate(in_flight, max_in_flight, requested_sim, usable)
}

/// The part of a device's score that depends on its status alone, not on the message: worked
/// out once per dispatch pass rather than once per message and device.
#[derive(Debug, Clone)]
pub struct Health {
    power: f64,
    /// Each SIM with service and its signal, in the reported order; a slot the status does
    /// not list is unavailable (spec 8.1), so a device reporting no SIM gets no job. Shared: a
    /// pass copies it.
    sims: std::sync::Arc<[(u8, f64)]>,
}

impl Health {
    /// `None` when the device must get no message whatever it is (battery too low).
    pub fn of(status: &Status, config: &ScoringConfig) -> Option<Health> {
        let power = power(status.battery, config)?;
        let sims = status
            .sims
            .iter()
            .filter_map(|it| signal(it).map(|s| (it.slot, s)))
            .collect();
        Some(Health { power, sims })
    }

    /// The device's candidacy for a message that asks for `requested_sim`.
    pub fn candidate(
        &self,
        in_flight: u32,
        max_in_flight: u32,
        requested_sim: Option<u8>,
        mut usable: impl FnMut(u8) -> bool,
    ) -> Option<Candidate> {
        if in_flight >= max_in_flight {
            return None;
        }
        let best = self
            .sims
            .iter()
            .filter(|(slot, _)| requested_sim.is_none_or(|it| *slot == it))
            .filter(|(slot, _)| usable(*slot))
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        let (sim_slot, signal) = (Some(best.0), best.1);
        let load = f64::from(in_flight) / f64::from(max_in_flight.max(1));
        let weight = ((self.power + signal) / 2.0 * (1.0 - load)).max(0.01);
        Some(Candidate { sim_slot, weight })
    }
}

fn power(battery: Option<Battery>, config: &ScoringConfig) -> Option<f64> {
    match battery {
        None => Some(0.5),
        Some(it) if it.charging => Some(1.0),
        Some(it) if it.level < config.min_battery => None,
        Some(it) => Some(f64::from(it.level.min(100)) / 100.0),
    }
}

/// Signal quality of a SIM in 0..=1, or `None` if it cannot send.
pub fn signal(sim: &SimStatus) -> Option<f64> {
    if !sim.registered {
        return None;
    }
    match (sim.signal_dbm, sim.signal_level) {
        (Some(dbm), _) if dbm <= -113 => None,
        (Some(dbm), _) => Some((f64::from(dbm + 113) / 62.0).clamp(0.0, 1.0)),
        (None, Some(0)) => None,
        (None, Some(level)) => Some(f64::from(level.min(4)) / 4.0),
        (None, None) => Some(0.5),
    }
}

/// Smooth weighted round-robin (as in nginx): each pick adds every candidate's weight to its
/// running credit, takes the candidate with the most credit, and charges it the total. Over
/// time each candidate is picked in proportion to its weight, without bursts, and
/// deterministically, so tests can check the distribution exactly.
pub fn pick(credits: &mut [f64], weights: &[f64]) -> Option<usize> {
    let total: f64 = weights.iter().sum();
    let mut best: Option<usize> = None;
    for (idx, weight) in weights.iter().enumerate() {
        credits[idx] += weight;
        if best.is_none_or(|b| credits[idx] > credits[b]) {
            best = Some(idx);
        }
    }
    if let Some(b) = best {
        credits[b] -= total;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(level: u8, charging: bool, dbm: Option<i32>) -> Status {
        Status {
            battery: Some(Battery { level, charging }),
            sims: vec![SimStatus {
                slot: 0,
                signal_dbm: dbm,
                registered: true,
                ..Default::default()
            }],
            connection: None,
        }
    }

    #[test]
    fn eligibility() {
        let config = ScoringConfig::default();
        let check = |status: Option<Status>, in_flight, requested, eligible: bool| {
            let got = score(status.as_ref(), in_flight, 4, requested, &config);
            assert_eq!(
                got.is_some(),
                eligible,
                "{status:?} {in_flight} {requested:?}: {got:?}"
            );
        };
        check(Some(status(80, false, Some(-70))), 0, None, true);
        check(Some(status(80, false, Some(-70))), 4, None, false);
        check(Some(status(10, false, Some(-70))), 0, None, false);
        check(Some(status(10, true, Some(-70))), 0, None, true);
        check(Some(status(80, false, Some(-113))), 0, None, false);
        check(Some(status(80, false, Some(-70))), 0, Some(1), false);
        check(Some(status(80, false, Some(-70))), 0, Some(0), true);
        check(None, 0, None, false);
        // No SIM reported: no slot to send with (spec 8.1), whatever the message asks.
        check(Some(Status::default()), 0, Some(1), false);
        check(Some(Status::default()), 0, None, false);
        let mut unregistered = status(80, false, Some(-70));
        unregistered.sims[0].registered = false;
        check(Some(unregistered), 0, None, false);
    }

    #[test]
    fn healthy_idle_beats_weak_busy() {
        let config = ScoringConfig::default();
        let healthy = score(Some(&status(95, true, Some(-65))), 0, 4, None, &config).unwrap();
        let weak = score(Some(&status(30, false, Some(-105))), 2, 4, None, &config).unwrap();
        assert!(
            healthy.weight > 3.0 * weak.weight,
            "{healthy:?} vs {weak:?}"
        );
    }

    #[test]
    fn best_sim_is_chosen() {
        let mut it = status(90, false, Some(-100));
        it.sims.push(SimStatus {
            slot: 1,
            signal_dbm: Some(-60),
            registered: true,
            ..Default::default()
        });
        let got = score(Some(&it), 0, 4, None, &ScoringConfig::default()).unwrap();
        assert_eq!(got.sim_slot, Some(1));
    }

    #[test]
    fn round_robin_follows_weights() {
        let weights = [3.0, 1.0];
        let mut credits = [0.0, 0.0];
        let picks: Vec<usize> = (0..8)
            .map(|_| pick(&mut credits, &weights).unwrap())
            .collect();
        assert_eq!(picks.iter().filter(|it| **it == 0).count(), 6);
        assert_eq!(picks, vec![0, 0, 1, 0, 0, 0, 1, 0]);
    }
}
