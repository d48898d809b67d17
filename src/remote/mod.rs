//! The command line for people, against a running hub over its REST API: `smshub send`
//! (one message, or a CSV file in bulk), `smshub messages list|show|cancel`,
//! `smshub devices list`, `smshub health`. Output is a table for people or JSON (`--json`) for scripts.
//!
//! Must never: open the database or reach into the hub's modules: it is a REST client like
//! any other, so what it can do is what the API allows its key to do.

pub mod health;
mod output;
pub mod pairing;
pub mod send;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

pub use send::SendArgs;

/// Where the hub is and the key to use.
#[derive(Args, Clone, Debug)]
pub struct HubArgs {
    /// The hub's base URL.
    #[arg(long, env = "SMSHUB_HUB", default_value = "http://127.0.0.1:8080")]
    pub hub: String,
    /// The API key (better from the environment than on a command line others can read).
    #[arg(long, env = "SMSHUB_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// PEM file of the certificate authority to trust for an `https://` hub (a private CA
    /// or a self-signed certificate), besides the system's.
    #[arg(long, env = "SMSHUB_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// `smshub messages …`.
#[derive(Subcommand, Debug)]
pub enum MessagesCommand {
    /// The newest messages.
    List {
        /// Only messages in this state (`queued`, `sent`, `failed`, …).
        #[arg(long)]
        state: Option<String>,
        /// Only messages to this number.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// One message with its history.
    Show {
        id: String,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Cancel a message no device has accepted yet.
    Cancel {
        id: String,
        #[command(flatten)]
        hub: HubArgs,
    },
}

/// A REST client of one hub, with one key.
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    pub fn new(hub: &HubArgs) -> anyhow::Result<Client> {
        Ok(Client {
            http: http_client(hub.ca_file.as_deref())?,
            base: hub.hub.trim_end_matches('/').to_string(),
            key: hub.api_key.clone(),
        })
    }

    /// The request to `path` with the key set.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("X-API-Key", &self.key)
    }

    /// Sends `request` and returns the status and JSON body; a failure to reach the hub is an
    /// error naming it.
    async fn call(&self, request: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let answer = request
            .send()
            .await
            .with_context(|| format!("cannot reach the hub at {}", self.base))?;
        let status = answer.status().as_u16();
        let bytes = answer.bytes().await.context("reading the hub's answer")?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, body))
    }

    /// `GET path`; an error answer becomes an error with the API's code and message.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let (status, body) = self.call(self.request(reqwest::Method::GET, path)).await?;
        ok_or_error(status, body)
    }
}

/// An HTTP client that also trusts the certificates of `ca_file` (PEM).
pub fn http_client(ca_file: Option<&std::path::Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{}: not a PEM certificate", path.display()))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().context("building the HTTP client")
}

/// The body of a 2xx answer, or an error saying the API's `code` and `message`.
fn ok_or_error(status: u16, body: Value) -> anyhow::Result<Value> {
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let code = body["error"]["code"].as_str().unwrap_or("error");
    let message = body["error"]["message"].as_str().unwrap_or("");
    bail!("{status} {code}: {message}")
}

/// Runs `smshub messages …`; what to print is returned.
pub async fn messages(command: MessagesCommand) -> anyhow::Result<String> {
    match command {
        MessagesCommand::List {
            state,
            to,
            limit,
            hub,
        } => {
            let client = Client::new(&hub)?;
            let mut query = vec![format!("limit={limit}")];
            if let Some(state) = state {
                query.push(format!("state={}", encode(&state)));
            }
            if let Some(to) = to {
                query.push(format!("phone_number={}", encode(&to)));
            }
            let body = client.get(&format!("/api/sms?{}", query.join("&"))).await?;
            Ok(if hub.json {
                body.to_string()
            } else {
                output::messages(&body)
            })
        }
        MessagesCommand::Show { id, hub } => {
            let client = Client::new(&hub)?;
            let body = client.get(&format!("/api/sms/{}", encode(&id))).await?;
            Ok(if hub.json {
                body.to_string()
            } else {
                output::message(&body)
            })
        }
        MessagesCommand::Cancel { id, hub } => {
            let client = Client::new(&hub)?;
            let request = client.request(
                reqwest::Method::DELETE,
                &format!("/api/sms/{}", encode(&id)),
            );
            let (status, body) = client.call(request).await?;
            let body = ok_or_error(status, body)?;
            Ok(if hub.json {
                body.to_string()
            } else {
                format!("cancelled {id}")
            })
        }
    }
}

/// Runs `smshub devices list`; what to print is returned.
pub async fn devices(hub: HubArgs) -> anyhow::Result<String> {
    let body = Client::new(&hub)?.get("/api/devices").await?;
    Ok(if hub.json {
        body.to_string()
    } else {
        output::devices(&body)
    })
}

/// `text` made safe for a URL's path or query.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
