//! Domain types: phone numbers, message states, identifiers and secrets.
//!
//! "Parse, don't validate": a [`PhoneNumber`] is always E.164, a [`MessageState`] transition
//! is checked in one place. Nothing here does I/O or knows about HTTP, WebSocket or SQL.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rand::Rng;
use sha2::{Digest, Sha256};
use smshub_protocol::device::ErrorCode;

/// A phone number in E.164 form (`+` and digits), checked against libphonenumber metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

/// Why a phone number was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhoneNumberError {
    #[error("{0:?} is not a phone number")]
    Unparseable(String),
    #[error("{0:?} is not a valid number for its country")]
    Invalid(String),
    #[error(
        "{0:?} has no country code; write it as +<country code><number> or configure a default region"
    )]
    NoRegion(String),
}

impl PhoneNumber {
    /// Parses `input`, reading numbers without a `+` as national numbers of `default_region`
    /// (an ISO 3166 code such as `"DZ"`), if one is configured.
    pub fn parse(
        input: &str,
        default_region: Option<phonenumber::country::Id>,
    ) -> Result<PhoneNumber, PhoneNumberError> {
        let trimmed = input.trim();
        // Most numbers an API client sends are E.164 already; when one is a valid number as
        // written, the full parse (which may strip a trunk prefix or read punctuation)
        // would find the same number.
        if let Some((code, national)) = split_e164(trimmed)
            && is_valid_number(code, national)
        {
            return Ok(PhoneNumber(trimmed.to_string()));
        }
        // What is written around the digits must be punctuation people use in numbers: one
        // leading `+`, spaces, `-`, `.`, `(` and `)`. libphonenumber reads more (a second `+`,
        // an extension's `x`, letters) and would store a number the client did not write.
        let plain = trimmed.strip_prefix('+').unwrap_or(trimmed);
        if !plain
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
        {
            return Err(PhoneNumberError::Unparseable(input.to_string()));
        }
        if !trimmed.starts_with('+') && !trimmed.starts_with("00") && default_region.is_none() {
            return Err(PhoneNumberError::NoRegion(input.to_string()));
        }
        let parsed = phonenumber::parse(default_region, trimmed)
            .map_err(|_| PhoneNumberError::Unparseable(input.to_string()))?;
        let code = parsed.code().value();
        let national = parsed.national().to_string();
        if !is_valid_number(code, &national) {
            return Err(PhoneNumberError::Invalid(input.to_string()));
        }
        // E.164 is `+`, the country code and the national number (with its leading zeros);
        // the crate's formatter would also match the country's format rules, unused here.
        Ok(PhoneNumber(format!("+{code}{national}")))
    }

    /// Parses `input` as [`PhoneNumber::parse`] does; what that refuses is still taken when it
    /// is `+` and 7 to 15 digits not starting with 0 (spaces, `-`, `.`, `(` and `)` between
    /// them dropped), without checking the number plan: the lenient validation that clients
    /// with made-up example numbers (`+1234567890`) need.
    pub fn parse_lenient(
        input: &str,
        default_region: Option<phonenumber::country::Id>,
    ) -> Result<PhoneNumber, PhoneNumberError> {
        let err = match PhoneNumber::parse(input, default_region) {
            Ok(it) => return Ok(it),
            Err(err) => err,
        };
        let Some(rest) = input.trim().strip_prefix('+') else {
            return Err(err);
        };
        if !rest
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
        {
            return Err(err);
        }
        let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
        if !(7..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(err);
        }
        Ok(PhoneNumber(format!("+{digits}")))
    }

    /// Wraps a number already stored in E.164 form.
    pub fn from_e164_unchecked(e164: String) -> PhoneNumber {
        PhoneNumber(e164)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// libphonenumber's `isValidNumber`: the number's region (or non-geographic entity) is
/// known, its national number fits the region's general pattern and the pattern of some
/// number type.
///
/// `phonenumber::is_valid` answers the same, but finds the type in libphonenumber's order
/// (premium rate, toll free, … fixed line, mobile): about ten regex searches for the mobile
/// numbers an SMS hub is given. Validity only needs some type to match, so mobile and fixed
/// line are tried first. (A test checks both agree.)
fn is_valid_number(code: u16, national: &str) -> bool {
    use phonenumber::metadata::DATABASE;
    let Some(regions) = DATABASE.region(&code) else {
        return false;
    };
    // The region whose numbers these are, as libphonenumber picks it: the only one, else the
    // first whose leading digits (or, lacking those, whose patterns) fit.
    let meta = match regions.as_slice() {
        ["001"] => DATABASE.by_code(&code).and_then(|it| it.into_iter().next()),
        [region] => DATABASE.by_id(*region),
        regions => regions
            .iter()
            .filter_map(|region| DATABASE.by_id(*region))
            .find(|meta| match meta.leading_digits() {
                Some(pattern) => pattern.find(national).is_some_and(|it| it.start() == 0),
                None => of_some_type(meta, national),
            }),
    };
    meta.is_some_and(|meta| of_some_type(meta, national))
}

/// `+` and 8 to 15 digits, split into the country code (ITU codes are prefix-free: at most
/// one of the first one, two or three digits is a code) and the national number.
fn split_e164(input: &str) -> Option<(u16, &str)> {
    let digits = input.strip_prefix('+')?;
    if !(8..=15).contains(&digits.len())
        || !digits.bytes().all(|it| it.is_ascii_digit())
        || digits.starts_with('0')
    {
        return None;
    }
    let (code, national) = (1..=3).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        phonenumber::metadata::DATABASE
            .region(&code)
            .map(|_| (code, &digits[len..]))
    })?;
    // libphonenumber strips a national (trunk) prefix written after the country code, as in
    // `+44 (0)20…`, even when the number as written would be valid: such numbers take the
    // full parse.
    let trunk = regions_of(code).any(|meta| {
        meta.national_prefix()
            .is_some_and(|it| !it.is_empty() && national.starts_with(it))
            || meta
                .national_prefix_for_parsing()
                .is_some_and(|it| it.find(national).is_some_and(|it| it.start() == 0))
    });
    (!trunk).then_some((code, national))
}

/// Every region (or non-geographic entity) of a country code.
fn regions_of(code: u16) -> impl Iterator<Item = &'static phonenumber::Metadata> {
    phonenumber::metadata::DATABASE
        .by_code(&code)
        .into_iter()
        .flatten()
}

/// Whether `national` fits `meta`'s general pattern and the pattern of some number type.
fn of_some_type(meta: &phonenumber::Metadata, national: &str) -> bool {
    let types = meta.descriptors();
    if !types.general().is_match(national) {
        return false;
    }
    [
        types.mobile(),
        types.fixed_line(),
        types.premium_rate(),
        types.toll_free(),
        types.shared_cost(),
        types.voip(),
        types.personal_number(),
        types.pager(),
        types.uan(),
        types.voicemail(),
    ]
    .into_iter()
    .flatten()
    .any(|it| it.is_match(national))
}

/// Parses an ISO 3166 region code such as `DZ` for [`PhoneNumber::parse`].
pub fn parse_region(code: &str) -> Result<phonenumber::country::Id, String> {
    phonenumber::country::Id::from_str(&code.to_ascii_uppercase())
        .map_err(|_| format!("unknown region code {code:?}"))
}

/// Where an outgoing message is in its life. States move forward, but for two steps back to
/// `queued` when nothing was sent: [`MessageState::TRANSITIONS`] lists every move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageState {
    /// Stored, waiting for a device.
    Queued,
    /// Offered to a device, which has not accepted it yet.
    Dispatched,
    /// A device owns it and has been told to send it.
    Accepted,
    /// The device handed it to the network.
    Sent,
    /// The network confirmed delivery.
    Delivered,
    /// It ended without success.
    Failed,
    /// Its validity ran out before it was sent.
    Expired,
    /// A client cancelled it before a device accepted it.
    Cancelled,
}

impl MessageState {
    /// Every state, in the order of a message's life.
    pub const ALL: [MessageState; 8] = [
        MessageState::Queued,
        MessageState::Dispatched,
        MessageState::Accepted,
        MessageState::Sent,
        MessageState::Delivered,
        MessageState::Failed,
        MessageState::Expired,
        MessageState::Cancelled,
    ];

    /// The name stored in the database and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Dispatched => "dispatched",
            MessageState::Accepted => "accepted",
            MessageState::Sent => "sent",
            MessageState::Delivered => "delivered",
            MessageState::Failed => "failed",
            MessageState::Expired => "expired",
            MessageState::Cancelled => "cancelled",
        }
    }

    /// The state named `text` (as [`MessageState::as_str`] writes it).
    pub fn parse(text: &str) -> Option<MessageState> {
        MessageState::ALL.into_iter().find(|it| it.as_str() == text)
    }

    /// Whether nothing more will happen to a message in this state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageState::Delivered
                | MessageState::Failed
                | MessageState::Expired
                | MessageState::Cancelled
        )
    }

    /// Whether some [`Transition`] moves a message from `self` to `next` (read from
    /// [`MessageState::TRANSITIONS`]).
    pub fn can_move_to(self, next: MessageState) -> bool {
        MessageState::TRANSITIONS.iter().any(|rule| {
            rule.to == next
                && (rule.from.contains(&self)
                    || (self == MessageState::Failed && rule.resolves.is_some()))
        })
    }

    /// Every move a message can make, one row per [`Transition`] in its declaration order:
    /// the states it starts from, the state it leads to, and what asking for it means when
    /// the message is in none of those states. The store's writer builds its conditional
    /// updates (`... WHERE state IN (...)`) and its outcomes from these rows; nothing else
    /// decides where a message may go.
    ///
    /// States move forward, except two steps back to `queued`, both taken only when nothing
    /// was sent: an offer lost before its device accepted it ([`Transition::Requeue`]), and
    /// a temporary failure with a retry due ([`Transition::Retry`]); and one step back from
    /// `failed outcome_unknown` to `sent` or `delivered` when the device that held the
    /// message reports it late ([`Rule::resolves`]).
    pub const TRANSITIONS: [Rule; 11] = {
        use MessageState::*;
        use Otherwise::*;
        [
            Rule {
                transition: Transition::Dispatch,
                from: &[Queued],
                to: Dispatched,
                otherwise: Refused,
                resolves: None,
            },
            Rule {
                transition: Transition::Requeue,
                from: &[Dispatched],
                to: Queued,
                otherwise: Unchanged,
                resolves: None,
            },
            Rule {
                transition: Transition::Accept,
                from: &[Dispatched],
                to: Accepted,
                otherwise: UnchangedIfHeldIn(&[Accepted, Sent, Delivered, Failed]),
                resolves: None,
            },
            Rule {
                transition: Transition::Sent,
                from: &[Accepted],
                to: Sent,
                otherwise: UnchangedIfHeldIn(&[Sent, Delivered, Failed]),
                resolves: Some(ErrorCode::OutcomeUnknown),
            },
            Rule {
                transition: Transition::Delivered,
                from: &[Accepted, Sent],
                to: Delivered,
                otherwise: UnchangedIfHeldIn(&[Delivered, Failed]),
                resolves: Some(ErrorCode::OutcomeUnknown),
            },
            Rule {
                transition: Transition::Retry,
                from: &[Dispatched, Accepted],
                to: Queued,
                otherwise: Instead(Transition::Failed),
                resolves: None,
            },
            Rule {
                transition: Transition::Failed,
                from: &[Dispatched, Accepted, Sent],
                to: Failed,
                otherwise: UnchangedIfHeldIn(&[Delivered, Failed]),
                resolves: None,
            },
            Rule {
                transition: Transition::FailedByHub,
                from: &[Queued, Dispatched, Accepted, Sent],
                to: Failed,
                otherwise: Unchanged,
                resolves: None,
            },
            Rule {
                transition: Transition::OutcomeUnknown,
                from: &[Accepted],
                to: Failed,
                otherwise: Unchanged,
                resolves: None,
            },
            Rule {
                transition: Transition::Expire,
                from: &[Queued, Dispatched],
                to: Expired,
                otherwise: Unchanged,
                resolves: None,
            },
            Rule {
                transition: Transition::Cancel,
                from: &[Queued, Dispatched],
                to: Cancelled,
                otherwise: Refused,
                resolves: None,
            },
        ]
    };
}

// `Transition::rule` finds a row by its transition's position.
const _: () = {
    let mut at = 0;
    while at < MessageState::TRANSITIONS.len() {
        assert!(MessageState::TRANSITIONS[at].transition as usize == at);
        at += 1;
    }
};

/// A change to a message's state, as the store is asked to make it. Those a device reports
/// are made only for the device that holds the message (its `device_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// The dispatcher offers a queued message to a device.
    Dispatch,
    /// The offer was lost before the device accepted it (nothing was sent).
    Requeue,
    /// The device took the offer and will send it.
    Accept,
    /// The device handed the message to the network.
    Sent,
    /// The network confirmed delivery (a report may overtake the report of sending).
    Delivered,
    /// The device failed temporarily (nothing was sent) and attempts remain: back to the queue.
    Retry,
    /// The device reports a failure.
    Failed,
    /// The hub itself fails the message, whoever holds it.
    FailedByHub,
    /// The device never reported after accepting: the SMS may have gone out, never resend.
    OutcomeUnknown,
    /// Its validity ran out before a device accepted it.
    Expire,
    /// A client cancelled it before a device accepted it.
    Cancel,
}

impl Transition {
    /// Every transition, in declaration order.
    pub const ALL: [Transition; 11] = {
        let mut all = [Transition::Dispatch; 11];
        let mut at = 0;
        while at < all.len() {
            all[at] = MessageState::TRANSITIONS[at].transition;
            at += 1;
        }
        all
    };

    /// This transition's row of [`MessageState::TRANSITIONS`].
    pub const fn rule(self) -> Rule {
        MessageState::TRANSITIONS[self as usize]
    }
}

/// One row of [`MessageState::TRANSITIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The change this row is about.
    pub transition: Transition,
    /// The states it moves a message from.
    pub from: &'static [MessageState],
    /// The state it moves the message to.
    pub to: MessageState,
    /// What asking for it means when the message is in none of `from` (or, for a device's
    /// report, is held by another device).
    pub otherwise: Otherwise,
    /// Also moves the message from `failed` with this error code, when the device that held
    /// it asks: the one step back from a final state. `failed outcome_unknown` means "we do
    /// not know" (the hub's outcome timeout, or a device that lost its journal), so a later
    /// authoritative `sent` or `delivered` from that device resolves it; the history keeps
    /// the failure and the resolution.
    pub resolves: Option<ErrorCode>,
}

/// What a transition that cannot be made from the message's state amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Otherwise {
    /// Refused: the caller asked for something the message's state does not permit.
    Refused,
    /// Nothing happens, and that is no error: the change was overtaken.
    Unchanged,
    /// Nothing happens if the asking device holds the message in one of these states (its
    /// report repeats one already stored, or was overtaken); refused otherwise.
    UnchangedIfHeldIn(&'static [MessageState]),
    /// This other transition is tried instead.
    Instead(Transition),
}

impl fmt::Display for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new random secret such as an API key or device token: `prefix` + 43 base62 characters
/// (256 bits of entropy), so a fast hash is enough to store it.
pub fn generate_secret(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let body: String = (0..43)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{body}")
}

/// A new device id: 16 lowercase base32 characters (80 bits).
pub fn generate_device_id() -> DeviceId {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let id: String = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    DeviceId::stored(id)
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Why a message failed: a code of device protocol v1, a code of the hub's own, or a code a
/// device sent that the hub does not know (stored as given, so nothing a device says is lost).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureCode {
    /// A code of the protocol's list.
    Known(ErrorCode),
    /// The device gave an accepted job back unsent.
    NotSent,
    /// The device the message was pinned to was removed.
    DeviceRemoved,
    /// Any other code, as the device gave it.
    Other(String),
}

impl FailureCode {
    /// The code as written (on the wire, in the database, in the API).
    pub fn parse(code: &str) -> FailureCode {
        match code {
            "not_sent" => FailureCode::NotSent,
            "device_removed" => FailureCode::DeviceRemoved,
            _ => ErrorCode::parse(code)
                .map_or_else(|| FailureCode::Other(code.to_string()), FailureCode::Known),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            FailureCode::Known(code) => code.as_str(),
            FailureCode::NotSent => "not_sent",
            FailureCode::DeviceRemoved => "device_removed",
            FailureCode::Other(code) => code,
        }
    }

    /// Whether the failure says something about the message rather than the device (a bad
    /// recipient, an expired message, a network that did not deliver): such failures do not
    /// count towards resting the device.
    pub fn is_the_message(&self) -> bool {
        matches!(
            self,
            FailureCode::Known(
                ErrorCode::InvalidRecipient | ErrorCode::Expired | ErrorCode::DeliveryFailed
            )
        )
    }
}

impl From<&str> for FailureCode {
    fn from(code: &str) -> FailureCode {
        FailureCode::parse(code)
    }
}

impl From<ErrorCode> for FailureCode {
    fn from(code: ErrorCode) -> FailureCode {
        FailureCode::Known(code)
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device id in the form the hub issues (see [`is_valid_device_id`]). Cheap to clone: the
/// dispatcher and the registry key their maps by it and hand it to every message they route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(Arc<str>);

impl DeviceId {
    /// The id written as `text`, if it has the form of one.
    pub fn parse(text: &str) -> Option<DeviceId> {
        is_valid_device_id(text).then(|| DeviceId(Arc::from(text)))
    }

    /// An id read back from the database, which only ever holds ids that were parsed on the
    /// way in (the column is the key of `devices`).
    pub fn stored(text: impl Into<Arc<str>>) -> DeviceId {
        DeviceId(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Read as the text it is (it can only be made by parsing, so reading it loses nothing).
impl std::ops::Deref for DeviceId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// Maps keyed by `DeviceId` can be searched with a `&str`.
impl std::borrow::Borrow<str> for DeviceId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for DeviceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for DeviceId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for DeviceId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

/// Unit tests name devices with literals.
#[cfg(test)]
impl From<&str> for DeviceId {
    fn from(text: &str) -> DeviceId {
        DeviceId::parse(text).expect("a valid device id")
    }
}

impl From<DeviceId> for String {
    fn from(id: DeviceId) -> String {
        id.0.to_string()
    }
}

impl serde::Serialize for DeviceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Whether a device id is acceptable in a URL path and a database key.
pub fn is_valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Milliseconds since the Unix epoch, the unit of every stored instant.
pub type Millis = i64;

/// What kind of worker a device is. Stored by name (`as_str`) in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// A phone (or any worker) speaking device protocol v1 over WebSocket.
    Android,
    /// A serial GSM modem driven by the hub with AT commands.
    Modem,
    /// A Huawei HiLink stick driven by the hub over its HTTP API.
    Hilink,
    /// A phone running capcom6's SMS Gateway for Android app, on its mobile API.
    GatewayApp,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 4] = [
        DeviceKind::Android,
        DeviceKind::Modem,
        DeviceKind::Hilink,
        DeviceKind::GatewayApp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Android => "android",
            DeviceKind::Modem => "modem",
            DeviceKind::Hilink => "hilink",
            DeviceKind::GatewayApp => "sms-gateway-app",
        }
    }

    /// The kind stored as `name`; `None` for a name this hub does not know.
    pub fn parse(name: &str) -> Option<DeviceKind> {
        DeviceKind::ALL.into_iter().find(|it| it.as_str() == name)
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats stored milliseconds as RFC 3339 UTC with millisecond precision.
pub fn format_millis(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|it| it.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Parses an RFC 3339 instant into milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|it| it.timestamp_millis())
}

/// The wait before retrying after the `attempts`-th offer failed temporarily:
/// `base × 2^(attempts−1)`, at most `cap`.
pub fn retry_delay(attempts: u32, base: Millis, cap: Millis) -> Millis {
    let exponent = attempts.saturating_sub(1).min(20);
    base.saturating_mul(1i64 << exponent).min(cap)
}

/// The wall clock in milliseconds.
pub fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_normalise_to_e164() {
        let dz = parse_region("dz").ok();
        let check = |input: &str, region, expected: Result<&str, ()>| {
            let got = PhoneNumber::parse(input, region);
            assert_eq!(
                got.as_ref().map(|it| it.as_str()).map_err(|_| ()),
                expected,
                "{input}: {got:?}"
            );
        };
        check("+44 20 7946 0018", None, Ok("+442079460018"));
        check("+1 (415) 555-2671", None, Ok("+14155552671"));
        check("0555 12 34 56", dz, Ok("+213555123456"));
        check("0555123456", None, Err(()));
        check("+1 123", None, Err(()));
        check("hello", dz, Err(()));
        check("", dz, Err(()));
        check("+39 02 3661 8300", None, Ok("+390236618300"));
        check("+800 1234 5678", None, Ok("+80012345678"));
        // Valid as written, but libphonenumber reads the 0 after +81 as Japan's trunk prefix.
        check("+810078000000", None, Err(()));
        check("+44 (0)20 7946 0018", None, Ok("+442079460018"));
        // Lenient readings libphonenumber allows, refused: a doubled `+`, an extension.
        check("++14155552671", None, Err(()));
        check("+1-415-555-2671x", None, Err(()));
        check("+1 415 555 2671 ext. 5", None, Err(()));
        check("+1.415.555.2671", None, Ok("+14155552671"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5000))]

        /// The fast paths (E.164 as written, validity, formatting) agree with the crate's own
        /// parse, validity check and formatter.
        #[test]
        fn fast_validity_agrees_with_libphonenumber(
            code in proptest::sample::select(vec![
                "1", "7", "20", "33", "34", "39", "44", "49", "55", "61", "81", "86", "91",
                "212", "213", "216", "234", "254", "351", "380", "800", "882", "971", "979",
            ]),
            national in "0{0,2}[1-9][0-9]{3,12}",
        ) {
            let input = format!("+{code}{national}");
            let crate_says = phonenumber::parse(None, &input).ok().filter(phonenumber::is_valid).map(
                |it| it.format().mode(phonenumber::Mode::E164).to_string(),
            );
            let ours = PhoneNumber::parse(&input, None).ok().map(|it| it.0);
            proptest::prop_assert_eq!(ours, crate_says, "{}", input);
        }
    }

    #[test]
    fn states_only_move_forward() {
        use MessageState::*;
        assert!(Queued.can_move_to(Dispatched));
        assert!(Dispatched.can_move_to(Queued));
        assert!(Accepted.can_move_to(Sent));
        assert!(Sent.can_move_to(Delivered));
        assert!(!Sent.can_move_to(Accepted));
        assert!(!Delivered.can_move_to(Failed));
        // Only a temporary failure with a retry due takes an accepted message back to the
        // queue (the device promises nothing was sent); a lost offer never does.
        assert!(Accepted.can_move_to(Queued));
        assert!(!Transition::Requeue.rule().from.contains(&Accepted));
        assert!(!Accepted.can_move_to(Cancelled));
        for state in MessageState::ALL {
            assert_eq!(MessageState::parse(state.as_str()), Some(state));
            assert!(!state.can_move_to(state));
        }
    }

    /// The transition table against the lifecycle the README documents ("Message states"):
    /// `queued → dispatched → accepted → sent → delivered`, or `failed`, `expired` or
    /// `cancelled`; states move forward, except two steps back to `queued`, both only when
    /// nothing was sent.
    #[test]
    fn the_transition_table_is_the_documented_lifecycle() {
        use MessageState::*;
        for (at, transition) in Transition::ALL.into_iter().enumerate() {
            assert_eq!(transition.rule().transition, transition);
            assert_eq!(MessageState::TRANSITIONS[at].transition, transition);
        }
        let moves: std::collections::BTreeSet<(MessageState, MessageState)> =
            MessageState::TRANSITIONS
                .iter()
                .flat_map(|rule| {
                    let resolved = rule.resolves.map(|_| (Failed, rule.to));
                    rule.from
                        .iter()
                        .map(|from| (*from, rule.to))
                        .chain(resolved)
                })
                .collect();
        let documented: std::collections::BTreeSet<(MessageState, MessageState)> = [
            // The way forward; a delivery report may overtake the report of sending.
            (Queued, Dispatched),
            (Dispatched, Accepted),
            (Accepted, Sent),
            (Sent, Delivered),
            (Accepted, Delivered),
            // Failure, from wherever the message is before its end.
            (Queued, Failed),
            (Dispatched, Failed),
            (Accepted, Failed),
            (Sent, Failed),
            // Expiry and cancellation, before a device accepted it.
            (Queued, Expired),
            (Dispatched, Expired),
            (Queued, Cancelled),
            (Dispatched, Cancelled),
            // The two steps back: a lost offer; a temporary failure with a retry due.
            (Dispatched, Queued),
            (Accepted, Queued),
            // The one step back from an end: a late report resolves `outcome_unknown`.
            (Failed, Sent),
            (Failed, Delivered),
        ]
        .into_iter()
        .collect();
        assert_eq!(moves, documented);
        for from in MessageState::ALL {
            for to in MessageState::ALL {
                assert_eq!(from.can_move_to(to), documented.contains(&(from, to)));
            }
        }

        // Nothing leaves a final state, and only the two steps back lead away from the end.
        let rank = |state: MessageState| match state {
            Queued => 0,
            Dispatched => 1,
            Accepted => 2,
            Sent => 3,
            Delivered | Failed | Expired | Cancelled => 4,
        };
        for rule in MessageState::TRANSITIONS {
            for from in rule.from {
                assert!(!from.is_final(), "{rule:?}");
                if rank(rule.to) <= rank(*from) {
                    assert_eq!(rule.to, Queued, "{rule:?} moves backwards");
                    assert!(
                        matches!(rule.transition, Transition::Requeue | Transition::Retry),
                        "{rule:?}"
                    );
                }
            }
        }
        // Only `outcome_unknown` is resolved, and only towards success.
        for rule in MessageState::TRANSITIONS {
            if let Some(code) = rule.resolves {
                assert_eq!(code, ErrorCode::OutcomeUnknown, "{rule:?}");
                assert!(matches!(rule.to, Sent | Delivered), "{rule:?}");
            }
        }
        // The steps back start where nothing has been sent yet.
        assert_eq!(Transition::Requeue.rule().from, [Dispatched]);
        assert_eq!(Transition::Retry.rule().from, [Dispatched, Accepted]);

        // A report that cannot be made is a repeat (or was overtaken) only where the message
        // already is at, or past, where the report leads.
        for rule in MessageState::TRANSITIONS {
            match rule.otherwise {
                Otherwise::UnchangedIfHeldIn(states) => {
                    for state in states {
                        assert!(rank(*state) >= rank(rule.to), "{rule:?}");
                        assert!(!rule.from.contains(state), "{rule:?}");
                    }
                }
                Otherwise::Instead(other) => {
                    assert_eq!(rule.transition, Transition::Retry);
                    assert_eq!(other, Transition::Failed);
                }
                Otherwise::Refused | Otherwise::Unchanged => {}
            }
        }
        // Cancelling is refused once a device accepted the message; a client is told so.
        assert_eq!(Transition::Cancel.rule().otherwise, Otherwise::Refused);
    }

    #[test]
    fn secrets_are_long_and_hash_stably() {
        let key = generate_secret("shk_");
        assert_eq!(key.len(), 47);
        assert_ne!(key, generate_secret("shk_"));
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_valid_device_id(&generate_device_id()));
        assert!(!is_valid_device_id("a/b"));
    }

    #[test]
    fn failure_codes_read_back_as_written() {
        let mut written: Vec<&str> = ErrorCode::ALL.iter().map(|it| it.as_str()).collect();
        written.extend(["not_sent", "device_removed", "a_code_of_some_app", ""]);
        for code in written {
            assert_eq!(FailureCode::parse(code).as_str(), code);
        }
        assert_eq!(
            FailureCode::parse("busy"),
            FailureCode::Known(ErrorCode::Busy)
        );
        assert_eq!(FailureCode::parse("x"), FailureCode::Other("x".into()));
        assert!(FailureCode::parse("invalid_recipient").is_the_message());
        assert!(!FailureCode::parse("generic_failure").is_the_message());
        assert!(!FailureCode::parse("x").is_the_message());
    }
}
