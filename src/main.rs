//! The `smshub` command line: `serve`, `demo`, `keys`, `devices`, `simulate`.
//!
//! Thin: parses flags (each also an `SMSHUB_*` environment variable), sets up logging and
//! calls into the library. No hub logic lives here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use smshub::app::{App, Config, shutdown_signal};
use smshub::auth;
use smshub::dispatch::scoring::ScoringConfig;
use smshub::domain::parse_region;
use smshub::simulate::{self, Behaviour, Control, SimStats};
use smshub::store::{Durability, Store};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "smshub", version, about = "A self-hosted SMS hub: phones and modems behind one REST API")]
struct Cli {
    /// Log filter, e.g. `info` or `smshub=debug`.
    #[arg(long, global = true, env = "SMSHUB_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub.
    Serve(HubArgs),
    /// Run the hub with simulated phones, to see it work at once.
    Demo(DemoArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage devices.
    #[command(subcommand)]
    Devices(DevicesCommand),
    /// Run simulated phones against a hub.
    Simulate(SimulateArgs),
}

#[derive(Args, Clone)]
struct HubArgs {
    /// Address to listen on.
    #[arg(long, env = "SMSHUB_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Region for numbers written without `+` (ISO 3166 code, e.g. `DZ`).
    #[arg(long, env = "SMSHUB_DEFAULT_REGION")]
    default_region: Option<String>,
    /// Longest accepted message, in SMS parts.
    #[arg(long, env = "SMSHUB_MAX_PARTS", default_value_t = 10)]
    max_parts: u32,
    /// Seconds between device heartbeats.
    #[arg(long, env = "SMSHUB_HEARTBEAT_S", default_value_t = 30)]
    heartbeat_s: u32,
    /// Devices below this battery percentage get no new jobs unless charging.
    #[arg(long, env = "SMSHUB_MIN_BATTERY", default_value_t = 15)]
    min_battery: u8,
}

#[derive(Args, Clone)]
struct DatabaseArgs {
    /// `sqlite://PATH` (created if missing) or `postgres://USER:PASS@HOST/DB`.
    #[arg(long, env = "SMSHUB_DATABASE_URL", default_value = "sqlite://smshub.db")]
    database_url: String,
    /// SQLite durability: `full` survives power loss, `normal` survives a process crash.
    #[arg(long, env = "SMSHUB_DURABILITY", value_enum, default_value = "full")]
    durability: Durability,
}

#[derive(Args)]
struct DemoArgs {
    /// Number of simulated phones.
    #[arg(long, default_value_t = 5)]
    devices: usize,
    /// Address to listen on.
    #[arg(long, env = "SMSHUB_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Database URL; by default a fresh temporary SQLite file, removed at exit.
    #[arg(long, env = "SMSHUB_DATABASE_URL")]
    database_url: Option<String>,
    /// Demo messages sent per second (0 for none).
    #[arg(long, default_value_t = 0.5)]
    traffic: f64,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key; the key is the last line of output.
    Create {
        #[arg(long)]
        name: String,
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(format!("{},sqlx=warn,sea_orm=warn,sea_orm_migration=warn,hyper=warn", cli.log))
        .context("invalid --log filter")?;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Demo(args) => demo(args).await,
        Command::Keys(KeysCommand::Create { name, database }) => {
            let store = open_store(&database).await?;
            let key = auth::create_api_key(&store, &name).await?;
            store.flush().await?;
            println!("Created API key {:?} (id {}). It is shown only once:", key.name, key.id);
            println!("{}", key.secret);
            Ok(())
        }
        Command::Devices(DevicesCommand::Add { name, kind, json, database }) => {
            if kind != "android" && kind != "modem" {
                anyhow::bail!("--kind must be android or modem");
            }
            let store = open_store(&database).await?;
            let device = auth::create_device(&store, &name, &kind).await?;
            store.flush().await?;
            if json {
                println!("{}", serde_json::json!({ "id": device.id, "token": device.token }));
            } else {
                println!("Registered device {:?}. The token is shown only once.", device.name);
                println!("id: {}", device.id);
                println!("token: {}", device.token);
                println!("connect to: /ws/device/{} with Authorization: Bearer <token>", device.id);
            }
            Ok(())
        }
        Command::Simulate(args) => simulate_cmd(args).await,
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
    config.default_region = args.default_region.as_deref().map(parse_region).transpose().map_err(anyhow::Error::msg)?;
    config.max_parts = args.max_parts.max(1);
    config.heartbeat_s = args.heartbeat_s.max(1);
    config.scoring = ScoringConfig { min_battery: args.min_battery };
    Ok(config)
}

async fn serve(args: HubArgs) -> anyhow::Result<()> {
    let app = App::build(config(&args)?).await?;
    println!("smshub listening on http://{}", app.addr());
    app.run_until_stopped(shutdown_signal()).await
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let temp_db = std::env::temp_dir().join(format!("smshub-demo-{}.db", std::process::id()));
    let database_url = args.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", temp_db.display()));
    let app = App::build(Config::new(args.listen, database_url.clone())).await?;
    let base = format!("http://{}", app.addr());
    let hub = app.hub();
    let key = auth::create_api_key(&hub.store, "demo").await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));

    let stats = Arc::new(SimStats::default());
    let behaviour = Behaviour { latency: Duration::from_millis(800), fail_rate: 0.05, delivery_rate: 0.9 };
    let phones =
        simulate::start_fleet(&base, &key.secret, "demo-phone", args.devices, behaviour, stats.clone()).await?;

    println!();
    println!("  smshub demo is running with {} simulated phones ({database_url})", phones.len());
    println!();
    println!("  Dashboard:  {base}/#key={}", key.secret);
    println!("  API key:    {}", key.secret);
    println!();
    println!("  Send an SMS:");
    println!(
        "    curl -s -X POST {base}/api/send-sms -H 'X-API-Key: {}' -H 'Content-Type: application/json' \\\n      -d '{{\"phone_number\": \"+14155552671\", \"message\": \"Hello from smshub\", \"delivery_report\": true}}'",
        key.secret
    );
    println!("  Then:  curl -s {base}/api/sms/<id> -H 'X-API-Key: {}'", key.secret);
    println!("         curl -s {base}/api/devices -H 'X-API-Key: {}'", key.secret);
    println!();
    println!("  Press Ctrl-C to stop.");
    println!();

    let traffic = tokio::spawn(demo_traffic(base.clone(), key.secret.clone(), args.traffic, phones.clone()));
    shutdown_signal().await;
    traffic.abort();
    for phone in &phones {
        phone.control(Control::Stop).await;
    }
    let _ = stop_tx.send(());
    server.await??;
    if args.database_url.is_none() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", temp_db.display()));
        }
    }
    Ok(())
}

/// Sends a trickle of demo messages, and now and then has a phone receive one, so the
/// dashboard shows a fleet at work.
async fn demo_traffic(base: String, api_key: String, per_second: f64, phones: Vec<simulate::Phone>) {
    if per_second <= 0.0 {
        return;
    }
    const RECIPIENTS: [&str; 4] = ["+14155552671", "+442079460018", "+213555123456", "+33612345678"];
    const TEXTS: [&str; 4] = [
        "Your verification code is 482913",
        "Reminder: your appointment is tomorrow at 10:00",
        "Alert: disk usage on db-1 is above 90%",
        "Votre colis arrive aujourd'hui entre 14h et 16h",
    ];
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    let mut n: usize = 0;
    loop {
        tick.tick().await;
        n += 1;
        let body = serde_json::json!({
            "phone_number": RECIPIENTS[n % RECIPIENTS.len()],
            "message": TEXTS[n % TEXTS.len()],
            "delivery_report": n.is_multiple_of(2),
        });
        let _ = client.post(format!("{base}/api/send-sms")).header("X-API-Key", &api_key).json(&body).send().await;
        if n.is_multiple_of(7) && !phones.is_empty() {
            let phone = &phones[n % phones.len()];
            phone.control(Control::Receive { from: "+14155550123".into(), text: "STOP".into() }).await;
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
    let phones =
        simulate::start_fleet(&hub, &args.api_key, &args.prefix, args.devices, behaviour, stats.clone()).await?;
    println!("{} simulated phones connected to {hub}; Ctrl-C to stop", phones.len());
    let mut report = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown_signal() => break,
            _ = report.tick() => {
                println!(
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
