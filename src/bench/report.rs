//! What a benchmark run measured: joined from the submit side and the phones' logs, shown as
//! one table and one JSON line.
//!
//! The JSON line is a contract for scripts (`tests/bench/vs-kannel.sh`, CI, people's own
//! dashboards): keys are only ever added, never renamed; a figure that could not be measured
//! is `null`, never a guess. Nothing here does I/O.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::BenchArgs;
use super::load::{LoadOutcome, histogram};
use super::phone::{FleetCounters, PhoneLog};
use super::procfs::Usage;
use super::target::Target;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Option<Percentiles> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |us: u64| round(us as f64 / 1000.0, 2);
        Some(Percentiles {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            max: ms(histogram.max()),
        })
    }
}

/// The measured figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `messages` or `connect-only`.
    pub mode: &'static str,
    /// `spawned`, `in-process` or `remote`.
    pub hub: &'static str,
    pub durability: String,
    pub devices: usize,
    pub connected: u64,
    pub max_in_flight: u32,
    pub messages: usize,
    pub warmup: usize,
    pub concurrency: usize,
    pub batch: usize,
    pub rate: Option<f64>,
    pub delivery_report: bool,
    pub phone_latency_ms: u64,

    /// Requests answered 2xx, and the messages they carried.
    pub requests: u64,
    pub accepted: u64,
    /// Messages accepted per second, first request start to last response end.
    pub accepted_per_s: Option<f64>,
    pub requests_per_s: Option<f64>,
    /// Messages per second from the first submit to the last `sent` stored.
    pub e2e_per_s: Option<f64>,
    /// Messages per second from the first submit to the last `delivered` stored.
    pub delivered_per_s: Option<f64>,
    pub http_window_s: Option<f64>,
    pub e2e_s: Option<f64>,
    pub delivered_s: Option<f64>,

    pub p50_submit_ms: Option<f64>,
    pub p90_submit_ms: Option<f64>,
    pub p99_submit_ms: Option<f64>,
    pub max_submit_ms: Option<f64>,
    pub p50_to_device_ms: Option<f64>,
    pub p90_to_device_ms: Option<f64>,
    pub p99_to_device_ms: Option<f64>,
    pub max_to_device_ms: Option<f64>,
    pub p50_e2e_ms: Option<f64>,
    pub p90_e2e_ms: Option<f64>,
    pub p99_e2e_ms: Option<f64>,
    pub max_e2e_ms: Option<f64>,
    pub p50_delivered_ms: Option<f64>,
    pub p90_delivered_ms: Option<f64>,
    pub p99_delivered_ms: Option<f64>,
    pub max_delivered_ms: Option<f64>,

    /// Hub CPU (user + system) per message over the measured phase.
    pub hub_cpu_ms_per_msg: Option<f64>,
    /// Hub CPU over the measured phase, in cores.
    pub hub_cpu_cores: Option<f64>,
    /// Hub peak RSS (`VmHWM`) in message mode; RSS with every phone connected in
    /// connect-only mode. In MB (MiB).
    pub hub_rss_mb: Option<f64>,
    pub hub_rss_peak_mb: Option<f64>,
    /// An in-process hub shares its memory figures with the load generator.
    pub memory_includes_load: bool,
    /// The harness's own CPU (load generator and phones).
    pub loadgen_cpu_ms_per_msg: Option<f64>,
    pub loadgen_cores: Option<f64>,
    /// CPU used by every other process on the machine during the measured phase, in cores.
    pub other_cores: Option<f64>,
    /// Hub nodes (`--nodes`), and each one's CPU per message (the first leads).
    pub nodes: usize,
    pub node_cpu_ms_per_msg: Vec<Option<f64>>,
    /// PostgreSQL's CPU (server and backends) per message and in cores; `null` on SQLite.
    pub database_cpu_ms_per_msg: Option<f64>,
    pub database_cores: Option<f64>,

    pub register_s: Option<f64>,
    pub connect_s: Option<f64>,
    pub wall_s: Option<f64>,

    /// Connect-only: the measured window, memory per phone and CPU at rest.
    pub window_s: Option<f64>,
    pub hub_rss_before_connect_mb: Option<f64>,
    pub rss_per_device_kb: Option<f64>,
    /// Hub CPU at rest, in percent of one core.
    pub idle_cpu_pct: Option<f64>,
    pub heartbeats: Option<u64>,
    pub status_reports: Option<u64>,

    /// Errors of any kind; must be 0.
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,

    #[serde(skip)]
    starts: Vec<(u128, u64)>,
    #[serde(skip)]
    first_start_us: u64,
}

/// `value` rounded to `places` decimals.
pub(super) fn round(value: f64, places: i32) -> f64 {
    let factor = 10f64.powi(places);
    (value * factor).round() / factor
}

fn per_s(count: u64, seconds: f64) -> Option<f64> {
    (seconds > 0.0 && count > 0).then(|| round(count as f64 / seconds, 1))
}

impl Report {
    pub(super) fn new(args: &BenchArgs, target: &Target) -> Report {
        Report {
            mode: if args.connect_only {
                "connect-only"
            } else {
                "messages"
            },
            hub: target.kind,
            durability: target.durability.clone(),
            devices: args.devices,
            connected: 0,
            max_in_flight: args.max_in_flight,
            messages: if args.connect_only { 0 } else { args.messages },
            warmup: if args.connect_only { 0 } else { args.warmup },
            concurrency: args.concurrency,
            batch: args.batch,
            rate: args.rate,
            delivery_report: args.delivery_report,
            phone_latency_ms: args.phone_latency_ms,
            requests: 0,
            accepted: 0,
            accepted_per_s: None,
            requests_per_s: None,
            e2e_per_s: None,
            delivered_per_s: None,
            http_window_s: None,
            e2e_s: None,
            delivered_s: None,
            p50_submit_ms: None,
            p90_submit_ms: None,
            p99_submit_ms: None,
            max_submit_ms: None,
            p50_to_device_ms: None,
            p90_to_device_ms: None,
            p99_to_device_ms: None,
            max_to_device_ms: None,
            p50_e2e_ms: None,
            p90_e2e_ms: None,
            p99_e2e_ms: None,
            max_e2e_ms: None,
            p50_delivered_ms: None,
            p90_delivered_ms: None,
            p99_delivered_ms: None,
            max_delivered_ms: None,
            hub_cpu_ms_per_msg: None,
            hub_cpu_cores: None,
            hub_rss_mb: None,
            hub_rss_peak_mb: None,
            memory_includes_load: target.memory_includes_load(),
            loadgen_cpu_ms_per_msg: None,
            loadgen_cores: None,
            other_cores: None,
            nodes: target.endpoints.len(),
            node_cpu_ms_per_msg: Vec::new(),
            database_cpu_ms_per_msg: None,
            database_cores: None,
            register_s: None,
            connect_s: None,
            wall_s: None,
            window_s: None,
            hub_rss_before_connect_mb: None,
            rss_per_device_kb: None,
            idle_cpu_pct: None,
            heartbeats: None,
            status_reports: None,
            errors: 0,
            error_kinds: BTreeMap::new(),
            starts: Vec::new(),
            first_start_us: 0,
        }
    }

    /// Counts `n` errors of `kind`.
    pub fn add_error(&mut self, kind: &str, n: u64) {
        if n == 0 {
            return;
        }
        self.errors += n;
        *self.error_kinds.entry(kind.to_string()).or_default() += n;
    }

    /// Takes in what the submitting side measured.
    pub(super) fn load(&mut self, outcome: LoadOutcome) {
        self.requests = outcome.requests_ok;
        self.accepted = outcome.messages_accepted;
        for (status, n) in &outcome.failures {
            let kind = if *status == 0 {
                "submit_transport".to_string()
            } else {
                format!("submit_http_{status}")
            };
            self.add_error(&kind, *n);
        }
        if outcome.timed_out {
            self.add_error("submit_timeout", 1);
        }
        let window = outcome.last_end_us.saturating_sub(outcome.first_start_us) as f64 / 1e6;
        self.http_window_s = Some(round(window, 3));
        self.accepted_per_s = per_s(self.accepted, window);
        self.requests_per_s = per_s(self.requests, window);
        if let Some(it) = Percentiles::of(&outcome.submit_us) {
            (
                self.p50_submit_ms,
                self.p90_submit_ms,
                self.p99_submit_ms,
                self.max_submit_ms,
            ) = (Some(it.p50), Some(it.p90), Some(it.p99), Some(it.max));
        }
        self.first_start_us = outcome.first_start_us;
        self.starts = outcome.starts;
    }

    /// Joins the phones' logs with the submit times: to-device and end-to-end latencies,
    /// end-to-end throughput, and messages lost, offered twice or sent twice.
    pub(super) fn join(&mut self, logs: &[PhoneLog]) {
        let starts: HashMap<u128, u64> = self.starts.iter().copied().collect();
        let mut to_device = histogram();
        let mut e2e = histogram();
        let mut delivered = histogram();
        let (mut offered, mut sent, mut reported) =
            (HashMap::new(), HashMap::new(), HashMap::new());
        let (mut offered_twice, mut sent_twice, mut delivered_twice) = (0, 0, 0);
        let (mut last_sent, mut last_delivered) = (0u64, 0u64);
        for log in logs {
            for (id, at) in &log.offers {
                let Some(start) = starts.get(id) else {
                    continue;
                };
                if offered.insert(*id, *at).is_some() {
                    offered_twice += 1;
                    continue;
                }
                to_device.saturating_record(at.saturating_sub(*start).max(1));
            }
            for (id, at) in &log.sent_acked {
                let Some(start) = starts.get(id) else {
                    continue;
                };
                if sent.insert(*id, *at).is_some() {
                    sent_twice += 1;
                    continue;
                }
                e2e.saturating_record(at.saturating_sub(*start).max(1));
                last_sent = last_sent.max(*at);
            }
            for (id, at) in &log.delivered_acked {
                let Some(start) = starts.get(id) else {
                    continue;
                };
                if reported.insert(*id, *at).is_some() {
                    delivered_twice += 1;
                    continue;
                }
                delivered.saturating_record(at.saturating_sub(*start).max(1));
                last_delivered = last_delivered.max(*at);
            }
        }
        self.add_error("offered_twice", offered_twice);
        self.add_error("sent_twice", sent_twice);
        self.add_error("delivered_twice", delivered_twice);
        let measured = starts.len() as u64;
        self.add_error(
            "never_offered",
            measured.saturating_sub(offered.len() as u64),
        );
        self.add_error(
            "sent_not_stored",
            measured.saturating_sub(sent.len() as u64),
        );
        if self.delivery_report {
            self.add_error(
                "delivered_not_stored",
                measured.saturating_sub(reported.len() as u64),
            );
        }
        if let Some(it) = Percentiles::of(&to_device) {
            (
                self.p50_to_device_ms,
                self.p90_to_device_ms,
                self.p99_to_device_ms,
                self.max_to_device_ms,
            ) = (Some(it.p50), Some(it.p90), Some(it.p99), Some(it.max));
        }
        if let Some(it) = Percentiles::of(&e2e) {
            (
                self.p50_e2e_ms,
                self.p90_e2e_ms,
                self.p99_e2e_ms,
                self.max_e2e_ms,
            ) = (Some(it.p50), Some(it.p90), Some(it.p99), Some(it.max));
            let window = last_sent.saturating_sub(self.first_start_us) as f64 / 1e6;
            self.e2e_s = Some(round(window, 3));
            self.e2e_per_s = per_s(sent.len() as u64, window);
        }
        if let Some(it) = Percentiles::of(&delivered) {
            (
                self.p50_delivered_ms,
                self.p90_delivered_ms,
                self.p99_delivered_ms,
                self.max_delivered_ms,
            ) = (Some(it.p50), Some(it.p90), Some(it.p99), Some(it.max));
            let window = last_delivered.saturating_sub(self.first_start_us) as f64 / 1e6;
            self.delivered_s = Some(round(window, 3));
            self.delivered_per_s = per_s(reported.len() as u64, window);
        }
    }

    /// CPU and memory over the measured phase of `wall_s` seconds.
    pub(super) fn resources(
        &mut self,
        hub_before: Option<Usage>,
        hub_after: Option<Usage>,
        own: Option<(f64, f64)>,
        machine: Option<(f64, f64)>,
        wall_s: f64,
    ) {
        let messages = self.accepted.max(1) as f64;
        let hub_cpu = hub_before.zip(hub_after).map(|(a, b)| b.cpu_ms - a.cpu_ms);
        if let Some(cpu) = hub_cpu {
            self.hub_cpu_ms_per_msg = Some(round(cpu / messages, 4));
            self.hub_cpu_cores = Some(round(cpu / 1000.0 / wall_s.max(1e-9), 2));
        }
        if let Some(after) = hub_after {
            self.hub_rss_mb = Some(round(after.hwm_kb as f64 / 1024.0, 1));
            self.hub_rss_peak_mb = self.hub_rss_mb;
        }
        let own_cpu = own.map(|(a, b)| b - a);
        if let Some(cpu) = own_cpu {
            self.loadgen_cpu_ms_per_msg = Some(round(cpu / messages, 4));
            self.loadgen_cores = Some(round(cpu / 1000.0 / wall_s.max(1e-9), 2));
        }
        if let (Some((a, b)), Some(hub), Some(own)) = (machine, hub_cpu, own_cpu) {
            self.other_cores = Some(round(
                ((b - a) - hub - own).max(0.0) / 1000.0 / wall_s.max(1e-9),
                2,
            ));
        }
    }

    /// Each node's CPU and the database's over the measured phase (after
    /// [`Report::resources`], whose `wall_s` it reuses).
    pub(super) fn cluster(
        &mut self,
        nodes_before: &[Option<Usage>],
        nodes_after: &[Option<Usage>],
        database: Option<(f64, f64)>,
    ) {
        let messages = self.accepted.max(1) as f64;
        self.node_cpu_ms_per_msg = nodes_before
            .iter()
            .zip(nodes_after)
            .map(|(a, b)| {
                a.zip(*b)
                    .map(|(a, b)| round((b.cpu_ms - a.cpu_ms) / messages, 4))
            })
            .collect();
        if let Some((a, b)) = database {
            let cpu = (b - a).max(0.0);
            self.database_cpu_ms_per_msg = Some(round(cpu / messages, 4));
            let wall_s = self.wall_s.unwrap_or(0.0);
            self.database_cores = Some(round(cpu / 1000.0 / wall_s.max(1e-9), 2));
        }
    }

    /// Checks the hub's own per-state counts moved as the phones saw: `expected` more
    /// messages in the final state, none failed, none left waiting.
    pub(super) fn check_states(
        &mut self,
        before: &HashMap<String, u64>,
        after: &HashMap<String, u64>,
        expected: u64,
        delivery_report: bool,
        waiting: u64,
    ) {
        let delta = |state: &str| {
            after
                .get(state)
                .copied()
                .unwrap_or(0)
                .saturating_sub(before.get(state).copied().unwrap_or(0))
        };
        let final_state = if delivery_report { "delivered" } else { "sent" };
        self.add_error(
            "hub_final_count_short",
            expected.saturating_sub(delta(final_state)),
        );
        self.add_error("hub_failed", delta("failed"));
        self.add_error("hub_waiting", waiting);
    }

    /// Connect-only figures.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn at_rest(
        &mut self,
        before_connect: Option<Usage>,
        window_start: Option<Usage>,
        window_end: Option<Usage>,
        window_s: f64,
        heartbeats: u64,
        status_reports: u64,
    ) {
        self.window_s = Some(round(window_s, 2));
        self.heartbeats = Some(heartbeats);
        self.status_reports = Some(status_reports);
        if let Some(end) = window_end {
            self.hub_rss_mb = Some(round(end.rss_kb as f64 / 1024.0, 1));
            self.hub_rss_peak_mb = Some(round(end.hwm_kb as f64 / 1024.0, 1));
        }
        if let (Some(before), Some(end)) = (before_connect, window_end) {
            self.hub_rss_before_connect_mb = Some(round(before.rss_kb as f64 / 1024.0, 1));
            if self.connected > 0 {
                let grown = end.rss_kb as f64 - before.rss_kb as f64;
                self.rss_per_device_kb = Some(round(grown / self.connected as f64, 2));
            }
        }
        if let (Some(start), Some(end)) = (window_start, window_end) {
            self.idle_cpu_pct = Some(round(
                (end.cpu_ms - start.cpu_ms) / (window_s * 1000.0).max(1e-9) * 100.0,
                2,
            ));
        }
    }

    /// Adds the errors the phones counted.
    pub(super) fn phone_errors(&mut self, counters: &FleetCounters) {
        let get = FleetCounters::get;
        self.add_error("phone_connect_failed", get(&counters.connect_failures));
        self.add_error("phone_dropped", get(&counters.dropped));
        self.add_error("phone_error_frame", get(&counters.error_frames));
        self.add_error("phone_revoked", get(&counters.revokes));
        self.add_error("phone_duplicate_offer", get(&counters.duplicate_offers));
        self.add_error("phone_protocol", get(&counters.protocol_errors));
    }

    /// The JSON line (no newline).
    pub fn json_line(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|err| format!("{{\"errors\":1,\"report_error\":\"{err}\"}}"))
    }

    /// The table, for people.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let num = |it: Option<f64>, unit: &str| {
            it.map(|v| format!("{v}{unit}"))
                .unwrap_or_else(|| "-".into())
        };
        if self.mode == "connect-only" {
            let _ = writeln!(
                out,
                "smshub bench --connect-only: {} phones ({} connected)",
                self.devices, self.connected
            );
            let _ = writeln!(
                out,
                "  hub            {}, durability {}",
                self.hub, self.durability
            );
            let _ = writeln!(
                out,
                "  registered in  {}   connected in {}",
                num(self.register_s.map(|it| round(it, 2)), " s"),
                num(self.connect_s.map(|it| round(it, 2)), " s")
            );
            let _ = writeln!(
                out,
                "  hub RSS        {} before connecting, {} connected ({} per phone){}",
                num(self.hub_rss_before_connect_mb, " MB"),
                num(self.hub_rss_mb, " MB"),
                num(self.rss_per_device_kb, " KiB"),
                if self.memory_includes_load {
                    " [includes the load generator]"
                } else {
                    ""
                }
            );
            let _ = writeln!(
                out,
                "  hub CPU        {} of one core at rest over {} ({} heartbeats, {} status reports)",
                num(self.idle_cpu_pct, " %"),
                num(self.window_s, " s"),
                self.heartbeats.unwrap_or(0),
                self.status_reports.unwrap_or(0)
            );
        } else {
            let mode = match self.rate {
                Some(rate) => format!("open loop at {rate} requests/s"),
                None => "closed loop".into(),
            };
            let _ = writeln!(
                out,
                "smshub bench: {} messages (+{} warm-up), {} phones x {} in flight, {} connections, batch {}, {}{}",
                self.messages,
                self.warmup,
                self.devices,
                self.max_in_flight,
                self.concurrency,
                self.batch,
                mode,
                if self.delivery_report {
                    ", delivery reports"
                } else {
                    ""
                }
            );
            let _ = writeln!(out, "  hub: {}, durability {}", self.hub, self.durability);
            let _ = writeln!(
                out,
                "  {:<30} {:>10} {:>9} {:>9} {:>9} {:>9}",
                "", "msg/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
            );
            let mut row = |name: &str, rate: Option<f64>, p: [Option<f64>; 4]| {
                let cell =
                    |it: Option<f64>| it.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    out,
                    "  {:<30} {:>10} {:>9} {:>9} {:>9} {:>9}",
                    name,
                    rate.map(|it| format!("{it:.0}"))
                        .unwrap_or_else(|| "-".into()),
                    cell(p[0]),
                    cell(p[1]),
                    cell(p[2]),
                    cell(p[3])
                );
            };
            row(
                "submit -> 202 (committed)",
                self.accepted_per_s,
                [
                    self.p50_submit_ms,
                    self.p90_submit_ms,
                    self.p99_submit_ms,
                    self.max_submit_ms,
                ],
            );
            row(
                "submit -> phone got send",
                None,
                [
                    self.p50_to_device_ms,
                    self.p90_to_device_ms,
                    self.p99_to_device_ms,
                    self.max_to_device_ms,
                ],
            );
            row(
                "submit -> sent stored",
                self.e2e_per_s,
                [
                    self.p50_e2e_ms,
                    self.p90_e2e_ms,
                    self.p99_e2e_ms,
                    self.max_e2e_ms,
                ],
            );
            if self.delivery_report {
                row(
                    "submit -> delivered stored",
                    self.delivered_per_s,
                    [
                        self.p50_delivered_ms,
                        self.p90_delivered_ms,
                        self.p99_delivered_ms,
                        self.max_delivered_ms,
                    ],
                );
            }
            let _ = writeln!(
                out,
                "  hub      CPU {} per message ({} cores), RSS peak {}{}",
                num(self.hub_cpu_ms_per_msg, " ms"),
                num(self.hub_cpu_cores, ""),
                num(self.hub_rss_mb, " MB"),
                if self.memory_includes_load {
                    " [includes the load generator]"
                } else {
                    ""
                }
            );
            if !self.node_cpu_ms_per_msg.is_empty() {
                let each: Vec<String> = self
                    .node_cpu_ms_per_msg
                    .iter()
                    .map(|it| num(*it, " ms"))
                    .collect();
                let _ = writeln!(
                    out,
                    "  nodes    {} (the first leads); CPU per message each: {}",
                    self.nodes,
                    each.join(", ")
                );
            }
            if self.database_cpu_ms_per_msg.is_some() {
                let _ = writeln!(
                    out,
                    "  postgres CPU {} per message ({} cores)",
                    num(self.database_cpu_ms_per_msg, " ms"),
                    num(self.database_cores, "")
                );
            }
            let _ = writeln!(
                out,
                "  harness  CPU {} per message ({} cores); other processes {} cores",
                num(self.loadgen_cpu_ms_per_msg, " ms"),
                num(self.loadgen_cores, ""),
                num(self.other_cores, "")
            );
        }
        let kinds: Vec<String> = self
            .error_kinds
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            out,
            "  errors   {}{}",
            self.errors,
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_in_milliseconds() {
        let mut h = histogram();
        for us in 1..=1000u64 {
            h.saturating_record(us * 10);
        }
        let p = Percentiles::of(&h).unwrap();
        assert!((p.p50 - 5.0).abs() < 0.01, "{p:?}");
        assert!((p.p99 - 9.9).abs() < 0.02, "{p:?}");
        assert!((p.max - 10.0).abs() < 0.02, "{p:?}");
        assert_eq!(Percentiles::of(&histogram()), None);
    }

    #[test]
    fn rates_need_time_and_count() {
        assert_eq!(per_s(100, 0.5), Some(200.0));
        assert_eq!(per_s(0, 1.0), None);
        assert_eq!(per_s(10, 0.0), None);
    }
}
