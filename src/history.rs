//! Each device's last day in memory: how much of each minute it was online, its battery
//! level, each SIM's signal, and how many messages it sent and failed. What the console draws
//! on a device's page and as the fleet cards' signal sparklines
//! (`GET /api/devices/{id}/history`); `/metrics` is the place for long-term history.
//!
//! [`DeviceHistory`] keeps, per device, only what the three views draw: the last hour minute
//! by minute, six hours in 5-minute steps, the day in 15-minute steps, and one bit a minute
//! for the day's online strip. A minute is folded into its 5- and 15-minute steps once it is
//! over (the sampler has moved on), so each step holds exact sums of whole minutes; the
//! minute in progress is read from the hour. Under 4 KB a device, made when the device is
//! first sampled and dropped when it is deleted (or no longer listed). It is fed by a sampler
//! in `app.rs` that every few seconds hands it every device (stored counters, and the live
//! status of those online); `sent` and `failed` are the growth of the device's stored
//! counters between samples. It starts empty at each start, like `series`.
//!
//! Must never: grow with traffic (fixed rings of fixed-size steps per device), know where
//! its samples come from (no store, registry or protocol types), or hold its mutex across an
//! `.await` (it has none).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{DeviceId, Millis, format_millis};

/// Minutes the online strip covers: a day.
pub const MINUTES: usize = 24 * 60;
/// SIM slots whose signal is kept (0-based): a dual-SIM phone's two; a higher slot is not
/// charted.
pub const SLOTS: usize = 2;

/// Minutes kept one by one: the hour view's.
const HOUR: usize = 60;
/// Steps kept of 5 and of 15 minutes: their window's, and the step its first minute falls in.
const FIVES: usize = 6 * 60 / 5 + 1;
const QUARTERS: usize = MINUTES / 15 + 1;
/// Words of the online strip, a bit a minute of the day.
const STRIP_WORDS: usize = MINUTES.div_ceil(64);
/// Minutes whose sampler ticks are kept: the day, and the oldest 15-minute step's start.
const TICKS: usize = MINUTES + 15;

/// What the console may ask for: a window, and the minutes each of its points covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last hour, a point a minute.
    Hour,
    /// The last six hours, a point per 5 minutes.
    SixHours,
    /// The last day, a point per 15 minutes.
    Day,
}

impl Window {
    /// The minutes the window covers.
    pub fn minutes(self) -> i64 {
        match self {
            Window::Hour => HOUR as i64,
            Window::SixHours => 6 * 60,
            Window::Day => MINUTES as i64,
        }
    }

    /// The minutes a point covers.
    pub fn step(self) -> i64 {
        match self {
            Window::Hour => 1,
            Window::SixHours => 5,
            Window::Day => 15,
        }
    }
}

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

/// One device's minute: 16 bytes.
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

/// Whole minutes of one device folded into a 5- or 15-minute step: 16 bytes.
#[derive(Clone, Copy)]
struct Step {
    /// The step's number (its first minute divided by its length), modulo 2^16: the ring is
    /// rewritten every few hours, so another step's slot is stale.
    at: u16,
    /// Hundredths of a minute the device was online (each minute's share of the sampler's
    /// ticks that found it online).
    online: u16,
    /// The last battery level of its minutes; `u8::MAX`: none.
    battery: u8,
    /// Count and sum of the signal samples of each slot, the sum in -dBm (a sample is 0 to
    /// 200, and a 15-minute step has at most 180 samples of a 5 s sampler).
    signal_n: [u8; SLOTS],
    signal_loss: [u16; SLOTS],
    sent: u16,
    failed: u16,
}

/// How many times the sampler ran in a minute (a device's `online` is out of these).
#[derive(Clone, Copy)]
struct Ticks {
    at: i64,
    n: u8,
}

/// A slot of a ring that knows which minute or step it holds.
trait Stamped: Copy {
    fn holds(&self, at: i64) -> bool;
    fn fresh(at: i64) -> Self;
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

impl Step {
    const EMPTY: Step = Step {
        at: u16::MAX,
        online: 0,
        battery: u8::MAX,
        signal_n: [0; SLOTS],
        signal_loss: [0; SLOTS],
        sent: 0,
        failed: 0,
    };

    /// Adds a minute that is over, online for `hundredths` of it.
    fn add(&mut self, minute: &Minute, hundredths: u16) {
        self.online = self.online.saturating_add(hundredths);
        if minute.battery != u8::MAX {
            self.battery = minute.battery;
        }
        for slot in 0..SLOTS {
            let loss = u16::try_from(-i32::from(minute.signal_sum[slot])).unwrap_or(0);
            self.signal_loss[slot] = self.signal_loss[slot].saturating_add(loss);
            self.signal_n[slot] = self.signal_n[slot].saturating_add(minute.signal_n[slot]);
        }
        self.sent = self.sent.saturating_add(minute.sent);
        self.failed = self.failed.saturating_add(minute.failed);
    }
}

fn stamp(at: i64) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

fn short_stamp(at: i64) -> u16 {
    u16::try_from(at.rem_euclid(1 << 16)).unwrap_or(u16::MAX)
}

impl Stamped for Minute {
    fn holds(&self, at: i64) -> bool {
        self.at == stamp(at)
    }
    fn fresh(at: i64) -> Minute {
        Minute {
            at: stamp(at),
            ..Minute::EMPTY
        }
    }
}

impl Stamped for Step {
    fn holds(&self, at: i64) -> bool {
        self.at == short_stamp(at)
    }
    fn fresh(at: i64) -> Step {
        Step {
            at: short_stamp(at),
            ..Step::EMPTY
        }
    }
}

impl Stamped for Ticks {
    fn holds(&self, at: i64) -> bool {
        self.at == at
    }
    fn fresh(at: i64) -> Ticks {
        Ticks { at, n: 0 }
    }
}

fn index(len: usize, at: i64) -> usize {
    usize::try_from(at.rem_euclid(len as i64)).unwrap_or(0)
}

/// The slot of `at` in a ring indexed by minute or step number, emptied first if it held
/// an older one.
fn slot<T: Stamped>(ring: &mut [T], at: i64) -> &mut T {
    let slot = &mut ring[index(ring.len(), at)];
    if !slot.holds(at) {
        *slot = T::fresh(at);
    }
    slot
}

fn get<T: Stamped>(ring: &[T], at: i64) -> Option<&T> {
    ring.get(index(ring.len(), at)).filter(|it| it.holds(at))
}

/// Everything kept of one device, in one allocation: under 4 KB.
struct Rings {
    minutes: [Minute; HOUR],
    fives: [Step; FIVES],
    quarters: [Step; QUARTERS],
    /// A bit a minute of the day (by minute number): online in at least half of the
    /// minute's samples. Set when the minute is folded.
    strip: [u64; STRIP_WORDS],
}

impl Rings {
    fn new() -> Box<Rings> {
        Box::new(Rings {
            minutes: [Minute::EMPTY; HOUR],
            fives: [Step::EMPTY; FIVES],
            quarters: [Step::EMPTY; QUARTERS],
            strip: [0; STRIP_WORDS],
        })
    }

    fn online_in(&self, minute: i64) -> bool {
        let bit = index(MINUTES, minute);
        self.strip[bit / 64] & (1 << (bit % 64)) != 0
    }

    fn set_online(&mut self, minute: i64, online: bool) {
        let bit = index(MINUTES, minute);
        if online {
            self.strip[bit / 64] |= 1 << (bit % 64);
        } else {
            self.strip[bit / 64] &= !(1 << (bit % 64));
        }
    }
}

struct Device {
    rings: Box<Rings>,
    /// Minutes up to this one are folded into the steps and the strip; later ones are read
    /// from the hour.
    folded: i64,
    /// The sampler's round that last listed it.
    round: u64,
    /// The counters at the last sample, to count what grew since.
    sent_count: i64,
    failed_count: i64,
}

impl Device {
    /// Folds the minutes after the last folded one, up to `through`, into the steps and the
    /// strip; `ticks` is final for them (the sampler has moved past).
    fn fold(&mut self, ticks: &[Ticks], through: i64) {
        let from = (self.folded + 1).max(through - MINUTES as i64 + 1);
        for at in from..=through {
            let n = get(ticks, at).map_or(0, |it| it.n);
            let minute = get(&self.rings.minutes, at).copied();
            let online = minute.map_or(0, |it| it.online.min(n));
            self.rings
                .set_online(at, n > 0 && u16::from(online) * 2 >= u16::from(n));
            let Some(minute) = minute else {
                continue;
            };
            let hundredths = if n == 0 {
                0
            } else {
                (u16::from(online) * 100 + u16::from(n) / 2) / u16::from(n)
            };
            slot(&mut self.rings.fives, at.div_euclid(5)).add(&minute, hundredths);
            slot(&mut self.rings.quarters, at.div_euclid(15)).add(&minute, hundredths);
        }
        self.folded = self.folded.max(through);
    }

    /// Whether the device counts as online in `minute`, sampled `n` times.
    fn online_in(&self, minute: i64, n: u8) -> bool {
        if minute > self.folded {
            get(&self.rings.minutes, minute)
                .is_some_and(|it| u16::from(it.online) * 2 >= u16::from(n))
        } else {
            self.rings.online_in(minute)
        }
    }
}

struct Inner {
    ticks: Vec<Ticks>,
    devices: HashMap<DeviceId, Device>,
    /// The sampler's rounds so far: a device not marked with the last is no longer listed.
    round: u64,
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

/// What a point adds up while it is built: whole folded steps and single minutes.
#[derive(Default)]
struct Sum {
    sampled: u32,
    /// Hundredths of a minute online.
    online: u32,
    battery: Option<u8>,
    signal_sum: [i64; SLOTS],
    signal_n: [i64; SLOTS],
    sent: u64,
    failed: u64,
}

impl Sum {
    fn step(&mut self, step: &Step) {
        self.online += u32::from(step.online);
        if step.battery != u8::MAX {
            self.battery = Some(step.battery);
        }
        for slot in 0..SLOTS {
            self.signal_sum[slot] -= i64::from(step.signal_loss[slot]);
            self.signal_n[slot] += i64::from(step.signal_n[slot]);
        }
        self.sent += u64::from(step.sent);
        self.failed += u64::from(step.failed);
    }

    fn minute(&mut self, minute: &Minute, ticks: u8) {
        if ticks > 0 {
            self.online += (u32::from(minute.online.min(ticks)) * 100 + u32::from(ticks) / 2)
                / u32::from(ticks);
        }
        if minute.battery != u8::MAX {
            self.battery = Some(minute.battery);
        }
        for slot in 0..SLOTS {
            self.signal_sum[slot] += i64::from(minute.signal_sum[slot]);
            self.signal_n[slot] += i64::from(minute.signal_n[slot]);
        }
        self.sent += u64::from(minute.sent);
        self.failed += u64::from(minute.failed);
    }

    fn point(self, first_minute: i64) -> Point {
        Point {
            t: format_millis(first_minute * 60_000),
            sampled_minutes: self.sampled,
            online_minutes: f64::from(self.online) / 100.0,
            battery: self.battery,
            signal: (0..SLOTS)
                .filter(|it| self.signal_n[*it] > 0)
                .map(|it| SlotSignal {
                    slot: it as u8,
                    dbm: i32::try_from(
                        (self.signal_sum[it] as f64 / self.signal_n[it] as f64).round() as i64,
                    )
                    .unwrap_or(0),
                })
                .collect(),
            sent: self.sent,
            failed: self.failed,
        }
    }
}

impl DeviceHistory {
    /// An empty history that began at `started_at`.
    pub fn new(started_at: Millis) -> DeviceHistory {
        DeviceHistory {
            started_at,
            inner: Mutex::new(Inner {
                ticks: vec![Ticks { at: i64::MIN, n: 0 }; TICKS],
                devices: HashMap::new(),
                round: 0,
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
            let Inner {
                ticks,
                devices: kept,
                round,
            } = inner;
            let tick = slot(ticks, minute);
            tick.n = tick.n.saturating_add(1);
            *round += 1;
            for sample in devices {
                if !kept.contains_key(&sample.device_id) {
                    // What an older device counted before its first sample is not this
                    // history's; a new one's first messages may come before it.
                    let new = sample.created_at >= started_at;
                    let device = Device {
                        rings: Rings::new(),
                        folded: minute - 1,
                        round: 0,
                        sent_count: if new { 0 } else { sample.sent_count },
                        failed_count: if new { 0 } else { sample.failed_count },
                    };
                    kept.insert(sample.device_id.clone(), device);
                }
                let Some(device) = kept.get_mut(&sample.device_id) else {
                    continue;
                };
                device.round = *round;
                if device.folded < minute - 1 {
                    device.fold(ticks, minute - 1);
                }
                let sent = grown(&mut device.sent_count, sample.sent_count);
                let failed = grown(&mut device.failed_count, sample.failed_count);
                let slot = slot(&mut device.rings.minutes, minute);
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
            // A device not listed in this round is gone (deleted).
            kept.retain(|_, device| device.round == *round);
        });
    }

    /// What the device sent and failed in the last day up to `now`, in whole 15-minute
    /// steps: the oldest step, partly more than a day old, is left out (and anything from
    /// before this history began).
    pub fn last_day(&self, device_id: &DeviceId, now: Millis) -> Traffic {
        let last = minute_of(now);
        let first = last - MINUTES as i64 + 1;
        self.with(|inner| {
            let mut sum = Sum::default();
            let Some(device) = inner.devices.get(device_id) else {
                return Traffic::default();
            };
            for step in first.div_euclid(15)..=last.div_euclid(15) {
                if step * 15 < first {
                    continue;
                }
                if let Some(step) = get(&device.rings.quarters, step) {
                    sum.step(step);
                }
            }
            for at in (device.folded + 1).max(first)..=last {
                if let Some(minute) = get(&device.rings.minutes, at) {
                    sum.minute(minute, 0);
                }
            }
            Traffic {
                sent: sum.sent,
                failed: sum.failed,
            }
        })
    }

    /// Forgets a device (it was deleted).
    pub fn forget(&self, device_id: &DeviceId) {
        self.with(|inner| inner.devices.remove(device_id));
    }

    /// The device's `window` up to `now`: its points, oldest first (the last one is the step
    /// in progress), and its online, offline and unknown periods at minute resolution.
    pub fn history(&self, device_id: &DeviceId, window: Window, now: Millis) -> History {
        let last = minute_of(now);
        let first = last - window.minutes() + 1;
        let step = window.step();
        self.with(|inner| {
            let device = inner.devices.get(device_id);
            let ticks = |minute: i64| get(&inner.ticks, minute).map_or(0, |it| it.n);
            let steps = window.minutes() / step;
            let last_step = last.div_euclid(step);
            let mut points = Vec::with_capacity(steps as usize);
            for number in last_step - steps + 1..=last_step {
                let start = number * step;
                let end = (start + step - 1).min(last);
                let mut sum = Sum::default();
                for minute in start..=end {
                    if ticks(minute) > 0 {
                        sum.sampled += 1;
                    }
                }
                if let Some(device) = device {
                    let folded = match window {
                        Window::Hour => None,
                        Window::SixHours => get(&device.rings.fives, number),
                        Window::Day => get(&device.rings.quarters, number),
                    };
                    if let Some(folded) = folded {
                        sum.step(folded);
                    }
                    // The hour reads every minute; a step, the minutes not yet folded into it.
                    let open = match window {
                        Window::Hour => start,
                        _ => start.max(device.folded + 1),
                    };
                    for minute in open..=end {
                        if let Some(it) = get(&device.rings.minutes, minute) {
                            sum.minute(it, ticks(minute));
                        }
                    }
                }
                points.push(sum.point(start));
            }
            let mut periods: Vec<Period> = Vec::new();
            for minute in first..=last {
                let n = ticks(minute);
                let presence = match device {
                    _ if n == 0 => Presence::Unknown,
                    Some(device) if device.online_in(minute, n) => Presence::Online,
                    _ => Presence::Offline,
                };
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
        // Minute 1005 starts a 5- and a 15-minute step.
        let base: Millis = 1_005 * 60_000;
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
        // Minute 2: not sampled (the hub was down). Minute 3: online, one sample. Minutes 0
        // to 2 are folded into their steps now; minute 3 is in progress.
        history.sample(
            base + 3 * 60_000,
            &[sample(&phone, true, 90, &[(1, -60)], 15, 3)],
        );
        let now = base + 3 * 60_000 + 5_000;

        let hour = history.history(&phone, Window::Hour, now);
        assert_eq!(hour.points.len(), 60);
        let minutes: Vec<(u32, f64, Option<u8>, u64, u64)> = hour.points[56..]
            .iter()
            .map(|it| {
                let (sampled, online) = (it.sampled_minutes, it.online_minutes);
                (sampled, online, it.battery, it.sent, it.failed)
            })
            .collect();
        assert_eq!(
            minutes,
            vec![
                (1, 1.0, Some(78), 3, 1),
                (1, 0.25, Some(77), 0, 0),
                (0, 0.0, None, 0, 0),
                (1, 1.0, Some(90), 2, 0),
            ]
        );
        assert_eq!(hour.points[56].t, format_millis(base));
        let signal = |point: &Point| -> Vec<(u8, i32)> {
            point.signal.iter().map(|it| (it.slot, it.dbm)).collect()
        };
        // Slot 0: mean of -70, -80, -72; slot 1: -90.
        assert_eq!(signal(&hour.points[56]), vec![(0, -74), (1, -90)]);
        let periods = |history: &History| -> Vec<(Presence, u32)> {
            history
                .periods
                .iter()
                .map(|it| (it.state, it.minutes))
                .collect()
        };
        assert_eq!(
            periods(&hour),
            vec![
                (Presence::Unknown, 56),
                (Presence::Online, 1),
                (Presence::Offline, 1),
                (Presence::Unknown, 1),
                (Presence::Online, 1),
            ]
        );
        assert_eq!(hour.periods[4].until, format_millis(base + 4 * 60_000));

        // The 6 h and 24 h views: the step in progress adds the folded minutes and the one
        // in progress.
        for (window, points, step) in [(Window::SixHours, 72, 5), (Window::Day, 96, 15)] {
            let out = history.history(&phone, window, now);
            assert_eq!(out.points.len(), points, "{window:?}");
            let last = out.points.last().expect("a point");
            assert_eq!(last.t, format_millis(base), "{window:?}");
            assert_eq!(last.sampled_minutes, 3, "{window:?}");
            assert_eq!(last.online_minutes, 2.25, "{window:?}");
            assert_eq!((last.battery, last.sent, last.failed), (Some(90), 5, 1));
            // Slot 0: mean of -70, -80, -72, -100 (-80.5); slot 1: of -90 and -60.
            assert_eq!(signal(last), vec![(0, -81), (1, -75)], "{window:?}");
            let before = &out.points[points - 2];
            assert_eq!(before.t, format_millis(base - step * 60_000), "{window:?}");
            assert_eq!(before.sampled_minutes, 0, "{window:?}");
            assert_eq!(
                out.periods.iter().map(|it| it.minutes).sum::<u32>(),
                step as u32 * points as u32
            );
            assert_eq!(periods(&out)[1..], periods(&hour)[1..], "{window:?}");
        }
        assert_eq!(
            history.last_day(&phone, now),
            Traffic { sent: 5, failed: 1 }
        );

        // A day later: the hour holds new minutes; the day's strip still knows minutes 1
        // and 3, read from the bits their folding set.
        let later = base + (MINUTES as i64) * 60_000;
        history.sample(later, &[sample(&phone, false, 50, &[], 15, 3)]);
        let out = history.history(&phone, Window::Hour, later);
        let last = out.points.last().expect("a point");
        assert_eq!((last.online_minutes, last.battery), (0.0, Some(50)));
        assert_eq!(
            out.periods.last().map(|it| it.state),
            Some(Presence::Offline)
        );
        assert_eq!(
            periods(&history.history(&phone, Window::Day, later)),
            vec![
                (Presence::Offline, 1),
                (Presence::Unknown, 1),
                (Presence::Online, 1),
                (Presence::Unknown, 1436),
                (Presence::Offline, 1),
            ]
        );
        // The last day counts whole 15-minute steps: a minute before, minute 0's step was
        // all in the day; now it is partly older, and left out.
        assert_eq!(
            history.last_day(&phone, later - 60_000),
            Traffic { sent: 5, failed: 1 }
        );
        assert_eq!(history.last_day(&phone, later), Traffic::default());

        // A device no longer listed (deleted) is dropped with its history; one registered
        // since the history began counts from zero, even what it sent before its first
        // sample.
        let other = DeviceId::parse("phone-2").expect("an id");
        let new = Sample {
            created_at: base + 1,
            ..sample(&other, true, 60, &[], 2, 0)
        };
        history.sample(later + 5_000, &[new]);
        let last_point = |id: &DeviceId| -> Point {
            let out = history.history(id, Window::Hour, later + 5_000);
            out.points.last().cloned().expect("a point")
        };
        assert_eq!(last_point(&other).sent, 2);
        assert_eq!(last_point(&phone).battery, None);
        history.forget(&other);
        assert_eq!(last_point(&other).battery, None);
    }

    #[test]
    fn a_device_keeps_under_4_kb() {
        assert_eq!(std::mem::size_of::<Step>(), 16);
        assert!(
            std::mem::size_of::<Rings>() <= 3_900,
            "{}",
            std::mem::size_of::<Rings>()
        );
    }
}
