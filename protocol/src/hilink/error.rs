//! What a HiLink `<error><code>N</code><message/></error>` means, from one table.
//!
//! The codes and their names come from the sticks' own web UI as carried by public clients
//! (Salamek/huawei-lte-api `enums/client.py` and `enums/user.py`, the `apiErrorCodes` table of
//! the huawei-router-api JavaScript client, HiPi::Huawei::Errors). The message element is
//! almost always empty, so the code is all there is to go on.

use std::fmt;

/// An error answer from a stick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u32,
    /// The stick's own message; usually empty.
    pub message: String,
}

/// What an error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The session or the verification token is stale (125001, 125002, 125003): fetch a new
    /// session and try once more.
    Session,
    /// The call needs a login first (100003).
    LoginRequired,
    /// The username or password was refused (108001, 108002, 108006), or the stick locked
    /// logins after too many failures (108007). Retrying would lock the account.
    LoginRefused,
    /// The stick or its SMS layer is busy (100004, 113004, 113018, 120001): try again shortly.
    Busy,
    /// A USSD request is still waiting for the network's answer (111019).
    UssdPending,
    /// The network did not answer a USSD request in time (111020), or does not offer USSD
    /// (111022).
    UssdFailed,
    /// The stick's message storage is full (113053; 113055 is treated alike).
    StorageFull,
    /// The request was malformed for this stick: bad format or parameter (100005, 100006).
    InvalidRequest,
    /// The firmware does not offer this call (100002).
    NotSupported,
    /// Anything else (100001 "unknown" included).
    Other,
}

impl ErrorClass {
    /// Whether trying again later may succeed with no change on the hub's side.
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            ErrorClass::Session | ErrorClass::Busy | ErrorClass::UssdPending
        )
    }
}

impl ApiError {
    /// The class of the code.
    pub fn class(&self) -> ErrorClass {
        match self.code {
            125001..=125003 => ErrorClass::Session,
            100003 => ErrorClass::LoginRequired,
            108001 | 108002 | 108006 | 108007 => ErrorClass::LoginRefused,
            100004 | 113004 | 113018 | 120001 => ErrorClass::Busy,
            111019 => ErrorClass::UssdPending,
            111020 | 111022 => ErrorClass::UssdFailed,
            113053 | 113055 => ErrorClass::StorageFull,
            100005 | 100006 => ErrorClass::InvalidRequest,
            100002 => ErrorClass::NotSupported,
            _ => ErrorClass::Other,
        }
    }

    /// A short description of a known code.
    pub fn description(&self) -> Option<&'static str> {
        Some(match self.code {
            100001 => "unknown error",
            100002 => "not supported by this firmware",
            100003 => "login required",
            100004 => "system busy",
            100005 => "request format error",
            100006 => "invalid parameter",
            108001 => "wrong username",
            108002 => "wrong password",
            108003 => "already logged in",
            108006 => "wrong username or password",
            108007 => "too many login attempts",
            111019 => "USSD request still processing",
            111020 => "USSD timed out",
            111022 => "the network does not support USSD",
            113004 | 113018 => "SMS system busy",
            113053 | 113055 => "SMS storage full",
            120001 => "voice call busy",
            125001 => "wrong token",
            125002 => "wrong session",
            125003 => "wrong session token",
            _ => return None,
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {}", self.code)?;
        match (self.description(), self.message.trim()) {
            (Some(known), "") => write!(f, " ({known})"),
            (Some(known), message) => write!(f, " ({known}: {message})"),
            (None, "") => Ok(()),
            (None, message) => write!(f, " ({message})"),
        }
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: u32, class: ErrorClass, temporary: bool) {
        let error = ApiError {
            code,
            message: String::new(),
        };
        assert_eq!(error.class(), class, "{code}");
        assert_eq!(error.class().is_temporary(), temporary, "{code}");
    }

    #[test]
    fn classes() {
        check(125002, ErrorClass::Session, true);
        check(125003, ErrorClass::Session, true);
        check(113018, ErrorClass::Busy, true);
        check(113004, ErrorClass::Busy, true);
        check(100004, ErrorClass::Busy, true);
        check(111019, ErrorClass::UssdPending, true);
        check(111020, ErrorClass::UssdFailed, false);
        check(100002, ErrorClass::NotSupported, false);
        check(100003, ErrorClass::LoginRequired, false);
        check(108006, ErrorClass::LoginRefused, false);
        check(113053, ErrorClass::StorageFull, false);
        check(113055, ErrorClass::StorageFull, false);
        check(100006, ErrorClass::InvalidRequest, false);
        check(999999, ErrorClass::Other, false);
    }

    #[test]
    fn display() {
        let shown = |code: u32, message: &str| {
            ApiError {
                code,
                message: message.into(),
            }
            .to_string()
        };
        assert_eq!(shown(113018, ""), "error 113018 (SMS system busy)");
        assert_eq!(shown(42, ""), "error 42");
        assert_eq!(shown(42, "odd"), "error 42 (odd)");
    }
}
