//! Domain types: phone numbers, message states, identifiers and secrets.
//!
//! "Parse, don't validate": a [`PhoneNumber`] is always E.164, a [`MessageState`] transition
//! is checked in one place. Nothing here does I/O or knows about HTTP, WebSocket or SQL.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use sha2::{Digest, Sha256};

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

/// Where an outgoing message is in its life. States only move forward.
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

    /// Whether a message may move from `self` to `next`. A message may go back from
    /// `dispatched` to `queued` only when its device lost the offer (the offer was never
    /// committed, so nothing was sent); every other move is forward.
    pub fn can_move_to(self, next: MessageState) -> bool {
        use MessageState::*;
        matches!(
            (self, next),
            (Queued, Dispatched | Failed | Expired | Cancelled)
                | (Dispatched, Queued | Accepted | Failed | Expired | Cancelled)
                | (Accepted, Sent | Delivered | Failed)
                | (Sent, Delivered | Failed)
        )
    }
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
pub fn generate_device_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A device id in the form the hub issues (see [`is_valid_device_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceId(String);

impl DeviceId {
    /// The id written as `text`, if it has the form of one.
    pub fn parse(text: &str) -> Option<DeviceId> {
        is_valid_device_id(text).then(|| DeviceId(text.to_string()))
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
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 3] = [DeviceKind::Android, DeviceKind::Modem, DeviceKind::Hilink];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Android => "android",
            DeviceKind::Modem => "modem",
            DeviceKind::Hilink => "hilink",
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
        assert!(!Accepted.can_move_to(Queued));
        assert!(!Accepted.can_move_to(Cancelled));
        for state in MessageState::ALL {
            assert_eq!(MessageState::parse(state.as_str()), Some(state));
            assert!(!state.can_move_to(state));
        }
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
}
