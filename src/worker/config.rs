//! `smshub worker`'s settings: the hub to dial, the device's credentials, the modems it drives,
//! where its journal lives. The token comes from `--token`, `--token-file` or the environment
//! (`SMSHUB_WORKER_TOKEN`) and is kept in a [`Token`], whose `Debug` hides it: it is never
//! logged nor printed.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::transport::hilink::{self, Target};

/// The command line of `smshub worker`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// The hub: `wss://hub.example/` (or `ws://` on a trusted network); the device path
    /// `/ws/device/{id}` is added to it.
    #[arg(long, env = "SMSHUB_WORKER_HUB")]
    pub hub: String,
    /// The device id, as `smshub devices add` or `POST /api/devices` gave it.
    #[arg(long = "device-id", env = "SMSHUB_WORKER_DEVICE_ID")]
    pub device_id: String,
    /// The device token. Prefer `--token-file` or the environment: a flag shows in `ps`.
    #[arg(long, env = "SMSHUB_WORKER_TOKEN", hide_env_values = true)]
    pub token: Option<Token>,
    /// A file holding the device token (one line), e.g. a systemd credential.
    #[arg(long = "token-file", env = "SMSHUB_WORKER_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// A modem's serial port (repeatable; the n-th is SIM slot n-1 of this device).
    #[arg(long = "modem", env = "SMSHUB_WORKER_MODEM", value_delimiter = ',')]
    pub modem: Vec<String>,
    /// Find the modems plugged in (sysfs), in addition to `--modem`.
    #[arg(long = "modem-scan")]
    pub modem_scan: bool,
    /// Where the journal is kept (it must survive a power loss: not a tmpfs).
    #[arg(
        long = "journal-dir",
        env = "SMSHUB_WORKER_JOURNAL",
        default_value = "journal"
    )]
    pub journal_dir: PathBuf,
    /// A PEM file of the CA(s) to trust for `wss://` instead of the system's roots.
    #[arg(long = "ca-file", env = "SMSHUB_WORKER_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Jobs in progress at once per modem (offered or committed and not yet reported).
    #[arg(long = "jobs-per-modem", default_value_t = 2)]
    pub jobs_per_modem: u32,
    /// The longest wait between two connection attempts, in seconds (full jitter below it).
    #[arg(long = "max-backoff-s", default_value_t = 60)]
    pub max_backoff_s: u64,
}

/// A device token: shown as `Token(***)` by `Debug`, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token read from somewhere.
    pub fn new(secret: impl Into<String>) -> Token {
        Token(secret.into())
    }

    /// The secret, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl std::str::FromStr for Token {
    type Err = String;

    fn from_str(text: &str) -> Result<Token, String> {
        Ok(Token(text.trim().to_string()))
    }
}

/// A modem the worker drives: a serial port, or a HiLink stick's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemSpec {
    /// `/dev/ttyUSB2`.
    Serial(String),
    /// `http://192.168.8.1` (a login as `http://admin:password@192.168.8.1`).
    Hilink(Target),
}

impl ModemSpec {
    /// What `--modem` names: a serial port, or a HiLink stick's URL.
    pub fn parse(text: &str) -> anyhow::Result<ModemSpec> {
        if hilink::is_url(text) {
            let target = Target::parse(text, None, None)
                .map_err(|err| anyhow::anyhow!("--modem {}: {err}", hilink::redact(text)))?;
            Ok(ModemSpec::Hilink(target))
        } else {
            Ok(ModemSpec::Serial(text.to_string()))
        }
    }

    /// The port or URL, for logs (without a URL's credentials).
    pub fn name(&self) -> String {
        match self {
            ModemSpec::Serial(port) => port.clone(),
            ModemSpec::Hilink(target) => target.url.clone(),
        }
    }
}

/// Everything the worker runs with, checked.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The WebSocket URL of this device, `…/ws/device/{id}`.
    pub url: String,
    pub device_id: String,
    pub token: Token,
    pub modems: Vec<ModemSpec>,
    pub modem_scan: bool,
    pub journal_dir: PathBuf,
    pub ca_file: Option<PathBuf>,
    pub jobs_per_modem: u32,
    pub max_backoff: Duration,
}

impl WorkerConfig {
    /// Checks the command line and reads the token.
    pub fn from_args(args: WorkerArgs) -> anyhow::Result<WorkerConfig> {
        let token = match (args.token, &args.token_file) {
            (Some(token), _) if !token.expose().is_empty() => token,
            (_, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--token-file {}", path.display()))?;
                Token::new(text.trim())
            }
            _ => bail!("no device token: give --token-file, or SMSHUB_WORKER_TOKEN"),
        };
        if token.expose().is_empty() {
            bail!("the device token is empty");
        }
        let device_id = args.device_id.trim().to_string();
        if device_id.is_empty()
            || !device_id
                .chars()
                .all(|it| it.is_ascii_alphanumeric() || it == '-' || it == '_')
        {
            bail!("--device-id: letters, digits, '-' and '_' only");
        }
        let url = device_url(&args.hub, &device_id)?;
        let modems: Vec<ModemSpec> = args
            .modem
            .iter()
            .map(|it| it.trim())
            .filter(|it| !it.is_empty())
            .map(ModemSpec::parse)
            .collect::<anyhow::Result<_>>()?;
        if modems.is_empty() && !args.modem_scan {
            bail!("no modem: give --modem PORT (repeatable) or --modem-scan");
        }
        if args.jobs_per_modem == 0 {
            bail!("--jobs-per-modem must be at least 1");
        }
        Ok(WorkerConfig {
            url,
            device_id,
            token,
            modems,
            modem_scan: args.modem_scan,
            journal_dir: args.journal_dir,
            ca_file: args.ca_file,
            jobs_per_modem: args.jobs_per_modem,
            max_backoff: Duration::from_secs(args.max_backoff_s.max(1)),
        })
    }
}

/// `wss://hub.example/` and a device id → `wss://hub.example/ws/device/{id}`; `http(s)://`
/// is taken as `ws(s)://`.
fn device_url(hub: &str, device_id: &str) -> anyhow::Result<String> {
    let hub = hub.trim();
    let rest = if let Some(rest) = hub.strip_prefix("wss://") {
        ("wss", rest)
    } else if let Some(rest) = hub.strip_prefix("ws://") {
        ("ws", rest)
    } else if let Some(rest) = hub.strip_prefix("https://") {
        ("wss", rest)
    } else if let Some(rest) = hub.strip_prefix("http://") {
        ("ws", rest)
    } else {
        bail!("--hub must start with wss:// or ws://");
    };
    let (scheme, rest) = rest;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        bail!("--hub has no host");
    }
    if rest.contains("/ws/device/") {
        return Ok(format!("{scheme}://{rest}"));
    }
    Ok(format!("{scheme}://{rest}/ws/device/{device_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> WorkerArgs {
        WorkerArgs {
            hub: "wss://hub.example/".into(),
            device_id: "pi-1".into(),
            token: Some(Token::new("shd_secret_value")),
            token_file: None,
            modem: vec!["/dev/ttyUSB2".into()],
            modem_scan: false,
            journal_dir: "journal".into(),
            ca_file: None,
            jobs_per_modem: 2,
            max_backoff_s: 60,
        }
    }

    #[test]
    fn the_token_is_never_in_debug_output() {
        let config = WorkerConfig::from_args(args()).unwrap();
        let shown = format!("{config:?} {:?}", args());
        assert!(!shown.contains("shd_secret_value"), "{shown}");
        assert!(shown.contains("Token(***)"));
        assert_eq!(config.token.expose(), "shd_secret_value");
    }

    #[test]
    fn the_token_comes_from_a_file_when_no_flag_gives_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "shd_from_file\n").unwrap();
        let mut a = args();
        a.token = None;
        a.token_file = Some(path);
        assert_eq!(
            WorkerConfig::from_args(a).unwrap().token.expose(),
            "shd_from_file"
        );
        let mut none = args();
        none.token = None;
        assert!(WorkerConfig::from_args(none).is_err());
    }

    #[test]
    fn hub_urls_become_the_device_url() {
        let url = |hub| device_url(hub, "pi-1").unwrap();
        assert_eq!(
            url("wss://hub.example/"),
            "wss://hub.example/ws/device/pi-1"
        );
        assert_eq!(
            url("http://127.0.0.1:8080"),
            "ws://127.0.0.1:8080/ws/device/pi-1"
        );
        assert_eq!(url("https://h/base/"), "wss://h/base/ws/device/pi-1");
        assert!(device_url("ftp://h", "x").is_err());
        let stick = ModemSpec::parse("http://admin:pw@192.168.8.1/").unwrap();
        assert_eq!(stick.name(), "http://192.168.8.1");
        assert!(
            !format!("{stick:?}").contains("pw"),
            "the password is never logged"
        );
        assert_eq!(
            ModemSpec::parse("/dev/ttyUSB2").unwrap(),
            ModemSpec::Serial("/dev/ttyUSB2".into())
        );
        let refused = ModemSpec::parse("https://admin:pw@192.168.8.1").unwrap_err();
        assert!(!refused.to_string().contains("pw"), "{refused}");
    }
}
