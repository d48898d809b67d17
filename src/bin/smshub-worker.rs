//! `smshub-worker`: the remote modem worker alone, the same code as `smshub worker` linked
//! without the hub (store, API, dispatcher, console), so a Raspberry Pi maps a fraction of
//! the pages. Its flags are `smshub worker`'s (`smshub-worker --help`).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc, as in `smshub` (the worker's allocations are few; the hub's reason holds here
/// too, and one allocator keeps the two binaries' behaviour the same).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "smshub-worker",
    version,
    about = "A remote modem worker: drives the modems next to it for a central smshub hub"
)]
struct Cli {
    /// Log filter, e.g. `info` or `smshub=debug`.
    #[arg(long, env = "SMSHUB_LOG", default_value = "info")]
    log: String,
    /// `text` for people, `json` (one object per line) for log collectors.
    #[arg(long, env = "SMSHUB_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: smshub::logging::LogFormat,
    #[command(flatten)]
    worker: smshub::worker::config::WorkerArgs,
}

fn main() -> ExitCode {
    smshub::worker::small_pages();
    let cli = Cli::parse();
    smshub::server::tls::install_crypto_provider();
    let filter = match EnvFilter::try_new(format!("{},hyper=warn,reqwest=warn", cli.log)) {
        Ok(filter) => filter,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: invalid --log filter: {err}");
            return ExitCode::FAILURE;
        }
    };
    // One thread: a worker waits on a socket and a few serial ports.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    smshub::logging::init(filter, cli.log_format);
    match runtime.block_on(smshub::worker::run(cli.worker)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
