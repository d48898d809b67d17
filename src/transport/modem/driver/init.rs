//! Setting a modem up when its port opens: wake it with `AT`, echo off, numeric errors, the
//! radio on, the SIM unlocked, identity (maker, model, revision, IMEI, IMSI, ICCID), PDU mode,
//! the message storage and the new-message indications, each with the fallbacks real modems
//! need; the result is published in the modem's status.
//!
//! Must never: treat a refused optional command as a failure (only a dead port, a locked SIM
//! or a modem without PDU mode ends the session), or enter a PIN that was not configured.

use std::time::Duration;

use smshub_protocol::at::{self, CommandError, reply};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Connection;
use crate::transport::modem::session::SessionError;

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<'_, S> {
    /// Runs the init sequence; returns the IMEI (or another stable identity).
    pub(super) async fn init(&mut self) -> Result<String, String> {
        let t = self.timeouts();
        let mut alive = false;
        for _ in 0..5 {
            match self
                .session
                .command("AT", t.command.min(Duration::from_secs(2)))
                .await
            {
                Ok(_) => {
                    alive = true;
                    break;
                }
                Err(err) if err.is_fatal() => return Err(err.to_string()),
                Err(_) => {}
            }
        }
        if !alive {
            return Err(format!("{} does not answer AT", self.port));
        }
        self.quiet("ATE0").await?;
        self.quiet("AT+CMEE=1").await?;
        if let Ok(lines) = self.session.command("AT+CFUN?", t.command).await
            && lines
                .iter()
                .any(|it| at::strip_tag(it, "+CFUN").is_some_and(|v| v.trim() == "0"))
        {
            let _ = self.session.command("AT+CFUN=1", t.radio).await;
        }
        self.unlock_sim().await?;

        let manufacturer = self.info("AT+CGMI", &["+CGMI", "+GMI"]).await?;
        let model = self.info("AT+CGMM", &["+CGMM", "+GMM"]).await?;
        let revision = self.info("AT+CGMR", &["+CGMR", "+GMR"]).await?;
        let imei = self
            .info("AT+CGSN", &["+CGSN", "+GSN"])
            .await?
            .map(|it| it.chars().filter(char::is_ascii_digit).collect::<String>())
            .filter(|it| (14..=17).contains(&it.len()));
        let imsi = match self.session.command("AT+CIMI", t.sim).await {
            Ok(lines) => lines.iter().find_map(|it| reply::parse_imsi(it)),
            Err(err) if err.is_fatal() => return Err(err.to_string()),
            Err(_) => None,
        };
        self.huawei = manufacturer
            .as_deref()
            .is_some_and(|it| it.to_ascii_lowercase().contains("huawei"));
        // Gammu F_ENCODED_USSD: Huawei sticks want USSD as packed GSM 7-bit hex.
        self.packed_ussd = self.huawei;
        let mut iccid = None;
        for command in [
            "AT^ICCID?",
            "AT+CCID",
            "AT+ICCID",
            "AT+QCCID",
            "AT+CICCID",
            "AT+CRSM=176,12258,0,0,10",
        ] {
            if command == "AT^ICCID?" && !self.huawei {
                continue;
            }
            match self.session.command(command, t.sim).await {
                Ok(lines) => {
                    iccid = lines.iter().find_map(|it| reply::parse_iccid(it));
                    if iccid.is_some() {
                        break;
                    }
                }
                Err(err) if err.is_fatal() => return Err(err.to_string()),
                Err(_) => {}
            }
        }
        if self.huawei {
            // Gammu's Huawei init: no periodic ^RSSI/^DSFLOWRPT; python-gsmmodem: USSD text mode.
            self.quiet("AT^CURC=0").await?;
            self.quiet("AT^USSDMODE=0").await?;
        }

        match self.session.command("AT+CMGF=0", t.command).await {
            Ok(_) => {}
            Err(err) => return Err(format!("the modem refuses PDU mode (AT+CMGF=0): {err}")),
        }
        let smsc = match self.session.command("AT+CSCA?", t.sim).await {
            Ok(lines) => lines.iter().find_map(|it| reply::parse_csca(it)),
            Err(err) if err.is_fatal() => return Err(err.to_string()),
            Err(_) => None,
        };
        self.storage = self.choose_storage().await?;
        let cnmi = self.choose_cnmi().await?;
        self.quiet("AT+COPS=3,0").await?;

        let profile = imsi
            .as_deref()
            .and_then(|it| self.operators.for_imsi(it))
            .cloned();
        let identity = imei
            .clone()
            .or_else(|| imsi.clone())
            .or_else(|| iccid.clone());
        let storage = self.storage.clone();
        self.publish(|it| {
            it.manufacturer = manufacturer;
            it.model = model;
            it.revision = revision;
            it.imei = imei;
            it.sim.mcc_mnc = profile
                .as_ref()
                .map(|p| p.mcc_mnc.clone())
                .or_else(|| imsi.as_ref().map(|i| i.chars().take(5).collect()));
            it.sim.operator = profile.as_ref().map(|p| p.name.clone());
            it.sim.profile = profile;
            it.sim.imsi = imsi;
            it.sim.iccid = iccid;
            it.sim.smsc = smsc;
            it.storage = storage;
            it.cnmi = cnmi;
        });
        identity.ok_or_else(|| "the modem gives no IMEI, IMSI or ICCID to know it by".to_string())
    }

    /// Runs a command whose failure does not matter; only a dead port is an error.
    async fn quiet(&mut self, command: &str) -> Result<(), String> {
        match self
            .session
            .command(command, self.config.timeouts.command)
            .await
        {
            Err(err) if err.is_fatal() => Err(err.to_string()),
            _ => Ok(()),
        }
    }

    /// What an identity command answers; `None` when the modem refuses it.
    async fn info(&mut self, command: &str, tags: &[&str]) -> Result<Option<String>, String> {
        match self
            .session
            .command(command, self.config.timeouts.command)
            .await
        {
            Ok(lines) => Ok(lines.iter().find_map(|it| reply::parse_info(it, tags))),
            Err(err) if err.is_fatal() => Err(err.to_string()),
            Err(_) => Ok(None),
        }
    }

    /// Checks the SIM and enters the configured PIN when the SIM asks for it.
    async fn unlock_sim(&mut self) -> Result<(), String> {
        let t = self.timeouts();
        for _ in 0..2 {
            let lines = match self.session.command("AT+CPIN?", t.sim).await {
                Ok(lines) => lines,
                // Old Wavecom modems answer +CPIN: READY without OK (python-gsmmodem fakemodems).
                Err(SessionError::Timeout { lines }) if !lines.is_empty() => lines,
                Err(SessionError::Command(CommandError::Cme(10) | CommandError::Cms(310))) => {
                    self.publish(|it| it.sim.pin_state = Some("SIM not inserted".into()));
                    return Err("no SIM card inserted".to_string());
                }
                Err(err) => return Err(format!("SIM state unknown (AT+CPIN?): {err}")),
            };
            let state = lines.iter().find_map(|it| reply::parse_cpin(it));
            let shown = lines
                .iter()
                .find_map(|it| at::strip_tag(it, "+CPIN"))
                .map(str::to_string);
            self.publish(|it| it.sim.pin_state = shown);
            match state {
                Some(reply::PinState::Ready) => return Ok(()),
                Some(reply::PinState::SimPin) => match self.config.sim_pin.clone() {
                    Some(pin) => {
                        if let Err(err) = self
                            .session
                            .command(&format!("AT+CPIN=\"{pin}\""), t.sim)
                            .await
                        {
                            return Err(format!("the SIM refused the configured PIN: {err}"));
                        }
                    }
                    None => return Err("the SIM asks for its PIN; configure it".to_string()),
                },
                Some(reply::PinState::SimPuk) => {
                    return Err("the SIM is blocked and asks for its PUK".to_string());
                }
                Some(reply::PinState::Other(other)) => {
                    return Err(format!("the SIM is not ready ({other})"));
                }
                None => return Err("no answer to AT+CPIN?".to_string()),
            }
        }
        Err("the SIM is still locked after entering the PIN".to_string())
    }

    /// Chooses the message storage among those the modem offers; `None` when none is taken.
    async fn choose_storage(&mut self) -> Result<Option<String>, String> {
        let t = self.timeouts();
        let offered = match self.session.command("AT+CPMS=?", t.command).await {
            Ok(lines) => lines.iter().find_map(|it| reply::parse_cpms_support(it)),
            Err(err) if err.is_fatal() => return Err(err.to_string()),
            Err(_) => None,
        };
        let Some(storage) = offered.as_deref().and_then(reply::choose_storage) else {
            return Ok(None);
        };
        for command in [
            format!("AT+CPMS=\"{storage}\",\"{storage}\",\"{storage}\""),
            format!("AT+CPMS=\"{storage}\",\"{storage}\""),
            format!("AT+CPMS=\"{storage}\""),
        ] {
            match self.session.command(&command, t.command).await {
                Ok(_) => return Ok(Some(storage)),
                Err(err) if err.is_fatal() => return Err(err.to_string()),
                Err(_) => {}
            }
        }
        Ok(None)
    }

    /// Turns on new-message indications with the first setting the modem accepts.
    async fn choose_cnmi(&mut self) -> Result<Option<String>, String> {
        let t = self.timeouts();
        let candidates = match self.session.command("AT+CNMI=?", t.command).await {
            Ok(lines) => lines
                .iter()
                .find_map(|it| reply::parse_cnmi_support(it))
                .map(|it| it.candidates())
                .unwrap_or_else(reply::default_cnmi),
            Err(err) if err.is_fatal() => return Err(err.to_string()),
            Err(_) => reply::default_cnmi(),
        };
        for setting in candidates {
            match self
                .session
                .command(&format!("AT+CNMI={setting}"), t.command)
                .await
            {
                Ok(_) => return Ok(Some(setting)),
                Err(err) if err.is_fatal() => return Err(err.to_string()),
                Err(_) => {}
            }
        }
        // No indications at all: the sweep still finds every stored message.
        tracing::warn!(port = %self.port, "the modem accepts no AT+CNMI setting; relying on the sweep");
        Ok(None)
    }
}
