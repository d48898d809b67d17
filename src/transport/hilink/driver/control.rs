//! The API's requests to a stick ([`Control`]): list the inbox and the sent box, delete a
//! message, send a raw SMS outside the queue, run a USSD code, check the balance. Each answers
//! its caller.
//!
//! Must never: store anything (a raw send is not a message of the hub), or navigate a USSD
//! menu (the session is released once answered).

use smshub_protocol::gsm;
use smshub_protocol::hilink::api::{self, BOX_INBOX, BOX_SENT, SmsList, StoredMessage};

use super::Connection;
use crate::transport::hilink::calls::modem_error;
use crate::transport::radio::device as radio;
use crate::transport::radio::{Balance, Control, ModemError, RawSent, StoredSms, UssdAnswer};

impl Connection<'_> {
    /// Answers one request of the API.
    pub(super) async fn serve_control(&mut self, request: Control) {
        match request {
            Control::ListSms(reply) => {
                let result = self.list_stored().await;
                let _ = reply.send(result);
            }
            Control::DeleteSms(index, reply) => {
                let result = self
                    .post("sms/delete-sms", &api::delete_sms_request(index))
                    .await
                    .map(|_| ())
                    .map_err(modem_error);
                let _ = reply.send(result);
            }
            Control::SendRaw { to, text, reply } => {
                let parts = gsm::segment(&text).parts;
                let result = self
                    .send_text(&to, &text)
                    .await
                    .map(|()| RawSent {
                        parts,
                        references: Vec::new(),
                    })
                    .map_err(|it| {
                        ModemError::Invalid(format!("{}: {}", it.code.as_str(), it.message))
                    });
                let _ = reply.send(result);
            }
            Control::Ussd { code, reply } => {
                let result = self.ussd(&code).await;
                let _ = reply.send(result);
            }
            Control::Balance(reply) => {
                let result = self.balance().await;
                let _ = reply.send(result);
            }
            Control::Stop => {}
        }
    }

    /// The inbox and the sent box, first page of each.
    async fn list_stored(&mut self) -> Result<Vec<StoredSms>, ModemError> {
        let mut stored = Vec::new();
        for box_type in [BOX_INBOX, BOX_SENT] {
            let list = SmsList::from_element(
                &self
                    .post("sms/sms-list", &api::sms_list_request(1, 50, box_type))
                    .await
                    .map_err(modem_error)?,
            );
            stored.extend(
                list.messages
                    .into_iter()
                    .map(|it| describe_stored(it, box_type)),
            );
        }
        Ok(stored)
    }

    /// Runs a USSD code and releases the session.
    async fn ussd(&mut self, code: &str) -> Result<UssdAnswer, ModemError> {
        self.calls.ussd(code).await
    }

    /// The balance, by the USSD code of the SIM's operator.
    async fn balance(&mut self) -> Result<Balance, ModemError> {
        let (profile, code) = radio::balance_code(&self.status.borrow())?;
        let answer = self.ussd(&code).await?;
        Ok(radio::balance(profile, code, answer))
    }
}

/// A message of the inbox or the sent box as the API lists it.
fn describe_stored(message: StoredMessage, box_type: u8) -> StoredSms {
    let status = match (box_type, message.smstat) {
        (BOX_SENT, 4) => "sto_unsent",
        (BOX_SENT, _) => "sto_sent",
        (_, 0) => "rec_unread",
        _ => "rec_read",
    };
    let kind = match (box_type, message.is_report()) {
        (_, true) => "status_report",
        (BOX_SENT, false) => "submit",
        _ => "deliver",
    };
    StoredSms {
        index: message.index,
        status,
        kind,
        number: Some(message.phone).filter(|it| !it.is_empty()),
        text: Some(message.content),
        timestamp: Some(message.date).filter(|it| !it.is_empty()),
        part: None,
        pdu: String::new(),
    }
}
