//! `smshub demo`: the hub with simulated phones and a trickle of traffic, to see it work at
//! once. `kept.rs` keeps the demo's key and phones between runs on one database.

mod kept;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

pub use kept::{APP_PREFIX, Fleet, PHONE_PREFIX, kept_file, key_and_phones};

use crate::app::{App, Config, shutdown_signal};
use crate::simulate::{self, Behaviour, Control, SimStats};

/// Prints a line to stdout, dropped when stdout is closed.
macro_rules! say {
    () => {
        crate::logging::say(format_args!(""))
    };
    ($($arg:tt)*) => {
        crate::logging::say(format_args!($($arg)*))
    };
}

#[derive(Args)]
pub struct DemoArgs {
    /// Number of simulated phones.
    #[arg(long, default_value_t = 5)]
    pub devices: usize,
    /// Number of simulated phones running capcom6's SMS Gateway app (on its mobile API).
    #[arg(long, default_value_t = 1)]
    pub apps: usize,
    /// Address to listen on.
    #[arg(long, env = "SMSHUB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Database URL; by default a fresh temporary SQLite file, removed at exit.
    #[arg(long, env = "SMSHUB_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Demo messages sent per second (0 for none).
    #[arg(long, default_value_t = 0.5)]
    pub traffic: f64,
}

/// Runs the hub with simulated phones until Ctrl-C, printing how to use it.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let temp_db = std::env::temp_dir().join(format!("smshub-demo-{}.db", std::process::id()));
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", temp_db.display()));
    let app = App::build(Config::new(args.listen, database_url.clone())).await?;
    let base = format!("http://{}", app.addr());
    // On a database of its own (--database-url), a second run reuses the key and the phones.
    let kept = args.database_url.as_deref().and_then(kept::kept_file);
    let fleet = kept::key_and_phones(app.store(), kept.as_deref(), args.devices, args.apps).await?;
    let key = fleet.api_key;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));

    let stats = Arc::new(SimStats::default());
    let behaviour = Behaviour {
        latency: Duration::from_millis(800),
        fail_rate: 0.05,
        delivery_rate: 0.9,
    };
    let mut phones = simulate::start_phones(&base, fleet.phones, behaviour.clone(), stats.clone());
    let apps = fleet.apps.len();
    for (n, credentials) in fleet.apps.into_iter().enumerate() {
        phones.push(simulate::app::spawn_app(
            &base,
            credentials,
            simulate::Profile::varied(n + 3),
            behaviour.clone(),
            stats.clone(),
            1000 + n as u64,
        ));
    }

    say!();
    say!(
        "  smshub demo is running with {} simulated phones, {apps} of them running the SMS Gateway app ({database_url})",
        phones.len()
    );
    say!();
    say!("  Dashboard:  {base}/#key={}", key);
    say!("  API key:    {}", key);
    say!();
    say!("  Send an SMS:");
    say!(
        "    curl -s -X POST {base}/api/send-sms -H 'X-API-Key: {}' -H 'Content-Type: application/json' \\\n      -d '{{\"phone_number\": \"+14155552671\", \"message\": \"Hello from smshub\", \"delivery_report\": true}}'",
        key
    );
    say!(
        "  Then:  curl -s {base}/api/sms/<id> -H 'X-API-Key: {}'",
        key
    );
    say!(
        "         curl -s {base}/api/devices -H 'X-API-Key: {}'",
        key
    );
    say!();
    say!("  Press Ctrl-C to stop.");
    say!();

    let traffic = tokio::spawn(demo_traffic(
        base.clone(),
        key.clone(),
        args.traffic,
        phones.clone(),
    ));
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
async fn demo_traffic(
    base: String,
    api_key: String,
    per_second: f64,
    phones: Vec<simulate::Phone>,
) {
    if per_second <= 0.0 {
        return;
    }
    const RECIPIENTS: [&str; 4] = [
        "+14155552671",
        "+442079460018",
        "+213555123456",
        "+33612345678",
    ];
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
        let _ = client
            .post(format!("{base}/api/send-sms"))
            .header("X-API-Key", &api_key)
            .json(&body)
            .send()
            .await;
        if n.is_multiple_of(7) && !phones.is_empty() {
            let phone = &phones[n % phones.len()];
            phone
                .control(Control::Receive {
                    from: "+14155550123".into(),
                    text: "STOP".into(),
                })
                .await;
        }
    }
}
