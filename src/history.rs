//! Each device's last day, minute by minute, in memory: how much of each minute it was
//! online, its battery level, each SIM's signal, and how many messages it sent and failed.
//! What the console draws on a device's page and as the fleet cards' signal sparklines
//! (`GET /api/devices/{id}/history`); `/metrics` is the place for long-term history.
//!
//! [`DeviceHistory`] keeps one ring of [`MINUTES`] minutes per device, made when the device
//! is first sampled and dropped when it is deleted (or no longer listed). It is fed by a
//! sampler in `app.rs` that every few seconds hands it every device (stored counters, and
//! the live status of those online); `sent` and `failed` are the growth of the device's
//! stored counters between samples. It starts empty at each start, like `series`.
//!
//! Must never: grow with traffic (a fixed ring of fixed-size minutes per device), know where
//! its samples come from (no store, registry or protocol types), or hold its mutex across an
//! `.await` (it has none).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{DeviceId, Millis, format_millis};

/// Minutes kept: a day.
pub const MINUTES: usize = 24 * 60;
/// SIM slots whose signal is kept (0-based): a dual-SIM phone's two; a higher slot is not
/// charted. Each slot costs every device 4 bytes a minute.
pub const SLOTS: usize = 2;

/// What the sampler knows of one device at one instant.
#[derive(Debug, Clone)]
pub struct Sample {
    pub device_id: DeviceId,
    pub online: bool,
    /// Percent, when the device reports it.
    pub battery: Option<u8>,
    /// (slot, dBm) of each SIM that reports a signal.
    pub signal: Vec<(u8, i32)>,
    /// The device's stored counters (they only grow).
    pub sent_count: i64,
    pub failed_count: i64,
    /// When the device was registered: one registered since this history began counts its
    /// counters from zero, an older one from its first sample.
    pub created_at: Millis,
}

/// One device's minute: 16 bytes, a day of them 23 KB (what a connected device costs here).
#[derive(Clone, Copy)]
struct Minute {
    /// Minutes since the Unix epoch this slot holds (`u32`: until the year 10136); another
    /// minute's slot is stale.
    at: u32,
    /// Samples that found the device online.
    online: u8,
    /// The last battery level sampled in the minute; `u8::MAX`: none.
    battery: u8,
    /// Sum and count of the signal samples of each slot.
    signal_sum: [i16; SLOTS],
    signal_n: [u8; SLOTS],
    sent: u16,
    failed: u16,
}

impl Minute {
    const EMPTY: Minute = Minute {
        at: u32::MAX,
        online: 0,
        battery: u8::MAX,
        signal_sum: [0; SLOTS],
        signal_n: [0; SLOTS],
        sent: 0,
        failed: 0,
    };
}

/// A fixed ring of minutes, indexed by the minute's number.
struct Ring<T> {
    slots: Vec<T>,
}

trait Stamped: Copy {
    const EMPTY: Self;
    fn at(&self) -> i64;
    fn fresh(at: i64) -> Self;
}

impl Stamped for Minute {
    const EMPTY: Minute = Minute::EMPTY;
    fn at(&self) -> i64 {
        i64::from(self.at)
    }
    fn fresh(at: i64) -> Minute {
        Minute {
            at: u32::try_from(at).unwrap_or(u32::MAX),
            ..Minute::EMPTY
        }
    }
}

/// How many times the sampler ran in a minute (a device's `online` is out of these).
#[derive(Clone, Copy)]
struct Ticks {
    at: i64,
    n: u8,
}

impl Stamped for Ticks {
    const EMPTY: Ticks = Ticks { at: i64::MIN, n: 0 };
    fn at(&self) -> i64 {
        self.at
    }
    fn fresh(at: i64) -> Ticks {
        Ticks { at, n: 0 }
    }
}

impl<T: Stamped> Ring<T> {
    fn new() -> Ring<T> {
        Ring {
            slots: vec![T::EMPTY; MINUTES],
        }
    }

    fn index(minute: i64) -> usize {
        usize::try_from(minute.rem_euclid(MINUTES as i64)).unwrap_or(0)
    }

    /// The slot of `minute`, emptied first if it held an older one.
    fn slot(&mut self, minute: i64) -> &mut T {
        let slot = &mut self.slots[Self::index(minute)];
        if slot.at() != minute {
            *slot = T::fresh(minute);
        }
        slot
    }

    fn get(&self, minute: i64) -> Option<&T> {
        self.slots
            .get(Self::index(minute))
            .filter(|it| it.at() == minute)
    }
}

struct Device {
    minutes: Ring<Minute>,
    /// The counters at the last sample, to count what grew since.
    sent_count: i64,
    failed_count: i64,
}

struct Inner {
    ticks: Ring<Ticks>,
    devices: HashMap<DeviceId, Device>,
}

/// Every device's last day (see the module's documentation).
pub struct DeviceHistory {
    /// When this history began (the hub's start).
    started_at: Millis,
    inner: Mutex<Inner>,
}

impl Default for DeviceHistory {
    fn default() -> DeviceHistory {
        DeviceHistory::new(crate::domain::now_millis())
    }
}

fn minute_of(at: Millis) -> i64 {
    at.div_euclid(60_000)
}

impl DeviceHistory {
    /// An empty history that began at `started_at`.
    pub fn new(started_at: Millis) -> DeviceHistory {
        DeviceHistory {
            started_at,
            inner: Mutex::new(Inner {
                ticks: Ring::new(),
                devices: HashMap::new(),
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(|it| it.into_inner());
        f(&mut inner)
    }

    /// One round of the sampler at `at`: every device there is. A device missing from
    /// `devices` is gone (deleted) and its history with it.
    pub fn sample(&self, at: Millis, devices: &[Sample]) {
        let minute = minute_of(at);
        let started_at = self.started_at;
        self.with(|inner| {
            let ticks = inner.ticks.slot(minute);
            ticks.n = ticks.n.saturating_add(1);
            let listed: HashSet<&DeviceId> = devices.iter().map(|it| &it.device_id).collect();
            inner.devices.retain(|id, _| listed.contains(id));
            for sample in devices {
                let device = inner
                    .devices
                    .entry(sample.device_id.clone())
                    .or_insert_with(|| {
                        // What an older device counted before its first sample is not this
                        // history's; a new one's first messages may come before it.
                        let new = sample.created_at >= started_at;
                        Device {
                            minutes: Ring::new(),
                            sent_count: if new { 0 } else { sample.sent_count },
                            failed_count: if new { 0 } else { sample.failed_count },
                        }
                    });
                let sent = grown(&mut device.sent_count, sample.sent_count);
                let failed = grown(&mut device.failed_count, sample.failed_count);
                let slot = device.minutes.slot(minute);
                slot.sent = slot.sent.saturating_add(sent);
                slot.failed = slot.failed.saturating_add(failed);
                if sample.online {
                    slot.online = slot.online.saturating_add(1);
                }
                if let Some(level) = sample.battery {
                    slot.battery = level.min(100);
                }
                for (sim, dbm) in &sample.signal {
                    let index = usize::from(*sim);
                    if index >= SLOTS {
                        continue;
                    }
                    let dbm = i16::try_from((*dbm).clamp(-200, 0)).unwrap_or(0);
                    slot.signal_sum[index] = slot.signal_sum[index].saturating_add(dbm);
                    slot.signal_n[index] = slot.signal_n[index].saturating_add(1);
                }
            }
        });
    }

    /// What the device sent and failed in the last day up to `now` (since this history
    /// began, when that is less than a day ago).
    pub fn last_day(&self, device_id: &DeviceId, now: Millis) -> Traffic {
        let last = minute_of(now);
        self.with(|inner| {
            let mut traffic = Traffic::default();
            let Some(device) = inner.devices.get(device_id) else {
                return traffic;
            };
            for minute in last - MINUTES as i64 + 1..=last {
                if let Some(slot) = device.minutes.get(minute) {
                    traffic.sent += u64::from(slot.sent);
                    traffic.failed += u64::from(slot.failed);
                }
            }
            traffic
        })
    }

    /// Forgets a device (it was deleted).
    pub fn forget(&self, device_id: &DeviceId) {
        self.with(|inner| inner.devices.remove(device_id));
    }

    /// The device's last `minutes` minutes up to `now`, `step` minutes per point, oldest
    /// first, and its online, offline and unknown periods at minute resolution.
    pub fn history(
        &self,
        device_id: &DeviceId,
        minutes: usize,
        step: usize,
        now: Millis,
    ) -> History {
        let minutes = minutes.clamp(1, MINUTES);
        let step = step.clamp(1, minutes);
        let last = minute_of(now);
        let first = last - minutes as i64 + 1;
        self.with(|inner| {
            let device = inner.devices.get(device_id);
            let state = |minute: i64| -> Presence {
                let ticks = inner.ticks.get(minute).map_or(0, |it| it.n);
                if ticks == 0 {
                    return Presence::Unknown;
                }
                let online = device
                    .and_then(|it| it.minutes.get(minute))
                    .map_or(0, |it| it.online);
                if u16::from(online) * 2 >= u16::from(ticks) {
                    Presence::Online
                } else {
                    Presence::Offline
                }
            };
            let mut points = Vec::with_capacity(minutes / step + 1);
            let mut start = first;
            while start <= last {
                let end = (start + step as i64 - 1).min(last);
                let mut point = Point {
                    t: format_millis(start * 60_000),
                    sampled_minutes: 0,
                    online_minutes: 0.0,
                    battery: None,
                    signal: Vec::new(),
                    sent: 0,
                    failed: 0,
                };
                let mut signal_sum = [0i64; SLOTS];
                let mut signal_n = [0i64; SLOTS];
                for minute in start..=end {
                    let ticks = inner.ticks.get(minute).map_or(0, |it| it.n);
                    if ticks > 0 {
                        point.sampled_minutes += 1;
                    }
                    let Some(slot) = device.and_then(|it| it.minutes.get(minute)) else {
                        continue;
                    };
                    if ticks > 0 {
                        point.online_minutes +=
                            f64::from(slot.online.min(ticks)) / f64::from(ticks);
                    }
                    if slot.battery != u8::MAX {
                        point.battery = Some(slot.battery);
                    }
                    for (sum, n) in signal_sum.iter_mut().zip(slot.signal_sum) {
                        *sum += i64::from(n);
                    }
                    for (sum, n) in signal_n.iter_mut().zip(slot.signal_n) {
                        *sum += i64::from(n);
                    }
                    point.sent += u64::from(slot.sent);
                    point.failed += u64::from(slot.failed);
                }
                point.online_minutes = (point.online_minutes * 100.0).round() / 100.0;
                point.signal = (0..SLOTS)
                    .filter(|it| signal_n[*it] > 0)
                    .map(|it| SlotSignal {
                        slot: it as u8,
                        dbm: i32::try_from(
                            (signal_sum[it] as f64 / signal_n[it] as f64).round() as i64
                        )
                        .unwrap_or(0),
                    })
                    .collect();
                points.push(point);
                start = end + 1;
            }
            let mut periods: Vec<Period> = Vec::new();
            for minute in first..=last {
                let presence = state(minute);
                match periods.last_mut() {
                    Some(period) if period.state == presence => {
                        period.until = format_millis((minute + 1) * 60_000);
                        period.minutes += 1;
                    }
                    _ => periods.push(Period {
                        from: format_millis(minute * 60_000),
                        until: format_millis((minute + 1) * 60_000),
                        state: presence,
                        minutes: 1,
                    }),
                }
            }
            History { points, periods }
        })
    }
}

/// Messages sent and failed over a span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub sent: u64,
    pub failed: u64,
}

/// How much `counter` grew since `last`, which becomes `counter` (a counter that went back,
/// a device deleted and added again, counts nothing).
fn grown(last: &mut i64, counter: i64) -> u16 {
    let grew = counter.saturating_sub(*last).max(0);
    *last = counter;
    u16::try_from(grew).unwrap_or(u16::MAX)
}

/// A device's steps and periods.
pub struct History {
    pub points: Vec<Point>,
    pub periods: Vec<Period>,
}

/// One step of a device's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = HistoryPoint)]
pub struct Point {
    /// Start of the step, RFC 3339.
    pub t: String,
    /// Minutes of the step in which the hub was sampling (the rest are unknown).
    pub sampled_minutes: u32,
    /// Minutes of the step the device was online (in hundredths).
    pub online_minutes: f64,
    /// The last battery level sampled in the step, percent.
    pub battery: Option<u8>,
    /// Each SIM's mean signal over the step's samples (slots without one are left out).
    pub signal: Vec<SlotSignal>,
    /// Messages the device sent, and that failed on it, in the step.
    pub sent: u64,
    pub failed: u64,
}

/// One SIM's signal in a step.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlotSignal {
    /// 0-based SIM slot.
    pub slot: u8,
    pub dbm: i32,
}

/// Whether the device was online in a minute: `unknown` when the hub was not sampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    Offline,
    Unknown,
}

/// Minutes in a row of one [`Presence`].
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Period {
    /// RFC 3339, inclusive.
    pub from: String,
    /// RFC 3339, exclusive.
    pub until: String,
    pub state: Presence,
    pub minutes: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_of_a_device_takes_16_bytes() {
        assert_eq!(std::mem::size_of::<Minute>(), 16);
    }

    fn sample(
        id: &DeviceId,
        online: bool,
        battery: u8,
        signal: &[(u8, i32)],
        sent: i64,
        failed: i64,
    ) -> Sample {
        Sample {
            device_id: id.clone(),
            online,
            battery: Some(battery),
            signal: signal.to_vec(),
            sent_count: sent,
            failed_count: failed,
            created_at: 0,
        }
    }

    #[test]
    fn minutes_online_battery_and_signal_add_up_into_steps_and_periods() {
        let base: Millis = 1_000 * 60_000;
        let history = DeviceHistory::new(base - 1);
        let phone = DeviceId::parse("phone-1").expect("an id");
        // Minute 0: four samples, online in all; counters start at 10 sent, 2 failed (the
        // baseline: nothing counted), then 3 more sent and 1 failed.
        history.sample(
            base,
            &[sample(&phone, true, 80, &[(0, -70), (1, -90)], 10, 2)],
        );
        history.sample(
            base + 15_000,
            &[sample(&phone, true, 79, &[(0, -80)], 12, 2)],
        );
        history.sample(
            base + 30_000,
            &[sample(&phone, true, 78, &[(0, -72)], 13, 3)],
        );
        history.sample(base + 45_000, &[sample(&phone, true, 78, &[], 13, 3)]);
        // Minute 1: online in one of four samples: offline for the strip, a quarter online.
        history.sample(
            base + 60_000,
            &[sample(&phone, true, 77, &[(0, -100)], 13, 3)],
        );
        for s in 1..4 {
            history.sample(
                base + 60_000 + s * 15_000,
                &[sample(&phone, false, 77, &[], 13, 3)],
            );
        }
        // Minute 2: not sampled (the hub was down). Minute 3: online, one sample.
        history.sample(
            base + 3 * 60_000,
            &[sample(&phone, true, 90, &[(1, -60)], 15, 3)],
        );

        let out = history.history(&phone, 4, 2, base + 3 * 60_000 + 5_000);
        assert_eq!(out.points.len(), 2);
        assert_eq!(
            history.last_day(&phone, base + 3 * 60_000 + 5_000),
            Traffic { sent: 5, failed: 1 }
        );
        let (a, b) = (&out.points[0], &out.points[1]);
        assert_eq!(a.sampled_minutes, 2);
        assert_eq!(a.online_minutes, 1.25);
        assert_eq!(a.battery, Some(77));
        assert_eq!((a.sent, a.failed), (3, 1));
        // Slot 0: mean of -70, -80, -72, -100; slot 1: -90.
        let signal: Vec<(u8, i32)> = a.signal.iter().map(|it| (it.slot, it.dbm)).collect();
        assert_eq!(signal, vec![(0, -81), (1, -90)]);
        assert_eq!(b.sampled_minutes, 1);
        assert_eq!(b.online_minutes, 1.0);
        assert_eq!((b.sent, b.battery), (2, Some(90)));
        let periods: Vec<(Presence, u32)> = out
            .periods
            .iter()
            .map(|it| (it.state, it.minutes))
            .collect();
        assert_eq!(
            periods,
            vec![
                (Presence::Online, 1),
                (Presence::Offline, 1),
                (Presence::Unknown, 1),
                (Presence::Online, 1),
            ]
        );
        assert_eq!(out.periods[0].from, format_millis(base));
        assert_eq!(out.periods[3].until, format_millis(base + 4 * 60_000));

        // A day later the same slots hold new minutes: the old ones are gone.
        let later = base + (MINUTES as i64) * 60_000;
        history.sample(later, &[sample(&phone, false, 50, &[], 15, 3)]);
        let out = history.history(&phone, 1, 1, later);
        assert_eq!(out.points[0].online_minutes, 0.0);
        assert_eq!(out.points[0].battery, Some(50));
        assert_eq!(out.periods[0].state, Presence::Offline);
        // The last day is a rolling one: minute 0 has left it, minute 3 has not.
        assert_eq!(
            history.last_day(&phone, later),
            Traffic { sent: 2, failed: 0 }
        );

        // A device no longer listed (deleted) is dropped with its history; one registered
        // since the history began counts from zero, even what it sent before its first
        // sample.
        let other = DeviceId::parse("phone-2").expect("an id");
        let new = Sample {
            created_at: base + 1,
            ..sample(&other, true, 60, &[], 2, 0)
        };
        history.sample(later + 5_000, &[new]);
        assert_eq!(
            history.history(&other, 1, 1, later + 5_000).points[0].sent,
            2
        );
        let out = history.history(&phone, 1, 1, later + 5_000);
        assert_eq!(out.points[0].battery, None);
        history.forget(&other);
        assert_eq!(
            history.history(&other, 1, 1, later + 5_000).points[0].battery,
            None
        );
    }
}
