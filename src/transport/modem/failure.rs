//! How a failed `AT+CMGS` ends a message, shared by the hub's modem driver and the remote
//! worker (`crate::worker`): whether a refused part of a long message may be written again
//! (same reference and part number), and the failure code, its `temporary` promise and the
//! operator's text, from the CMS/CME code, the part it happened at and whether the PDU was
//! written.
//!
//! Must never: call a failure temporary once a part went out, or when the PDU was written and
//! not answered (that is `outcome_unknown`).

use smshub_protocol::at;
use smshub_protocol::device::ErrorCode;

use super::session::{SendError, SessionError, Timeouts};
use crate::transport::radio::session::SendFailure;

/// Whether a part of a long message that failed with `err` may be written again, with the same
/// concatenation reference and part number: the modem answered with a transient error
/// (network out of order, congestion, no service, unknown or vendor errors; what Gammu and
/// smstools retry). `+CMS ERROR: 332` (network timeout) is one too, though the part may have
/// reached the network: a phone links parts by reference and number and keeps one copy of a
/// part that comes twice. Never a timeout or a closed port after the PDU: the outcome is
/// unknown and nothing is resent.
pub fn may_resend(err: &SendError) -> bool {
    let (SendError::BeforePdu(SessionError::Command(error))
    | SendError::AfterPdu(SessionError::Command(error))) = err
    else {
        return false;
    };
    error.class() == at::ErrorClass::Temporary || *error == at::CommandError::Cms(332)
}

/// How a failed PDU ends the message, after `tries` writes of the part. Parts already sent
/// make any failure permanent: sending the message again would repeat them.
pub fn send_failure(
    err: SendError,
    part: usize,
    total: usize,
    tries: u32,
    timeouts: &Timeouts,
) -> SendFailure {
    let (after, err) = match err {
        SendError::BeforePdu(err) => (false, err),
        SendError::AfterPdu(err) => (true, err),
    };
    let partial = part > 0;
    let which = if total > 1 {
        format!("part {} of {total}: ", part + 1)
    } else {
        String::new()
    };
    let sent_note = match (tries, partial) {
        (1, false) => String::new(),
        (1, true) => format!("; parts 1 to {part} were sent"),
        (_, false) => format!(" ({tries} tries)"),
        (_, true) => format!(" ({tries} tries); parts 1 to {part} were sent"),
    };
    let fatal = err.is_fatal();
    let (code, message, temporary) = match err {
        SessionError::Command(error) => {
            let class = error.class();
            let code = if after && class == at::ErrorClass::OutcomeUnknown {
                ErrorCode::OutcomeUnknown
            } else {
                error.wire_code()
            };
            (
                code,
                format!("{which}the modem answered {error}{sent_note}"),
                class.is_temporary(),
            )
        }
        SessionError::Timeout { .. } if after => (
            ErrorCode::OutcomeUnknown,
            format!(
                "{which}no answer within {} s after the PDU was written; it may have been sent{sent_note}",
                timeouts.send.as_secs()
            ),
            false,
        ),
        SessionError::Timeout { .. } => (
            ErrorCode::Busy,
            format!("{which}the modem did not ask for the PDU{sent_note}"),
            true,
        ),
        SessionError::Io(_) | SessionError::Closed if after => (
            ErrorCode::OutcomeUnknown,
            format!(
                "{which}the modem went away after the PDU was written; it may have been sent{sent_note}"
            ),
            false,
        ),
        SessionError::Io(_) | SessionError::Closed => (
            ErrorCode::GenericFailure,
            format!("{which}the modem went away{sent_note}"),
            true,
        ),
    };
    SendFailure {
        code,
        message,
        temporary: temporary && !partial,
        fatal,
    }
}

#[cfg(test)]
mod tests {
    use smshub_protocol::at::CommandError;

    use super::*;

    #[test]
    fn failures() {
        let t = Timeouts::default();
        let after_timeout = send_failure(
            SendError::AfterPdu(SessionError::Timeout { lines: vec![] }),
            0,
            1,
            1,
            &t,
        );
        assert_eq!(
            (after_timeout.code, after_timeout.temporary),
            (ErrorCode::OutcomeUnknown, false)
        );
        let refused = send_failure(
            SendError::AfterPdu(SessionError::Command(CommandError::Cms(42))),
            0,
            1,
            1,
            &t,
        );
        assert_eq!((refused.code, refused.temporary), (ErrorCode::Busy, true));
        let partial = send_failure(
            SendError::AfterPdu(SessionError::Command(CommandError::Cms(42))),
            1,
            3,
            1,
            &t,
        );
        assert_eq!((partial.code, partial.temporary), (ErrorCode::Busy, false));
        assert!(
            partial.message.contains("part 2 of 3")
                && partial.message.contains("parts 1 to 1 were sent")
        );
        let bad = send_failure(
            SendError::AfterPdu(SessionError::Command(CommandError::Cms(1))),
            0,
            1,
            1,
            &t,
        );
        assert_eq!(
            (bad.code, bad.temporary),
            (ErrorCode::InvalidRecipient, false)
        );
        let gone = send_failure(SendError::BeforePdu(SessionError::Closed), 0, 1, 1, &t);
        assert_eq!(
            (gone.code, gone.temporary, gone.fatal),
            (ErrorCode::GenericFailure, true, true)
        );
    }

    #[test]
    fn transient_errors_may_be_resent_others_not() {
        let refused = |code| SendError::AfterPdu(SessionError::Command(CommandError::Cms(code)));
        for code in [38, 41, 42, 47, 331, 332, 500, 512, 513, 514, 515, 530] {
            assert!(may_resend(&refused(code)), "CMS {code}");
        }
        for code in [1, 8, 21, 96, 304, 330] {
            assert!(!may_resend(&refused(code)), "CMS {code}");
        }
        assert!(may_resend(&SendError::BeforePdu(SessionError::Command(
            CommandError::Cms(331)
        ))));
        assert!(!may_resend(&SendError::AfterPdu(SessionError::Timeout {
            lines: vec![]
        })));
        assert!(!may_resend(&SendError::AfterPdu(SessionError::Closed)));
        let again = send_failure(refused(38), 1, 3, 4, &Timeouts::default());
        assert_eq!((again.code, again.temporary), (ErrorCode::NoService, false));
        assert!(
            again.message.contains("(4 tries); parts 1 to 1 were sent"),
            "{}",
            again.message
        );
    }
}
