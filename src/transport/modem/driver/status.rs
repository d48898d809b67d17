//! A modem's radio: signal (`+CSQ`, Huawei's `^HCSQ`), operator, registration (CS, then EPS
//! and PS for LTE-only modems) and network mode (Huawei's `^SYSINFOEX`/`^SYSINFO`), published
//! in its status and reported to the hub in the device protocol's terms.
//!
//! Must never: fail a session over a command the modem does not know (only a dead port is an
//! error), or report to the hub before the session is registered.

use smshub_protocol::at::{self, reply};
use smshub_protocol::device::Status;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Connection;
use crate::transport::modem::session::SessionError;
use crate::transport::radio::SignalDetails;
use crate::transport::radio::device as radio;

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<'_, S> {
    /// Reads the radio again and reports it (the periodic refresh).
    pub(super) async fn refresh_and_report(&mut self) -> Result<(), SessionError> {
        self.refresh().await?;
        self.report_status();
        Ok(())
    }

    /// Hands the published radio status to the registry and the dispatcher.
    pub(super) fn report_status(&self) {
        self.link
            .report_status(&self.device_id, self.session_no, self.radio_status());
    }

    /// The published radio status in the device protocol's terms.
    pub(super) fn radio_status(&self) -> Status {
        let snapshot = self.status.borrow();
        let signal_level = radio::signal_level(snapshot.network.signal_dbm);
        radio::radio_status(&snapshot, signal_level)
    }

    /// Reads signal, operator, registration and (Huawei) network mode.
    pub(super) async fn refresh(&mut self) -> Result<(), SessionError> {
        let t = self.timeouts();
        let signal = self
            .lines("AT+CSQ", t.command)
            .await?
            .iter()
            .find_map(|it| reply::parse_csq(it));
        let hcsq = self.read_hcsq().await?;
        let operator = self
            .lines("AT+COPS?", t.command)
            .await?
            .iter()
            .find_map(|it| reply::parse_cops(it));
        let mut registration = self
            .lines("AT+CREG?", t.command)
            .await?
            .iter()
            .find_map(|it| reply::parse_creg(it));
        if !registration.is_some_and(|it| it.status.is_registered()) {
            // LTE-only modems register in the EPS domain and may say CREG 0.
            for command in ["AT+CEREG?", "AT+CGREG?"] {
                let other = self
                    .lines(command, t.command)
                    .await?
                    .iter()
                    .find_map(|it| reply::parse_creg(it));
                if other.is_some_and(|it| it.status.is_registered()) {
                    registration = other;
                    break;
                }
            }
        }
        let mut network = None;
        if self.huawei && self.sysinfo != Some(None) {
            for (command, extended) in [("AT^SYSINFOEX", true), ("AT^SYSINFO", false)] {
                if self.sysinfo == Some(Some(!extended)) {
                    continue;
                }
                match self.session.command(command, t.command).await {
                    Ok(lines) => {
                        network = lines
                            .iter()
                            .find_map(|it| reply::parse_sysinfo(it))
                            .and_then(|it| it.network());
                        self.sysinfo = Some(Some(extended));
                        break;
                    }
                    Err(err) if err.is_fatal() => return Err(err),
                    Err(_) => self.sysinfo = Some(None),
                }
            }
        }
        let network = network
            .or_else(|| hcsq.as_ref().and_then(|it| it.network()))
            .or_else(|| {
                operator
                    .as_ref()
                    .and_then(|it| it.act)
                    .map(|it| it.network())
            });
        let registered = registration.is_some_and(|it| it.status.is_registered());
        let roaming = registration.is_some_and(|it| it.status == reply::RegStatus::Roaming);
        // +CSQ when it knows (27.007); Huawei's ^HCSQ when +CSQ says 99 (LTE on E3372s).
        let dbm = signal
            .and_then(|s| s.dbm())
            .or_else(|| hcsq.as_ref().and_then(|it| it.signal_dbm()));
        let percent = signal
            .and_then(|s| s.percent())
            .or_else(|| dbm.map(dbm_percent));
        self.publish(|it| {
            it.network.signal_dbm = dbm;
            it.network.signal_percent = percent;
            it.network.signal_details = hcsq.as_ref().map(SignalDetails::from);
            it.network.operator = operator.and_then(|o| o.name);
            it.network.registered = registered;
            it.network.roaming = roaming;
            it.network.network_type = network.map(str::to_string);
        });
        Ok(())
    }

    /// Reads Huawei's `^HCSQ` (LTE signal where `+CSQ` says 99); `None` when the modem has no
    /// such command. The answer comes as a `^HCSQ:` line, which the framer files as a URC.
    async fn read_hcsq(&mut self) -> Result<Option<reply::Hcsq>, SessionError> {
        if !self.huawei || self.hcsq == Some(false) {
            return Ok(None);
        }
        let lines = match self
            .session
            .command("AT^HCSQ?", self.timeouts().command)
            .await
        {
            Ok(lines) => lines,
            Err(err) if err.is_fatal() => return Err(err),
            Err(_) => {
                self.hcsq = Some(false);
                return Ok(None);
            }
        };
        self.hcsq = Some(true);
        let urcs = self
            .session
            .take_urcs_where(|it| at::strip_tag(&it.line, "^HCSQ").is_some());
        Ok(lines
            .iter()
            .map(String::as_str)
            .chain(urcs.iter().map(|it| it.line.as_str()))
            .filter_map(reply::parse_hcsq)
            .next_back())
    }

    /// Takes a `^HCSQ` the modem sent on its own: Huawei reports signal changes unless
    /// `^CURC=0` took (some firmwares keep sending them anyway).
    pub(super) fn take_hcsq(&self, hcsq: &reply::Hcsq) {
        let dbm = hcsq.signal_dbm();
        self.publish(|it| {
            if dbm.is_some() {
                it.network.signal_dbm = dbm;
                it.network.signal_percent = dbm.map(dbm_percent);
            }
            if let Some(network) = hcsq.network() {
                it.network.network_type = Some(network.to_string());
            }
            it.network.signal_details = Some(SignalDetails::from(hcsq));
        });
        if self.session_no != 0 {
            self.report_status();
        }
    }
}

/// A signal in dBm as a percentage of the `+CSQ` scale (−113 dBm 0 %, −51 dBm 100 %).
fn dbm_percent(dbm: i32) -> u8 {
    let rssi = ((dbm + 113) / 2).clamp(0, 31);
    (rssi * 100 / 31) as u8
}
