//! `smshub devices pair` (a one-time pairing code, with its QR code drawn in the terminal)
//! and `smshub devices token rotate|revoke ID`, against a running hub: pairing codes live in
//! the hub's memory, and only the hub can close a revoked token's socket.

use clap::{Args, Subcommand};

use super::{Client, HubArgs, encode, ok_or_error};

/// `smshub devices pair`.
#[derive(Args, Debug)]
pub struct PairArgs {
    /// The name the paired device gets (else the phone's choice).
    #[arg(long)]
    pub name: Option<String>,
    /// How long the code lives: seconds, or with a unit (`90s`, `10m`, `1h`).
    #[arg(long, default_value = "10m", value_parser = parse_ttl)]
    pub ttl: u64,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// `smshub devices token …`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Give a device a new token (shown once); the old one stops working and its socket closes.
    Rotate {
        id: String,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Revoke a device's token: its socket closes and it cannot connect until rotated.
    Revoke {
        id: String,
        #[command(flatten)]
        hub: HubArgs,
    },
}

fn parse_ttl(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|it: char| !it.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 10m or 1h"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("{text:?}: the unit is s, m or h")),
    };
    if seconds == 0 {
        return Err("the ttl must be above zero".into());
    }
    Ok(seconds)
}

/// Runs `smshub devices pair`; what to print is returned.
pub async fn pair(args: PairArgs) -> anyhow::Result<String> {
    let client = Client::new(&args.hub)?;
    let mut body = serde_json::json!({ "ttl_s": args.ttl });
    if let Some(name) = &args.name {
        body["name"] = name.clone().into();
    }
    let request = client
        .request(reqwest::Method::POST, "/api/devices/pairing")
        .json(&body);
    let (status, answer) = client.call(request).await?;
    let answer = ok_or_error(status, answer)?;
    if args.hub.json {
        return Ok(answer.to_string());
    }
    let payload = answer["qr_payload"].as_str().unwrap_or_default();
    let qr = qrcode::QrCode::new(payload.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::unicode::Dense1x2>()
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default();
    Ok(format!(
        "{qr}\nPairing code: {}   (one use, expires {})\nHub: {}\nIn the app, scan the QR code or type the hub address and the code.",
        answer["code"].as_str().unwrap_or_default(),
        answer["expires_at"].as_str().unwrap_or_default(),
        answer["hub_url"].as_str().unwrap_or_default(),
    ))
}

/// Runs `smshub devices token …`; what to print is returned.
pub async fn token(command: TokenCommand) -> anyhow::Result<String> {
    let (method, id, hub) = match command {
        TokenCommand::Rotate { id, hub } => (reqwest::Method::POST, id, hub),
        TokenCommand::Revoke { id, hub } => (reqwest::Method::DELETE, id, hub),
    };
    let client = Client::new(&hub)?;
    let rotate = method == reqwest::Method::POST;
    let request = client.request(method, &format!("/api/devices/{}/token", encode(&id)));
    let (status, answer) = client.call(request).await?;
    let answer = ok_or_error(status, answer)?;
    Ok(match (rotate, hub.json) {
        (true, true) => answer.to_string(),
        (true, false) => format!(
            "New token of {id} (shown only once): {}\nThe old token no longer works.",
            answer["token"].as_str().unwrap_or_default()
        ),
        (false, true) => serde_json::json!({ "id": id, "revoked": true }).to_string(),
        (false, false) => format!("Revoked the token of {id}; its connection was closed."),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;

    #[test]
    fn ttls_read_with_their_units() {
        assert_eq!(parse_ttl("90"), Ok(90));
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert_eq!(parse_ttl("10m"), Ok(600));
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("10d").is_err());
        assert!(parse_ttl("m").is_err());
    }
}
