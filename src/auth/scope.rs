//! What a credential may do: the scopes every route declares.
//!
//! The set is small on purpose. `admin` implies every other scope. `messages:read` sees the
//! messages its own key sent; `messages:read_all` sees everyone's.
//! Cancelling is `messages:send` on a message the credential may read.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One permission. Its text form (`messages:send`) is what keys, tokens, the OpenAPI
/// document and `403 forbidden` errors show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Submit messages (`POST /api/send-sms`) and cancel those it may read.
    MessagesSend,
    /// Read the messages this credential sent.
    MessagesRead,
    /// Read every message, whoever sent it.
    MessagesReadAll,
    /// Read received SMS.
    InboxRead,
    /// List devices, modems and SIM cards, read statistics.
    DevicesRead,
    /// Register, delete, limit, rest and pair devices; manage SIM cards.
    DevicesWrite,
    /// Drive modems: connect, USSD, balance, recharge, stored messages.
    ModemsWrite,
    /// Create, list, rotate and revoke API keys.
    KeysAdmin,
    /// Create and delete webhooks, replay deliveries.
    WebhooksWrite,
    /// Everything above, and users, the audit log and settings.
    Admin,
}

impl Scope {
    /// Every scope, in the order they are documented.
    pub const ALL: [Scope; 10] = [
        Scope::MessagesSend,
        Scope::MessagesRead,
        Scope::MessagesReadAll,
        Scope::InboxRead,
        Scope::DevicesRead,
        Scope::DevicesWrite,
        Scope::ModemsWrite,
        Scope::KeysAdmin,
        Scope::WebhooksWrite,
        Scope::Admin,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::MessagesSend => "messages:send",
            Scope::MessagesRead => "messages:read",
            Scope::MessagesReadAll => "messages:read_all",
            Scope::InboxRead => "inbox:read",
            Scope::DevicesRead => "devices:read",
            Scope::DevicesWrite => "devices:write",
            Scope::ModemsWrite => "modems:write",
            Scope::KeysAdmin => "keys:admin",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::Admin => "admin",
        }
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|it| it.as_str() == text.trim())
            .ok_or_else(|| {
                let known: Vec<&str> = Scope::ALL.iter().map(|it| it.as_str()).collect();
                format!("unknown scope `{text}` (known: {})", known.join(", "))
            })
    }
}

/// A set of scopes, held as bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes(u16);

impl Scopes {
    /// Every scope: what a key made before scopes existed has.
    pub const ALL: Scopes = Scopes(Scope::Admin.bit());
    pub const NONE: Scopes = Scopes(0);

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & Scope::Admin.bit() != 0 || self.0 & scope.bit() != 0
    }

    /// Whether the holder may read every message, not only its own.
    pub fn reads_all_messages(self) -> bool {
        self.contains(Scope::MessagesReadAll)
    }

    pub fn with(self, scope: Scope) -> Scopes {
        Scopes(self.0 | scope.bit())
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |it| self.0 & it.bit() != 0)
    }

    /// The set written as `a b c` (space-separated, as in OAuth's `scope`), or comma-separated.
    pub fn parse(text: &str) -> Result<Scopes, String> {
        text.split([' ', ','])
            .filter(|it| !it.trim().is_empty())
            .try_fold(Scopes::NONE, |set, it| Ok(set.with(it.parse()?)))
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Scopes {
        iter.into_iter().fold(Scopes::NONE, Scopes::with)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Scope::as_str))
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Scopes, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        names
            .iter()
            .map(|it| it.parse::<Scope>())
            .collect::<Result<Scopes, _>>()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_every_scope() {
        let admin = Scopes::NONE.with(Scope::Admin);
        assert!(Scope::ALL.iter().all(|it| admin.contains(*it)));
        let send = Scopes::NONE.with(Scope::MessagesSend);
        assert!(send.contains(Scope::MessagesSend));
        assert!(!send.contains(Scope::MessagesRead));
        assert!(!send.reads_all_messages());
    }

    #[test]
    fn scopes_round_trip_through_text() {
        let set = Scopes::parse("messages:send, inbox:read").unwrap();
        assert_eq!(set.to_string(), "messages:send inbox:read");
        assert_eq!(Scopes::parse(&set.to_string()).unwrap(), set);
        assert!(
            Scopes::parse("messages:write")
                .unwrap_err()
                .contains("unknown scope")
        );
    }
}
