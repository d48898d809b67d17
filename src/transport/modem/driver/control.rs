//! The API's requests to a modem ([`Control`]): list and delete the messages in its storage,
//! send a raw SMS outside the queue, run a USSD code, check the balance. Each answers its
//! caller; a dead port also ends the session.
//!
//! Must never: store anything (a raw send is not a message of the hub), or navigate a USSD
//! menu (an answer that opens one closes it).

use smshub_protocol::at::{self, CommandError, sms, ussd};
use smshub_protocol::pdu::{self, DecodedPdu};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::Connection;
use crate::transport::modem::session::SessionError;
use crate::transport::radio::device as radio;
use crate::transport::radio::{Balance, Control, ModemError, StoredSms, UssdAnswer};

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<'_, S> {
    /// Answers one request of the API; an error only when the port failed.
    pub(super) async fn serve_control(&mut self, request: Control) -> Result<(), SessionError> {
        match request {
            Control::ListSms(reply) => {
                let result = self.list_stored().await;
                let fatal = port_gone(&result);
                let _ = reply.send(result);
                fatal
            }
            Control::DeleteSms(index, reply) => {
                let result = self.delete_stored(index).await;
                let fatal = port_gone(&result);
                let _ = reply.send(result);
                fatal
            }
            Control::SendRaw { to, text, reply } => {
                let result = self.send_text(&to, &text, false).await;
                let fatal = matches!(&result, Err(failure) if failure.fatal);
                let _ = reply.send(result.map_err(|it| {
                    ModemError::Invalid(format!("{}: {}", it.code.as_str(), it.message))
                }));
                if fatal {
                    Err(SessionError::Closed)
                } else {
                    Ok(())
                }
            }
            Control::Ussd { code, reply } => {
                let result = self.ussd(&code).await;
                let fatal = port_gone(&result);
                let _ = reply.send(result);
                fatal
            }
            Control::Balance(reply) => {
                let result = self.balance().await;
                let fatal = port_gone(&result);
                let _ = reply.send(result);
                fatal
            }
            Control::Stop => Ok(()),
        }
    }

    /// Every message in the storage, decoded where it can be.
    async fn list_stored(&mut self) -> Result<Vec<StoredSms>, ModemError> {
        let lines = self
            .session
            .command("AT+CMGL=4", self.config.timeouts.list)
            .await
            .map_err(modem_error)?;
        Ok(sms::parse_cmgl(&lines)
            .into_iter()
            .map(describe_stored)
            .collect())
    }

    /// Deletes the message at `index` for the API. Many modems answer `OK` to `AT+CMGD` on an
    /// empty index (others `+CMS ERROR: 321`), so the index is read first: `+CMS ERROR: 321`
    /// ("invalid memory index", Gammu's transcripts) or an `OK` without `+CMGR:` means there
    /// is nothing to delete.
    async fn delete_stored(&mut self, index: u32) -> Result<(), ModemError> {
        let t = self.timeouts();
        let empty = |err: &SessionError| {
            matches!(
                err,
                SessionError::Command(CommandError::Cms(321) | CommandError::Cme(21))
            )
        };
        match self
            .session
            .command(&format!("AT+CMGR={index}"), t.list)
            .await
        {
            Ok(lines) if sms::parse_cmgr(&lines).is_some() => {}
            Ok(_) => return Err(ModemError::SmsNotFound(index)),
            Err(err) if empty(&err) => return Err(ModemError::SmsNotFound(index)),
            Err(err) => return Err(modem_error(err)),
        }
        match self
            .session
            .command(&format!("AT+CMGD={index}"), t.command)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if empty(&err) => Err(ModemError::SmsNotFound(index)),
            Err(err) => Err(modem_error(err)),
        }
    }

    /// Runs a USSD code, packed GSM 7-bit first on Huawei, plain text first elsewhere; the
    /// form that works is kept for the next code.
    async fn ussd(&mut self, code: &str) -> Result<UssdAnswer, ModemError> {
        let t = self.timeouts();
        let forms = if self.packed_ussd {
            [true, false]
        } else {
            [false, true]
        };
        let mut refused = None;
        for packed in forms {
            match self
                .session
                .command(&ussd::command(code, packed), t.command)
                .await
            {
                Ok(_) => {
                    self.packed_ussd = packed;
                    return self.await_ussd(code, packed).await;
                }
                Err(SessionError::Command(err)) => refused = Some(err),
                Err(err) => return Err(modem_error(err)),
            }
        }
        Err(ModemError::Command(refused.unwrap_or(CommandError::Error)))
    }

    /// Waits for the network's `+CUSD` answer, skipping release notices, and closes a menu.
    async fn await_ussd(&mut self, code: &str, packed: bool) -> Result<UssdAnswer, ModemError> {
        let t = self.timeouts();
        let deadline = Instant::now() + t.ussd;
        loop {
            let urc = self
                .session
                .wait_urc(deadline, |it| at::strip_tag(&it.line, "+CUSD").is_some())
                .await
                .map_err(modem_error)?;
            let Some(urc) = urc else {
                let _ = self.session.command("AT+CUSD=2", t.command).await;
                return Err(ModemError::Timeout);
            };
            let Some(answer) = ussd::parse_cusd(&urc.line) else {
                continue;
            };
            let text = answer.text(packed);
            // python-gsmmodem: an extra "+CUSD: 2,"Initiating Release"" or "+CUSD: 3,..."
            // may come before the real answer.
            let release = answer.status == ussd::UssdStatus::Terminated
                && text
                    .as_deref()
                    .is_some_and(|it| it.trim().eq_ignore_ascii_case("Initiating Release"));
            if answer.status == ussd::UssdStatus::OtherClient || release {
                continue;
            }
            if answer.status == ussd::UssdStatus::ActionRequired {
                // A menu: close it, the hub does not navigate menus.
                let _ = self.session.command("AT+CUSD=2", t.command).await;
            }
            return Ok(UssdAnswer {
                code: code.to_string(),
                status: answer.status.as_str(),
                text,
                dcs: answer.dcs,
            });
        }
    }

    /// The balance, by the USSD code of the SIM's operator.
    async fn balance(&mut self) -> Result<Balance, ModemError> {
        let (profile, code) = radio::balance_code(&self.status.borrow())?;
        let answer = self.ussd(&code).await?;
        Ok(radio::balance(profile, code, answer))
    }
}

/// Ends the session when a request found the port dead.
fn port_gone<T>(result: &Result<T, ModemError>) -> Result<(), SessionError> {
    match result {
        Err(ModemError::Port(_)) => Err(SessionError::Closed),
        _ => Ok(()),
    }
}

/// A session error as the API's caller sees it.
fn modem_error(err: SessionError) -> ModemError {
    match err {
        SessionError::Command(err) => ModemError::Command(err),
        SessionError::Timeout { .. } => ModemError::Timeout,
        SessionError::Io(err) => ModemError::Port(err.to_string()),
        SessionError::Closed => ModemError::Port("the port closed".to_string()),
    }
}

/// A stored PDU as the API lists it.
fn describe_stored(stored: sms::StoredPdu) -> StoredSms {
    let index = stored.index.unwrap_or(0);
    let status = stored.stat.as_str();
    let part = |udh: Option<&pdu::Udh>| {
        udh.and_then(|it| it.concat)
            .map(|c| format!("{}/{}", c.seq, c.total))
    };
    match pdu::decode(&stored.pdu) {
        Ok(DecodedPdu::Deliver(it)) => StoredSms {
            index,
            status,
            kind: "deliver",
            number: Some(it.sender.number.clone()),
            text: it.body.text().map(str::to_string),
            timestamp: Some(it.timestamp.to_string()),
            part: part(it.udh.as_ref()),
            pdu: stored.pdu,
        },
        Ok(DecodedPdu::Submit(it)) => StoredSms {
            index,
            status,
            kind: "submit",
            number: Some(it.to.number.clone()),
            text: it.body.text().map(str::to_string),
            timestamp: None,
            part: part(it.udh.as_ref()),
            pdu: stored.pdu,
        },
        Ok(DecodedPdu::StatusReport(it)) => StoredSms {
            index,
            status,
            kind: "status_report",
            number: Some(it.recipient.number.clone()),
            text: Some(it.status.description().to_string()),
            timestamp: Some(it.discharge_time.to_string()),
            part: None,
            pdu: stored.pdu,
        },
        Err(_) => StoredSms {
            index,
            status,
            kind: "undecodable",
            number: None,
            text: None,
            timestamp: None,
            part: None,
            pdu: stored.pdu,
        },
    }
}
