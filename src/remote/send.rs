//! `smshub send`: one message to one or more numbers, or a CSV file in bulk.
//!
//! A bulk run is resumable by construction: every row goes with an `Idempotency-Key` made of
//! the run's name, the row's number and its content, so running the same file again (after a
//! crash, a network failure, a Ctrl-C) sends no row twice: the hub answers a row it already
//! has with the same message (`Idempotent-Replayed`). Rows the hub refused (a bad number) are
//! listed with the API's error in `FILE.results.csv`; busy answers (`429`, `503`, a network
//! error) are retried after `Retry-After`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Client, HubArgs, ok_or_error};

/// Tries per row for answers that say "later" (429, 503) or no answer at all.
const TRIES: u32 = 5;

#[derive(Args, Debug)]
pub struct SendArgs {
    /// A recipient (repeatable).
    #[arg(long = "to", conflicts_with = "csv", required_unless_present = "csv")]
    pub to: Vec<String>,
    /// The message.
    #[arg(long, conflicts_with = "csv", required_unless_present = "csv")]
    pub text: Option<String>,
    /// Send through this device only.
    #[arg(long)]
    pub device: Option<String>,
    /// Send from this SIM slot of the device.
    #[arg(long)]
    pub sim: Option<u8>,
    /// Ask for a delivery report.
    #[arg(long)]
    pub delivery_report: bool,
    /// A CSV file with a header row: `phone_number` (or `to`) and `message` (or `text`),
    /// optionally `device_id` and `sim_slot`. Results go to `FILE.results.csv`.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// With `--csv`: send this template (`/api/templates`) instead of a `message` column; its
    /// `{{name}}` fields are filled in from the row's columns of those names.
    #[arg(long, requires = "csv")]
    pub template: Option<String>,
    /// The name of a bulk run: running the same file under the same name again sends no row
    /// twice (default: the file's name). A new name sends every row again.
    #[arg(long)]
    pub run: Option<String>,
    /// Requests in flight at once in a bulk run.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Runs `smshub send`; what to print is returned.
pub async fn run(args: SendArgs) -> anyhow::Result<String> {
    let client = Client::new(&args.hub)?;
    match &args.csv {
        Some(path) => bulk(&client, &args, path).await,
        None => {
            let mut body = json!({
                "phone_numbers": args.to,
                "message": args.text,
                "delivery_report": args.delivery_report,
            });
            if let Some(device) = &args.device {
                body["device_id"] = json!(device);
            }
            if let Some(sim) = args.sim {
                body["sim_slot"] = json!(sim);
            }
            let request = client
                .request(reqwest::Method::POST, "/api/send-sms")
                .json(&body);
            let (status, body) = client.call(request).await?;
            let body = ok_or_error(status, body)?;
            if args.hub.json {
                return Ok(body.to_string());
            }
            let lines: Vec<String> = body["messages"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|it| {
                    format!(
                        "{}  {}  {}  {} part(s)",
                        it["id"].as_str().unwrap_or_default(),
                        it["phone_number"].as_str().unwrap_or_default(),
                        it["state"].as_str().unwrap_or_default(),
                        it["parts"]
                    )
                })
                .collect();
            Ok(lines.join("\n"))
        }
    }
}

/// One row of a bulk file.
struct Row {
    /// 1-based, the header not counted.
    number: usize,
    phone: String,
    body: Value,
}

/// The outcome of one row.
struct Done {
    number: usize,
    phone: String,
    /// `queued`, `replayed` (sent by an earlier run) or `error`.
    status: &'static str,
    id: String,
    error: String,
}

async fn bulk(client: &Client, args: &SendArgs, path: &Path) -> anyhow::Result<String> {
    let run = args.run.clone().unwrap_or_else(|| {
        path.file_name()
            .map(|it| it.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let template = match &args.template {
        Some(id) => {
            let template = client.get(&format!("/api/templates/{id}")).await?;
            let fields: Vec<String> = template["fields"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|it| it.as_str().map(String::from))
                .collect();
            Some(Template {
                id: id.clone(),
                fields,
            })
        }
        None => None,
    };
    let rows = read_rows(path, args.delivery_report, template.as_ref())?;
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut done: Vec<Done> = futures_util::stream::iter(rows)
        .map(|row| {
            let bar = bar.clone();
            let run = run.clone();
            async move {
                let outcome = send_row(client, &run, &row).await;
                bar.inc(1);
                outcome
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    done.sort_by_key(|it| it.number);

    let results = results_path(path);
    write_results(&results, &done)?;
    let count = |status: &str| done.iter().filter(|it| it.status == status).count();
    let (queued, replayed, failed) = (count("queued"), count("replayed"), count("error"));
    let summary = format!(
        "{} rows: {queued} queued, {replayed} already sent by an earlier run, {failed} failed (results: {})",
        done.len(),
        results.display()
    );
    if args.hub.json {
        return Ok(json!({
            "rows": done.len(), "queued": queued, "replayed": replayed, "failed": failed,
            "results": results.display().to_string(),
        })
        .to_string());
    }
    if failed > 0 {
        bail!("{summary}");
    }
    Ok(summary)
}

/// A template a bulk run sends: its id and the fields its rows fill in.
struct Template {
    id: String,
    fields: Vec<String>,
}

/// The rows of a CSV file with a header, as send-sms bodies (with a template: its
/// `template_id`, and as `params` the row's columns named like its fields).
fn read_rows(
    path: &Path,
    delivery_report: bool,
    template: Option<&Template>,
) -> anyhow::Result<Vec<Row>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}: no header row", path.display()))?
        .iter()
        .map(|it| it.to_ascii_lowercase())
        .collect();
    let column = |names: &[&str]| header.iter().position(|it| names.contains(&it.as_str()));
    let Some(phone_at) = column(&["phone_number", "to", "phone", "recipient"]) else {
        bail!(
            "{}: the header names no phone_number (or to) column",
            path.display()
        );
    };
    let text_at = column(&["message", "text"]);
    if text_at.is_none() && template.is_none() {
        bail!(
            "{}: the header names no message (or text) column",
            path.display()
        );
    }
    let mut param_at = Vec::new();
    if let Some(template) = template {
        for field in &template.fields {
            let Some(at) = header
                .iter()
                .position(|it| it == &field.to_ascii_lowercase())
            else {
                bail!(
                    "{}: the template {} needs a column {field:?}",
                    path.display(),
                    template.id
                );
            };
            param_at.push((field.clone(), at));
        }
    }
    let device_at = column(&["device_id", "device"]);
    let sim_at = column(&["sim_slot", "sim"]);
    let mut rows = Vec::new();
    for (at, record) in reader.records().enumerate() {
        let number = at + 1;
        let record = record.with_context(|| format!("{}: row {number}", path.display()))?;
        let field =
            |at: Option<usize>| at.and_then(|it| record.get(it)).filter(|it| !it.is_empty());
        let phone = field(Some(phone_at)).unwrap_or_default().to_string();
        let mut body = match template {
            Some(template) => {
                let params: serde_json::Map<String, Value> = param_at
                    .iter()
                    .map(|(name, at)| (name.clone(), json!(record.get(*at).unwrap_or_default())))
                    .collect();
                json!({
                    "phone_number": phone,
                    "template_id": template.id,
                    "params": params,
                    "delivery_report": delivery_report,
                })
            }
            None => json!({
                "phone_number": phone,
                "message": field(text_at).unwrap_or_default(),
                "delivery_report": delivery_report,
            }),
        };
        if let Some(device) = field(device_at) {
            body["device_id"] = json!(device);
        }
        if let Some(sim) = field(sim_at) {
            body["sim_slot"] = sim
                .parse::<i64>()
                .map_or_else(|_| json!(sim), |it| json!(it));
        }
        rows.push(Row {
            number,
            phone,
            body,
        });
    }
    Ok(rows)
}

/// Sends one row, retrying answers that say "later".
async fn send_row(client: &Client, run: &str, row: &Row) -> Done {
    let mut hash = Sha256::new();
    hash.update(format!("{run}\n{}\n{}", row.number, row.body));
    let key = format!("bulk-{}", &hex::encode(hash.finalize())[..40]);
    let mut last_error = String::new();
    for attempt in 0..TRIES {
        let request = client
            .request(reqwest::Method::POST, "/api/send-sms")
            .header("Idempotency-Key", &key)
            .json(&row.body);
        let answer = match request.send().await {
            Ok(answer) => answer,
            Err(err) => {
                last_error = format!("cannot reach the hub: {err}");
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                continue;
            }
        };
        let status = answer.status().as_u16();
        let replayed = answer.headers().contains_key("idempotent-replayed");
        let wait = answer
            .headers()
            .get("retry-after")
            .and_then(|it| it.to_str().ok())
            .and_then(|it| it.parse::<u64>().ok());
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Done {
                number: row.number,
                phone: row.phone.clone(),
                status: if replayed { "replayed" } else { "queued" },
                id: body["id"].as_str().unwrap_or_default().to_string(),
                error: String::new(),
            };
        }
        last_error = format!(
            "{status} {}: {}",
            body["error"]["code"].as_str().unwrap_or("error"),
            body["error"]["message"].as_str().unwrap_or_default()
        );
        if status != 429 && status != 503 {
            break;
        }
        let wait = wait.map_or(Duration::from_millis(500 << attempt), Duration::from_secs);
        tokio::time::sleep(wait.min(Duration::from_secs(30))).await;
    }
    Done {
        number: row.number,
        phone: row.phone.clone(),
        status: "error",
        id: String::new(),
        error: last_error,
    }
}

fn results_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".results.csv");
    PathBuf::from(name)
}

fn write_results(path: &Path, done: &[Done]) -> anyhow::Result<()> {
    let mut writer =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    writer.write_record(["row", "phone_number", "status", "id", "error"])?;
    for it in done {
        writer.write_record([
            it.number.to_string().as_str(),
            &it.phone,
            it.status,
            &it.id,
            &it.error,
        ])?;
    }
    writer.flush()?;
    Ok(())
}
