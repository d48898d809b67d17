//! Prometheus metrics: the process-wide recorder (`metrics` + `metrics-exporter-prometheus`),
//! what the request path and the database writer record into it, and the text of the
//! gauges read at scrape time from live state (devices, queue, messages per state).
//!
//! Counters and histograms go through the `metrics` macros (lock-free after the first use
//! of a label set); gauges of live state are not kept at all between scrapes: `/metrics`
//! reads them from the registry and the store and writes them after the recorder's text, so
//! a device that went away leaves no stale series. Labels are bounded: a route template
//! (never the raw path), a method, a status, a state, a device id.
//!
//! Must never: block, allocate per request beyond the metric key, or know the API's types.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Request latency buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Writer batch sizes, in changes.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (later calls, e.g. several hubs in one test
/// process, share it). `None` if another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), LATENCY_BUCKETS)
                .and_then(|it| {
                    it.set_buckets_for_metric(
                        Matcher::Full("smshub_writer_batch_changes".to_string()),
                        BATCH_BUCKETS,
                    )
                })
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    describe_counter!(
        "smshub_http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        "smshub_http_request_duration_seconds",
        Unit::Seconds,
        "time from a request's head to its answer, by route template and method"
    );
    describe_counter!(
        "smshub_message_transitions_total",
        "message state changes committed, by the state reached (queued counts new messages)"
    );
    describe_histogram!(
        "smshub_writer_batch_changes",
        "changes applied per group commit of the database writer"
    );
    describe_histogram!(
        "smshub_writer_commit_seconds",
        Unit::Seconds,
        "time to apply and commit one group commit"
    );
    describe_counter!(
        "smshub_webhook_deliveries_total",
        "webhook deliveries attempted, by outcome"
    );
    // Present from the start, so dashboards and alerts see 0 rather than no series.
    counter!("smshub_webhook_deliveries_total", "outcome" => "delivered").absolute(0);
}

/// Records one answered request: `route` is the route template (`/api/sms/{id}`), or
/// `unmatched`.
pub fn record_request(route: &'static str, method: &'static str, status: u16, took: Duration) {
    counter!(
        "smshub_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => status_label(status),
    )
    .increment(1);
    histogram!(
        "smshub_http_request_duration_seconds",
        "route" => route,
        "method" => method,
    )
    .record(took.as_secs_f64());
}

/// Records one group commit of the writer: its size and how long it took.
pub fn record_commit(changes: usize, took: Duration) {
    histogram!("smshub_writer_batch_changes").record(changes as f64);
    histogram!("smshub_writer_commit_seconds").record(took.as_secs_f64());
}

/// Records committed message state changes: `n` messages reached state `to`.
pub fn record_transition(to: &'static str, n: u64) {
    counter!("smshub_message_transitions_total", "to" => to).increment(n);
    crate::series::record_state(to, n, crate::domain::now_millis());
}

/// A method as a label (non-standard methods are one label, bounding cardinality).
pub fn method_label(method: &warp::http::Method) -> &'static str {
    use warp::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_label(status: u16) -> &'static str {
    static LABELS: OnceLock<Vec<String>> = OnceLock::new();
    let labels = LABELS.get_or_init(|| (0..600).map(|it| it.to_string()).collect());
    labels
        .get(usize::from(status))
        .map_or("other", String::as_str)
}

/// The recorder's text (counters, histograms), empty without a recorder.
pub fn render_recorded() -> String {
    match install() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

/// Gauges written at scrape time, in the Prometheus text format: one `# HELP`/`# TYPE`
/// per family, then its samples.
#[derive(Default)]
pub struct Gauges {
    text: String,
}

impl Gauges {
    /// Starts a gauge family.
    pub fn family(&mut self, name: &str, help: &str) -> &mut Gauges {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} gauge");
        self
    }

    /// One sample of the current family; label values are escaped.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Gauges {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (idx, (key, value)) in labels.iter().enumerate() {
                if idx > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
        self
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Records one webhook attempt's outcome (`delivered`, `retrying`, `failed`) or an endpoint
/// disabled (`disabled`).
pub fn record_webhook(outcome: &'static str) {
    counter!("smshub_webhook_deliveries_total", "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_escape_label_values() {
        let mut gauges = Gauges::default();
        gauges.family("smshub_x", "an example").sample(
            "smshub_x",
            &[("device", "a\"b\\c\nd")],
            1.5,
        );
        assert_eq!(
            gauges.into_text(),
            "# HELP smshub_x an example\n# TYPE smshub_x gauge\nsmshub_x{device=\"a\\\"b\\\\c\\nd\"} 1.5\n"
        );
    }

    #[test]
    fn statuses_are_labels() {
        assert_eq!(status_label(404), "404");
        assert_eq!(status_label(999), "other");
    }
}
