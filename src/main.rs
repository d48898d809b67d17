//! The `smshub` command line: `serve`, `demo`, `keys`, `devices`, `simulate`, `bench`, `pdu`,
//! `config`, `health`, and for people against a running hub `send`, `messages`, `devices list`.
//!
//! Thin: parses flags (each also an `SMSHUB_*` environment variable and a setting of the config
//! file, see `smshub::settings`), sets up logging and calls into the library. No hub logic
//! lives here.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use smshub::app::{App, Config, shutdown_signal};
use smshub::auth;
use smshub::dispatch::core::DispatchConfig;
use smshub::dispatch::limits::Limits;
use smshub::dispatch::scoring::ScoringConfig;
use smshub::domain::DeviceKind;
use smshub::domain::parse_region;
use smshub::simulate::{self, Behaviour, Control, SimStats};
use smshub::store::{Durability, Store};
use smshub::transport::radio::{OperatorProfile, parse_operators_file};
use tracing_subscriber::EnvFilter;

/// `println!` that drops the line when stdout is closed (`smshub pdu decode … | head`)
/// instead of panicking.
macro_rules! say {
    () => {
        smshub::logging::say(format_args!(""))
    };
    ($($arg:tt)*) => {
        smshub::logging::say(format_args!($($arg)*))
    };
}

/// mimalloc rather than glibc's malloc: the hub allocates and frees small buffers on several
/// threads, where glibc's per-thread arenas spent about a tenth of the hub's CPU (perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "smshub",
    version,
    about = "A self-hosted SMS hub: phones and modems behind one REST API"
)]
struct Cli {
    /// Log filter, e.g. `info` or `smshub=debug`.
    #[arg(long, global = true, env = "SMSHUB_LOG", default_value = "info")]
    log: String,
    /// `text` for people, `json` (one object per line) for log collectors.
    #[arg(
        long,
        global = true,
        env = "SMSHUB_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: smshub::logging::LogFormat,
    /// A TOML file of settings: each flag's environment variable without `SMSHUB_`, in lower
    /// case (`heartbeat_s = 30`). Flags and the environment (and `./.env`) win over it.
    #[arg(long, global = true, env = "SMSHUB_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the size of `serve`'s flags costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the hub.
    Serve(HubArgs),
    /// Run the hub with simulated phones, to see it work at once.
    Demo(smshub::demo::DemoArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage people who log in (roles admin, operator, viewer).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage devices.
    #[command(subcommand)]
    Devices(DevicesCommand),
    /// Run simulated phones against a hub.
    Simulate(SimulateArgs),
    /// Measure a hub: throughput, latency, CPU and memory, with simulated phones.
    Bench(smshub::bench::BenchArgs),
    /// Encode or decode SMS PDUs, as written to and read from modems.
    #[command(subcommand)]
    Pdu(PduCommand),
    /// Send an SMS through a running hub, or a CSV file of them.
    Send(smshub::remote::SendArgs),
    /// List, show or cancel messages of a running hub.
    #[command(subcommand)]
    Messages(smshub::remote::MessagesCommand),
    /// Check the settings (config file, `.env`, environment, flags) or print an example file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Probe a running hub's health endpoint: exit status 0 only when it answers 2xx.
    Health(smshub::remote::health::HealthArgs),
    /// For app authors: a scripted hub that drives one worker through every rule of device
    /// protocol v1 and prints a report; exit status 1 when a rule failed.
    Conformance(smshub::conformance::ConformanceArgs),
    /// Drive local modems for a central hub, as one remote device (device protocol v1).
    Worker(smshub::worker::config::WorkerArgs),
}

/// Parsed once at start, so the size of `Check` does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum ConfigCommand {
    /// Check every setting as `serve` would read it; one line per error, exit status 1.
    Check {
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Print a commented config file with every setting of `serve` and its default.
    Example,
}

#[derive(Subcommand)]
enum PduCommand {
    /// Print the PDUs of a message in hex, one per line, as written after `AT+CMGS`.
    Encode {
        #[arg(long)]
        to: String,
        #[arg(long)]
        text: String,
        /// Request a status report (delivery report).
        #[arg(long)]
        status_report: bool,
        /// Force UCS-2 even if the text fits the GSM 7-bit alphabet.
        #[arg(long)]
        ucs2: bool,
    },
    /// Print what a PDU (with its SMSC prefix, as modems give it) holds, as JSON.
    Decode { hex: String },
}

/// Default rate limits of every API key and user (0: no limit); a key's own limits win.
#[derive(Args, Clone)]
struct RateLimitArgs {
    /// Requests per minute (`X-RateLimit-*` headers, `429 rate_limited`).
    #[arg(
        long,
        env = "SMSHUB_RATE_LIMIT_REQUESTS_PER_MINUTE",
        default_value_t = 0
    )]
    rate_limit_requests_per_minute: u32,
    /// Messages per minute.
    #[arg(
        long,
        env = "SMSHUB_RATE_LIMIT_MESSAGES_PER_MINUTE",
        default_value_t = 0
    )]
    rate_limit_messages_per_minute: u32,
    /// Messages per hour.
    #[arg(long, env = "SMSHUB_RATE_LIMIT_MESSAGES_PER_HOUR", default_value_t = 0)]
    rate_limit_messages_per_hour: u32,
    /// Messages per day.
    #[arg(long, env = "SMSHUB_RATE_LIMIT_MESSAGES_PER_DAY", default_value_t = 0)]
    rate_limit_messages_per_day: u32,
    /// Mark session cookies `Secure` (browsers then send them over HTTPS only).
    #[arg(long, env = "SMSHUB_COOKIE_SECURE")]
    cookie_secure: bool,
}

#[derive(Args, Clone)]
struct HubArgs {
    /// Address to listen on.
    #[arg(long, env = "SMSHUB_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// With PostgreSQL, the host:port the other nodes of the cluster reach this node on
    /// (default: the listen address, unless it is a wildcard such as 0.0.0.0).
    #[arg(long, env = "SMSHUB_NODE_ADDRESS")]
    node_address: Option<String>,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Region for numbers written without `+` (ISO 3166 code, e.g. `DZ`).
    #[arg(long, env = "SMSHUB_DEFAULT_REGION")]
    default_region: Option<String>,
    /// Longest accepted message, in SMS parts.
    #[arg(long, env = "SMSHUB_MAX_PARTS", default_value_t = 10)]
    max_parts: u32,
    /// How recipients' numbers are checked: `strict` (valid numbers of their country; a
    /// request may ask for `skip_phone_validation`) or `lenient` (any `+` and 7 to 15 digits).
    #[arg(
        long,
        env = "SMSHUB_PHONE_VALIDATION",
        value_enum,
        default_value = "strict"
    )]
    phone_validation: smshub::api::send::PhoneValidation,
    /// Seconds between device heartbeats.
    #[arg(long, env = "SMSHUB_HEARTBEAT_S", default_value_t = 30)]
    heartbeat_s: u32,
    /// Incoming SMS a device may report per minute, in a burst or spread out (0: no limit);
    /// past it the device gets an error frame `rate_limited` and reports the SMS again later.
    #[arg(long, env = "SMSHUB_INCOMING_PER_MINUTE", default_value_t = 600)]
    incoming_per_minute: u32,
    /// Seconds HTTP requests in flight get to finish at shutdown; then their connections close.
    #[arg(long, env = "SMSHUB_SHUTDOWN_GRACE_S", default_value_t = 10)]
    shutdown_grace_s: u64,
    /// Seconds a request's headers may take, from the connection opening or the previous
    /// answer (so also the keep-alive idle timeout).
    #[arg(long, env = "SMSHUB_HEADER_TIMEOUT_S", default_value_t = 10)]
    header_timeout_s: u64,
    /// Seconds a request's body may take after its headers; then `408` and the connection closes.
    #[arg(long, env = "SMSHUB_BODY_TIMEOUT_S", default_value_t = 30)]
    body_timeout_s: u64,
    /// Seconds a device's WebSocket may stay open without `hello`; then closed with 4003.
    #[arg(long, env = "SMSHUB_HELLO_TIMEOUT_S", default_value_t = 10)]
    hello_timeout_s: u64,
    /// Most open API connections (REST, dashboard, health); beyond, the oldest idle one is
    /// closed, or `503 too_many_connections` if none is idle.
    #[arg(long, env = "SMSHUB_MAX_API_CONNECTIONS", default_value_t = 1024)]
    max_api_connections: usize,
    /// Most open device connections (WebSocket sessions); beyond, `503 too_many_connections`.
    #[arg(long, env = "SMSHUB_MAX_DEVICE_CONNECTIONS", default_value_t = 20_000)]
    max_device_connections: usize,
    /// Most connections that have not sent a whole request head yet; beyond, the oldest is closed.
    #[arg(long, env = "SMSHUB_MAX_PENDING_CONNECTIONS", default_value_t = 1024)]
    max_pending_connections: usize,
    /// Devices below this battery percentage get no new jobs unless charging.
    #[arg(long, env = "SMSHUB_MIN_BATTERY", default_value_t = 15)]
    min_battery: u8,
    /// Seconds a device has to accept an offer before it goes to another device.
    #[arg(long, env = "SMSHUB_OFFER_LEASE_S", default_value_t = 30)]
    offer_lease_s: u64,
    /// Seconds an accepted job may go without an outcome before it fails `outcome_unknown`.
    #[arg(long, env = "SMSHUB_OUTCOME_TIMEOUT_S", default_value_t = 3600)]
    outcome_timeout_s: u64,
    /// Offers per message before a temporary failure becomes final.
    #[arg(long, env = "SMSHUB_MAX_ATTEMPTS", default_value_t = 3)]
    max_attempts: u32,
    /// First retry backoff in seconds (doubles per attempt, at most 5 minutes).
    #[arg(long, env = "SMSHUB_RETRY_BASE_S", default_value_t = 5)]
    retry_base_s: u64,
    /// Failures in a row after which a device is rested (0: never).
    #[arg(long, env = "SMSHUB_BREAKER_FAILURES", default_value_t = 5)]
    breaker_failures: u32,
    /// First rest period in seconds (doubles for each rest in a row, up to 16×).
    #[arg(long, env = "SMSHUB_BREAKER_REST_S", default_value_t = 60)]
    breaker_rest_s: u64,
    #[command(flatten)]
    limits: SimLimitArgs,
    #[command(flatten)]
    edge: EdgeArgs,
    /// Most messages waiting for a device; beyond, `503` with `Retry-After`.
    #[arg(long, env = "SMSHUB_MAX_QUEUED", default_value_t = 200_000)]
    max_queued: usize,
    /// Most messages waiting for a device per API key.
    #[arg(long, env = "SMSHUB_MAX_QUEUED_PER_KEY", default_value_t = 100_000)]
    max_queued_per_key: usize,
    /// Require `Authorization: Bearer TOKEN` on `GET /metrics` (open without; set it when the
    /// hub listens beyond loopback).
    #[arg(long, env = "SMSHUB_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    #[command(flatten)]
    modems: ModemArgs,
    #[command(flatten)]
    hilinks: HilinkArgs,
    #[command(flatten)]
    access: RateLimitArgs,
    #[command(flatten)]
    events: smshub::events::EventArgs,
    #[command(flatten)]
    mqtt: smshub::mqtt::MqttArgs,
}

/// Huawei HiLink sticks (E3372h, E303, E3131 in HiLink firmware).
#[derive(Args, Clone)]
struct HilinkArgs {
    /// Attach the HiLink stick at this URL at start, e.g. `http://192.168.8.1`, with its web
    /// login as userinfo if it asks for one (`http://admin:secret@192.168.8.1`) (repeatable;
    /// env: comma-separated).
    #[arg(long = "hilink", env = "SMSHUB_HILINK", value_delimiter = ',')]
    hilink: Vec<String>,
    /// Web login for sticks whose URL carries none.
    #[arg(long, env = "SMSHUB_HILINK_USER")]
    hilink_user: Option<String>,
    /// Web login password for sticks whose URL carries none.
    #[arg(long, env = "SMSHUB_HILINK_PASSWORD", hide_env_values = true)]
    hilink_password: Option<String>,
    /// Keep the copies sticks file in their sent box (by default the hub deletes them, so a
    /// stick's storage never fills up and blocks sending).
    #[arg(long, env = "SMSHUB_HILINK_KEEP_SENT")]
    hilink_keep_sent: bool,
}

/// Serial GSM modems.
/// TLS, CORS and OIDC: what faces browsers and the network.
#[derive(Args, Clone)]
struct EdgeArgs {
    /// PEM certificate (chain) to serve HTTPS and `wss://` with; needs `--tls-key`. Reloaded
    /// on SIGHUP and when the file changes.
    #[arg(long, env = "SMSHUB_TLS_CERT")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "SMSHUB_TLS_KEY")]
    tls_key: Option<std::path::PathBuf>,
    /// An origin allowed to call the API from a browser (repeatable; env: comma-separated;
    /// `*` allows any). None: CORS off.
    #[arg(
        long = "cors-origin",
        env = "SMSHUB_CORS_ORIGIN",
        value_delimiter = ','
    )]
    cors_origin: Vec<String>,
    /// Accept `Authorization: Bearer` JWTs of this OpenID provider (its issuer URL); needs
    /// `--oidc-audience`.
    #[arg(long, env = "SMSHUB_OIDC_ISSUER")]
    oidc_issuer: Option<String>,
    /// The audience (`aud`) OIDC tokens must name.
    #[arg(long, env = "SMSHUB_OIDC_AUDIENCE")]
    oidc_audience: Option<String>,
    /// The claim of an OIDC token that holds its scopes (a space-separated string or an array).
    #[arg(long, env = "SMSHUB_OIDC_SCOPE_CLAIM", default_value = "scope")]
    oidc_scope_claim: String,
}

impl EdgeArgs {
    /// Sets TLS, CORS and OIDC in `config`; a flag without its partner is an error.
    fn apply(&self, config: &mut Config) -> anyhow::Result<()> {
        config.tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(smshub::server::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            _ => anyhow::bail!("--tls-cert and --tls-key go together"),
        };
        config.cors_origins = self
            .cors_origin
            .iter()
            .map(|it| it.trim().to_string())
            .filter(|it| !it.is_empty())
            .collect();
        config.oidc = match (&self.oidc_issuer, &self.oidc_audience) {
            (Some(issuer), Some(audience)) => {
                let mut oidc = smshub::auth::oidc::OidcConfig::new(issuer, audience);
                oidc.scope_claim = self.oidc_scope_claim.clone();
                Some(oidc)
            }
            (None, None) => None,
            _ => anyhow::bail!("--oidc-issuer and --oidc-audience go together"),
        };
        Ok(())
    }
}

#[derive(Args, Clone)]
struct ModemArgs {
    /// Attach the modem on this serial port at start (repeatable; env: comma-separated).
    #[arg(long = "modem", env = "SMSHUB_MODEM", value_delimiter = ',')]
    modem: Vec<String>,
    /// Detect modems on serial ports, and attach hot-plugged ones.
    #[arg(long, env = "SMSHUB_MODEM_SCAN")]
    modem_scan: bool,
    /// Ports detection may use: paths or prefixes such as `/dev/ttyUSB` (repeatable).
    #[arg(long, env = "SMSHUB_MODEM_ALLOW", value_delimiter = ',')]
    modem_allow: Vec<String>,
    /// SIM PIN to enter when a SIM asks for one.
    #[arg(long, env = "SMSHUB_SIM_PIN")]
    sim_pin: Option<String>,
    /// Seconds an ordinary AT command may take before the modem counts as not answering
    /// (SIM, radio, send, USSD and list commands keep their own, longer timeouts).
    #[arg(long, env = "SMSHUB_MODEM_TIMEOUT_S")]
    modem_timeout_s: Option<u64>,
    /// Use 16-bit concatenation references for long messages (152 septets per part).
    #[arg(long, env = "SMSHUB_MODEM_16BIT_REFS")]
    modem_16bit_refs: bool,
    /// How many times a part of a long message refused with a transient error (+CMS ERROR 38,
    /// 41, 42, 47, 331, 332, 500, 512+) is written again, same reference and part number,
    /// after a short backoff (1 s, doubling), before the message fails.
    #[arg(long, env = "SMSHUB_MODEM_PART_RETRIES", default_value_t = 3)]
    modem_part_retries: u32,
    /// Operator profiles (balance, data-balance and recharge USSD codes, APN) that override or
    /// extend the built-in ones: a TOML file of `[[operator]]` tables (JSON if it ends in .json).
    #[arg(long, env = "SMSHUB_OPERATORS")]
    operators: Option<std::path::PathBuf>,
}

/// Default sending limits of every SIM (a device's own limits, set through the API,
/// replace them).
#[derive(Args, Clone)]
struct SimLimitArgs {
    /// Minimum milliseconds between two sends of a SIM.
    #[arg(long, env = "SMSHUB_SIM_MIN_INTERVAL_MS", default_value_t = 0)]
    sim_min_interval_ms: u64,
    /// Random extra milliseconds (0 to this) after each send of a SIM.
    #[arg(long, env = "SMSHUB_SIM_JITTER_MS", default_value_t = 0)]
    sim_jitter_ms: u64,
    /// Most SMS parts per SIM per rolling minute.
    #[arg(long, env = "SMSHUB_SIM_MAX_PER_MINUTE")]
    sim_max_per_minute: Option<u32>,
    /// Most SMS parts per SIM per rolling hour.
    #[arg(long, env = "SMSHUB_SIM_MAX_PER_HOUR")]
    sim_max_per_hour: Option<u32>,
    /// Most SMS parts per SIM per rolling day.
    #[arg(long, env = "SMSHUB_SIM_MAX_PER_DAY")]
    sim_max_per_day: Option<u32>,
    /// Most distinct recipients per SIM per rolling day.
    #[arg(long, env = "SMSHUB_SIM_MAX_RECIPIENTS_PER_DAY")]
    sim_max_recipients_per_day: Option<u32>,
}

#[derive(Args, Clone)]
struct DatabaseArgs {
    /// `sqlite://PATH` (created if missing) or `postgres://USER:PASS@HOST/DB`.
    #[arg(
        long,
        env = "SMSHUB_DATABASE_URL",
        default_value = "sqlite://smshub.db"
    )]
    database_url: String,
    /// SQLite durability: `full` survives power loss, `normal` survives a process crash.
    #[arg(long, env = "SMSHUB_DURABILITY", value_enum, default_value = "full")]
    durability: Durability,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key; the key is the last line of output (shown once).
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        spec: KeySpecArgs,
        /// Print the key and its details as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List API keys (prefix, scopes, expiry, last use; never the secret).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Show one API key by id or prefix.
    Show {
        key: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke an API key: a running hub refuses it from its next request on.
    Revoke {
        /// The key's id (printed by `keys create`) or its prefix (`shk_` and 6 characters;
        /// the whole key works too).
        key: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Replace an API key with a new one like it; the old one is refused at once.
    Rotate {
        key: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// What a new key may do.
#[derive(Args, Clone)]
struct KeySpecArgs {
    /// Scopes (repeatable or comma-separated): messages:send, messages:read,
    /// messages:read_all, inbox:read, devices:read, devices:write, modems:write, keys:admin,
    /// webhooks:write, admin. Default: admin (every scope).
    #[arg(long = "scope", value_delimiter = ',')]
    scopes: Vec<String>,
    /// Expiry: an RFC 3339 time or a duration (`30d`, `12h`, `90m`).
    #[arg(long)]
    expires: Option<String>,
    /// A device the key may send through, `DEVICE` or `DEVICE:SLOT` (repeatable); default any.
    #[arg(long = "device", value_delimiter = ',')]
    devices: Vec<String>,
    /// This key's requests per minute (0: no limit), over `--rate-limit-requests-per-minute`.
    #[arg(long)]
    requests_per_minute: Option<u32>,
    /// This key's messages per minute (0: no limit).
    #[arg(long)]
    messages_per_minute: Option<u32>,
    /// This key's messages per hour (0: no limit).
    #[arg(long)]
    messages_per_hour: Option<u32>,
    /// This key's messages per day (0: no limit).
    #[arg(long)]
    messages_per_day: Option<u32>,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add a person who can log in (password from --password, `SMSHUB_USER_PASSWORD`, or
    /// generated and printed once).
    Add {
        username: String,
        /// admin, operator or viewer.
        #[arg(long, default_value = "viewer")]
        role: String,
        #[arg(long, env = "SMSHUB_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List users and their roles.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Remove a user; its sessions end.
    Remove {
        username: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Set a user's password (given, or generated and printed once); its sessions end.
    Passwd {
        username: String,
        #[arg(long, env = "SMSHUB_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum DevicesCommand {
    /// Register a device and print its id and token (shown once).
    Add {
        name: String,
        /// `android` or `modem`.
        #[arg(long, default_value = "android")]
        kind: String,
        /// Print `{"id":..,"token":..}`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List the devices of a running hub.
    List {
        #[command(flatten)]
        hub: smshub::remote::HubArgs,
    },
    /// Get a one-time pairing code (and its QR code) from a running hub, for a phone to redeem.
    Pair(smshub::remote::pairing::PairArgs),
    /// Rotate or revoke a device's token on a running hub (its open socket closes at once).
    #[command(subcommand)]
    Token(smshub::remote::pairing::TokenCommand),
}

#[derive(Args)]
struct SimulateArgs {
    /// Hub base URL, e.g. `http://127.0.0.1:8080`.
    #[arg(long, env = "SMSHUB_HUB")]
    hub: String,
    #[arg(long, env = "SMSHUB_API_KEY")]
    api_key: String,
    #[arg(long, default_value_t = 5)]
    devices: usize,
    /// Time from commit to sent, and from sent to delivered.
    #[arg(long, default_value_t = 300)]
    latency_ms: u64,
    /// Share of jobs that fail with a temporary error.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Share of jobs with a delivery report requested that get one.
    #[arg(long, default_value_t = 1.0)]
    delivery_rate: f64,
    /// Name prefix of the registered devices.
    #[arg(long, default_value = "sim")]
    prefix: String,
    /// Phones running capcom6's SMS Gateway app to simulate too (on its mobile API; they
    /// register with the API key as the server's private token).
    #[arg(long, default_value_t = 0)]
    apps: usize,
}

fn main() -> std::process::ExitCode {
    // Before the command line is read, which allocates (a stray "worker" value only costs
    // huge pages).
    if std::env::args_os().any(|it| it == "worker") {
        smshub::worker::small_pages();
    }
    let cli = match parse_command_line() {
        Ok(cli) => cli,
        Err(errors) => {
            for error in errors {
                let _ = writeln!(std::io::stderr(), "error: {error}");
            }
            return std::process::ExitCode::FAILURE;
        }
    };
    smshub::server::tls::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: cannot start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The command line, with the defaults of its flags taken from `./.env` and the config file
/// (flags and the environment still win). Errors in those files come back one per line;
/// errors of the command line itself exit here as clap prints them.
fn parse_command_line() -> Result<Cli, Vec<String>> {
    use smshub::settings;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut layers = Vec::new();
    let dotenv = std::path::Path::new(".env");
    if dotenv.is_file() {
        layers.push(settings::read_dotenv(dotenv)?);
    }
    if let Some(path) = settings::config_path(&args) {
        layers.push(settings::read_config(&path)?);
    }
    let command = settings::apply(Cli::command(), &layers)?;
    let matches = command.get_matches_from(args);
    Ok(Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(format!(
        "{},sqlx=warn,sea_orm=warn,sea_orm_migration=warn,hyper=warn",
        cli.log
    ))
    .context("invalid --log filter")?;
    smshub::logging::init(filter, cli.log_format);

    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Config(ConfigCommand::Check { hub }) => {
            // Parsing the flags already checked every value; building the hub's configuration
            // checks how they fit together.
            config(&hub)?;
            match &cli.config {
                Some(path) => say!("config ok ({})", path.display()),
                None => say!("config ok (no config file: flags, environment and defaults)"),
            }
            Ok(())
        }
        Command::Config(ConfigCommand::Example) => {
            say!("{}", smshub::settings::example(&Cli::command(), "serve"));
            Ok(())
        }
        Command::Demo(args) => smshub::demo::run(args).await,
        Command::Keys(command) => smshub::keys_cli::run(keys_command(command)?).await,
        Command::Users(command) => smshub::keys_cli::users(users_command(command)?).await,
        Command::Devices(DevicesCommand::Add {
            name,
            kind,
            json,
            database,
        }) => {
            let kind = match kind.as_str() {
                "android" => DeviceKind::Android,
                "modem" => DeviceKind::Modem,
                _ => anyhow::bail!("--kind must be android or modem"),
            };
            let store = open_store(&database).await?;
            let device = auth::create_device(&store, &name, kind).await?;
            store.flush().await?;
            if json {
                say!(
                    "{}",
                    serde_json::json!({ "id": device.id, "token": device.token })
                );
            } else {
                say!(
                    "Registered device {:?}. The token is shown only once.",
                    device.name
                );
                say!("id: {}", device.id);
                say!("token: {}", device.token);
                say!(
                    "connect to: /ws/device/{} with Authorization: Bearer <token>",
                    device.id
                );
            }
            Ok(())
        }
        Command::Simulate(args) => simulate_cmd(args).await,
        Command::Send(args) => {
            say!("{}", smshub::remote::send::run(args).await?);
            Ok(())
        }
        Command::Messages(command) => {
            say!("{}", smshub::remote::messages(command).await?);
            Ok(())
        }
        Command::Devices(DevicesCommand::List { hub }) => {
            say!("{}", smshub::remote::devices(hub).await?);
            Ok(())
        }
        Command::Health(args) => {
            say!("{}", smshub::remote::health::run(args).await?);
            Ok(())
        }
        Command::Devices(DevicesCommand::Pair(args)) => {
            say!("{}", smshub::remote::pairing::pair(args).await?);
            Ok(())
        }
        Command::Devices(DevicesCommand::Token(command)) => {
            say!("{}", smshub::remote::pairing::token(command).await?);
            Ok(())
        }
        Command::Bench(args) => smshub::bench::run(args).await,
        Command::Conformance(args) => {
            let (report, passed) = smshub::conformance::run(args).await?;
            say!("{report}");
            if !passed {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Worker(args) => smshub::worker::run(args).await,
        Command::Pdu(PduCommand::Encode {
            to,
            text,
            status_report,
            ucs2,
        }) => {
            for line in smshub::pdu_cli::encode(&to, &text, status_report, ucs2)? {
                say!("{line}");
            }
            Ok(())
        }
        Command::Pdu(PduCommand::Decode { hex }) => {
            say!("{}", smshub::pdu_cli::decode(&hex)?);
            Ok(())
        }
    }
}

async fn open_store(database: &DatabaseArgs) -> anyhow::Result<Store> {
    Store::open(&database.database_url, database.durability)
        .await
        .with_context(|| format!("opening the database {}", database.database_url))
}

fn config(args: &HubArgs) -> anyhow::Result<Config> {
    let mut config = Config::new(args.listen, args.database.database_url.clone());
    config.durability = args.database.durability;
    config.default_region = args
        .default_region
        .as_deref()
        .map(parse_region)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    config.max_parts = args.max_parts.max(1);
    config.phone_validation = args.phone_validation;
    config.heartbeat_s = args.heartbeat_s.max(1);
    config.incoming_per_minute = args.incoming_per_minute;
    config.shutdown_grace = Duration::from_secs(args.shutdown_grace_s);
    config.server = smshub::server::ServerLimits {
        max_pending_connections: args.max_pending_connections.max(1),
        max_api_connections: args.max_api_connections.max(1),
        max_device_connections: args.max_device_connections.max(1),
        header_timeout: Duration::from_secs(args.header_timeout_s.max(1)),
        body_timeout: Duration::from_secs(args.body_timeout_s.max(1)),
    };
    config.hello_timeout = Duration::from_secs(args.hello_timeout_s.max(1));
    args.edge.apply(&mut config)?;
    config.events = args.events.config();
    config.mqtt = args.mqtt.config().map_err(anyhow::Error::msg)?;
    let seconds = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
    config.dispatch = DispatchConfig {
        scoring: ScoringConfig {
            min_battery: args.min_battery,
        },
        offer_lease_ms: seconds(args.offer_lease_s.max(1)),
        outcome_timeout_ms: seconds(args.outcome_timeout_s.max(1)),
        max_attempts: args.max_attempts.max(1),
        retry_base_ms: seconds(args.retry_base_s),
        retry_cap_ms: 300_000,
        breaker_failures: args.breaker_failures,
        breaker_rest_ms: seconds(args.breaker_rest_s),
        limits: Limits {
            min_interval_ms: args.limits.sim_min_interval_ms,
            jitter_ms: args.limits.sim_jitter_ms,
            per_minute: args.limits.sim_max_per_minute,
            per_hour: args.limits.sim_max_per_hour,
            per_day: args.limits.sim_max_per_day,
            recipients_per_day: args.limits.sim_max_recipients_per_day,
        },
        ..DispatchConfig::default()
    };
    config.max_queued = args.max_queued.max(1);
    config.max_queued_per_key = args.max_queued_per_key.max(1);
    config.metrics_token = args.metrics_token.clone().filter(|it| !it.is_empty());
    config.modem_ports = args
        .modems
        .modem
        .iter()
        .filter(|it| !it.is_empty())
        .cloned()
        .collect();
    config.modem_scan = args.modems.modem_scan;
    config.modems.allow = args.modems.modem_allow.clone();
    config.modems.sim_pin = args.modems.sim_pin.clone();
    if let Some(seconds) = args.modems.modem_timeout_s {
        config.modems.timeouts.command = Duration::from_secs(seconds.max(1));
    }
    config.modems.sixteen_bit_refs = args.modems.modem_16bit_refs;
    config.modems.part_retries = args.modems.modem_part_retries;
    if let Some(path) = &args.modems.operators {
        config.modems.operators = operators_file(path)?;
    }
    config.hilinks = args
        .hilinks
        .hilink
        .iter()
        .map(|it| it.trim())
        .filter(|it| !it.is_empty())
        .map(str::to_string)
        .collect();
    config.hilink.username = args.hilinks.hilink_user.clone();
    config.hilink.password = args.hilinks.hilink_password.clone();
    config.hilink.prune_sent = !args.hilinks.hilink_keep_sent;
    config.rate_limits = smshub::auth::KeyLimits {
        requests_per_minute: Some(args.access.rate_limit_requests_per_minute),
        messages_per_minute: Some(args.access.rate_limit_messages_per_minute),
        messages_per_hour: Some(args.access.rate_limit_messages_per_hour),
        messages_per_day: Some(args.access.rate_limit_messages_per_day),
    };
    config.cookie_secure = args.access.cookie_secure;
    Ok(config)
}

/// The profiles of an operators file; a bad file is one line naming it and what is wrong.
fn operators_file(path: &std::path::Path) -> anyhow::Result<Vec<OperatorProfile>> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| anyhow::anyhow!("operators file {}: {err}", path.display()))?;
    let json = path
        .extension()
        .is_some_and(|it| it.eq_ignore_ascii_case("json"));
    let profiles = parse_operators_file(&text, json)
        .map_err(|err| anyhow::anyhow!("operators file {}: {err}", path.display()))?;
    tracing::info!(file = %path.display(), profiles = profiles.len(), "operator profiles loaded");
    Ok(profiles)
}

async fn serve(args: HubArgs) -> anyhow::Result<()> {
    let mut config = config(&args)?;
    config.first_admin = true;
    config.admin_password = std::env::var("SMSHUB_ADMIN_PASSWORD")
        .ok()
        .filter(|it| !it.is_empty());
    let stop = smshub::app::shutdown_signal_armed();
    if smshub::store::cluster::is_postgres(&config.database_url) {
        // A node of a cluster (maybe of one): it listens at once, relays to the leader until
        // it leads, then serves.
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        say!("smshub listening on http://{}", listener.local_addr()?);
        return smshub::cluster::run(config, listener, args.node_address, stop, |app| {
            print_first_admin(app)
        })
        .await;
    }
    let app = App::build(config).await?;
    // The first line stays "smshub listening on …" (scripts and `smshub bench` read it).
    say!("smshub listening on http://{}", app.addr());
    print_first_admin(&app);
    app.run_until_stopped(stop).await
}

/// Says who the first admin is, when this start made one.
fn print_first_admin(app: &App) {
    if let Some(admin) = app.first_admin() {
        match &admin.generated_password {
            Some(password) => say!(
                "Created the first user {:?} (role admin). Its password is shown only once: {password}",
                admin.username
            ),
            None => say!(
                "Created the first user {:?} (role admin) with the password in SMSHUB_ADMIN_PASSWORD.",
                admin.username
            ),
        }
    }
}

async fn simulate_cmd(args: SimulateArgs) -> anyhow::Result<()> {
    let stats = Arc::new(SimStats::default());
    let behaviour = Behaviour {
        latency: Duration::from_millis(args.latency_ms),
        fail_rate: args.fail_rate,
        delivery_rate: args.delivery_rate,
    };
    let hub = args.hub.trim_end_matches('/').to_string();
    let mut phones = simulate::start_fleet(
        &hub,
        &args.api_key,
        &args.prefix,
        args.devices,
        behaviour.clone(),
        stats.clone(),
    )
    .await?;
    let apps = simulate::app::start_apps(
        &hub,
        &args.api_key,
        &format!("{}-app", args.prefix),
        args.apps,
        behaviour,
        stats.clone(),
    )
    .await?;
    say!(
        "{} simulated phones and {} simulated SMS Gateway apps connected to {hub}; Ctrl-C to stop",
        phones.len(),
        apps.len()
    );
    phones.extend(apps);
    let mut report = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown_signal() => break,
            _ = report.tick() => {
                say!(
                    "offers {} sent {} delivered {} failed {} connects {}",
                    SimStats::get(&stats.offers),
                    SimStats::get(&stats.reported_sent),
                    SimStats::get(&stats.reported_delivered),
                    SimStats::get(&stats.reported_failed),
                    SimStats::get(&stats.connects),
                );
            }
        }
    }
    for phone in &phones {
        phone.control(Control::Stop).await;
    }
    Ok(())
}

fn keys_command(command: KeysCommand) -> anyhow::Result<smshub::keys_cli::KeysCommand> {
    use smshub::keys_cli::KeysCommand as K;
    let db = |it: DatabaseArgs| (it.database_url, it.durability);
    Ok(match command {
        KeysCommand::Create {
            name,
            spec,
            json,
            database,
        } => K::Create {
            name,
            scopes: spec.scopes,
            expires: spec.expires,
            devices: spec.devices,
            limits: smshub::auth::KeyLimits {
                requests_per_minute: spec.requests_per_minute,
                messages_per_minute: spec.messages_per_minute,
                messages_per_hour: spec.messages_per_hour,
                messages_per_day: spec.messages_per_day,
            },
            json,
            database: db(database),
        },
        KeysCommand::List { json, database } => K::List {
            json,
            database: db(database),
        },
        KeysCommand::Show {
            key,
            json,
            database,
        } => K::Show {
            key,
            json,
            database: db(database),
        },
        KeysCommand::Revoke { key, database } => K::Revoke {
            key,
            database: db(database),
        },
        KeysCommand::Rotate {
            key,
            json,
            database,
        } => K::Rotate {
            key,
            json,
            database: db(database),
        },
    })
}

fn users_command(command: UsersCommand) -> anyhow::Result<smshub::keys_cli::UsersCommand> {
    use smshub::keys_cli::UsersCommand as U;
    let db = |it: DatabaseArgs| (it.database_url, it.durability);
    Ok(match command {
        UsersCommand::Add {
            username,
            role,
            password,
            database,
        } => U::Add {
            username,
            role,
            password,
            database: db(database),
        },
        UsersCommand::List { json, database } => U::List {
            json,
            database: db(database),
        },
        UsersCommand::Remove { username, database } => U::Remove {
            username,
            database: db(database),
        },
        UsersCommand::Passwd {
            username,
            password,
            database,
        } => U::Passwd {
            username,
            password,
            database: db(database),
        },
    })
}
