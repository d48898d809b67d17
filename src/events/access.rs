//! Which events a consumer gets: what its principal may see ([`visible`]) and what it asked
//! for ([`Filter`]: types, with `message.*` matching every message event; a device; a message).
//!
//! Pure: no I/O. Must never: let an event through that the principal may not see, whatever
//! the filter says.

use uuid::Uuid;

use crate::auth::{Principal, Scope};
use crate::store::{Event, EventType};

/// Whether `principal` may see `event`: message events need `messages:read` and the message
/// to be its own (or `messages:read_all`); `sms.received` needs `inbox:read`; device and
/// modem events `devices:read`; key events `keys:admin`; a webhook's events are its owner's.
pub fn visible(principal: &Principal, event: &Event) -> bool {
    let scopes = principal.scopes;
    let family = event.kind.split('.').next().unwrap_or("");
    match family {
        "message" => scopes.contains(Scope::MessagesRead) && principal.may_see(event.owner),
        "sms" => scopes.contains(Scope::InboxRead),
        "device" | "modem" => scopes.contains(Scope::DevicesRead),
        "key" => scopes.contains(Scope::KeysAdmin),
        "webhook" => {
            scopes.contains(Scope::WebhooksWrite)
                && (event.owner == Some(principal.owner) || scopes.contains(Scope::Admin))
        }
        _ => false,
    }
}

/// What a consumer asked for; empty parts match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Exact type names, or prefixes written `message.*`.
    pub types: Vec<String>,
    pub device_id: Option<String>,
    pub message_id: Option<Uuid>,
}

impl Filter {
    /// Parses `types=message.*,sms.received` (comma-separated); an unknown type or family
    /// is an error naming it.
    pub fn parse_types(text: &str) -> Result<Vec<String>, String> {
        let mut types = Vec::new();
        for part in text.split(',').map(str::trim).filter(|it| !it.is_empty()) {
            let known = match part.strip_suffix('*') {
                Some("") => true,
                Some(prefix) => EventType::ALL
                    .iter()
                    .any(|it| it.as_str().starts_with(prefix)),
                None => EventType::parse(part).is_some(),
            };
            if !known {
                return Err(format!("unknown event type {part:?}"));
            }
            types.push(part.to_string());
        }
        Ok(types)
    }

    /// Whether `event` is one asked for.
    pub fn matches(&self, event: &Event) -> bool {
        let typed = self.types.is_empty()
            || self.types.iter().any(|it| match it.strip_suffix('*') {
                Some(prefix) => event.kind.starts_with(prefix),
                None => *it == event.kind,
            });
        typed
            && self
                .device_id
                .as_ref()
                .is_none_or(|it| event.device_id.as_ref() == Some(it))
            && self
                .message_id
                .is_none_or(|it| event.message_id == Some(it))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scopes;

    fn event(kind: &str, owner: Option<Uuid>) -> Event {
        Event {
            id: 1,
            kind: kind.into(),
            at: 0,
            message_id: None,
            device_id: Some("d1".into()),
            owner,
            payload: None,
        }
    }

    #[test]
    fn a_principal_sees_its_own_messages_and_what_its_scopes_allow() {
        let me = Uuid::now_v7();
        let other = Uuid::now_v7();
        let reader = Principal::new(
            me,
            "k".into(),
            Scopes::NONE.with(Scope::MessagesRead),
            crate::auth::Via::ApiKey,
        );
        let all = Principal::new(me, "k".into(), Scopes::ALL, crate::auth::Via::ApiKey);
        let cases = [
            (&reader, event("message.sent", Some(me)), true),
            (&reader, event("message.sent", Some(other)), false),
            (&reader, event("message.sent", None), false),
            (&reader, event("sms.received", None), false),
            (&reader, event("device.online", None), false),
            (&reader, event("key.created", Some(me)), false),
            (&all, event("message.sent", Some(other)), true),
            (&all, event("sms.received", None), true),
            (&all, event("device.offline", None), true),
            (&all, event("something.else", None), false),
        ];
        for (principal, event, expected) in cases {
            assert_eq!(visible(principal, &event), expected, "{}", event.kind);
        }
    }

    #[test]
    fn types_match_exactly_or_by_prefix() {
        let filter = Filter {
            types: Filter::parse_types("message.*, sms.received").unwrap(),
            ..Filter::default()
        };
        assert!(filter.matches(&event("message.delivered", None)));
        assert!(filter.matches(&event("sms.received", None)));
        assert!(!filter.matches(&event("device.online", None)));
        assert!(Filter::default().matches(&event("device.online", None)));
        assert!(Filter::parse_types("message.nope").is_err());
        assert!(Filter::parse_types("nope.*").is_err());
        assert_eq!(Filter::parse_types("*").unwrap(), vec!["*".to_string()]);
    }
}
