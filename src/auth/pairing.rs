//! Pairing codes: one-time codes a phone redeems for its device id and token, so nobody
//! has to type a 43-character token on a phone.
//!
//! A code is 8 characters from an alphabet without look-alikes (no `0 O 1 I L U`), shown as
//! `ABCD-EFGH` (about 39 bits); it is held only as its SHA-256 hash, in this process's
//! memory, until it expires (10 minutes by default). Redeeming hashes what was typed (case,
//! dashes and spaces do not matter) and looks the hash up, so the time taken does not depend
//! on how much of a code was right; the API limits attempts per client address. A redeemed
//! code is remembered until it would have expired, so a second try is told it was used.
//! Must never: keep a code in clear, or let a code be redeemed twice.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::domain::hash_secret;

/// The characters of a code: no 0/O, 1/I/L, nor U (V).
pub const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTVWXYZ23456789";
/// Characters in a code.
pub const CODE_LEN: usize = 8;
/// How long a code lives unless asked otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// The longest life a code may be given.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Most codes waiting at once; past it, `create` refuses (a flood of codes is no use).
const MAX_OPEN: usize = 10_000;

/// A code waiting to be redeemed, or redeemed already.
#[derive(Debug)]
struct Pending {
    name: Option<String>,
    expires: Instant,
    used: bool,
}

/// What redeeming a code came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// A valid code: the device name asked for at creation, if any.
    Valid { name: Option<String> },
    /// The code was redeemed before.
    Used,
    /// No such code, or it expired.
    Invalid,
}

/// The codes of this process.
#[derive(Debug, Default)]
pub struct Pairings {
    codes: Mutex<HashMap<String, Pending>>,
}

/// A new code, shown once.
#[derive(Debug, Clone)]
pub struct NewCode {
    /// As shown: `ABCD-EFGH`.
    pub code: String,
    pub expires_in: Duration,
}

impl Pairings {
    /// A new code for a device to be called `name` (else the phone's choice), living `ttl`.
    /// `None` if too many codes are open.
    pub fn create(&self, name: Option<String>, ttl: Duration) -> Option<NewCode> {
        let ttl = ttl.clamp(Duration::from_secs(1), MAX_TTL);
        let mut rng = rand::rng();
        let raw: String = (0..CODE_LEN)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        let now = Instant::now();
        let mut codes = self.lock();
        codes.retain(|_, it| it.expires > now);
        if codes.len() >= MAX_OPEN {
            return None;
        }
        codes.insert(
            hash_secret(&raw),
            Pending {
                name,
                expires: now + ttl,
                used: false,
            },
        );
        Some(NewCode {
            code: format!("{}-{}", &raw[..CODE_LEN / 2], &raw[CODE_LEN / 2..]),
            expires_in: ttl,
        })
    }

    /// Redeems `typed` once.
    pub fn redeem(&self, typed: &str) -> Redeemed {
        let normal: String = typed
            .chars()
            .filter(|it| !matches!(it, '-' | ' '))
            .map(|it| it.to_ascii_uppercase())
            .collect();
        let hash = hash_secret(&normal);
        let now = Instant::now();
        let mut codes = self.lock();
        match codes.get_mut(&hash) {
            Some(it) if it.expires <= now => Redeemed::Invalid,
            Some(it) if it.used => Redeemed::Used,
            Some(it) => {
                it.used = true;
                Redeemed::Valid {
                    name: it.name.clone(),
                }
            }
            None => Redeemed::Invalid,
        }
    }

    /// Puts a redeemed code back, when the device could not be created after all.
    pub fn unredeem(&self, typed: &str) {
        let normal: String = typed
            .chars()
            .filter(|it| !matches!(it, '-' | ' '))
            .map(|it| it.to_ascii_uppercase())
            .collect();
        if let Some(it) = self.lock().get_mut(&hash_secret(&normal)) {
            it.used = false;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.codes.lock().unwrap_or_else(|it| it.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_redeemed_once_whatever_its_spelling() {
        let pairings = Pairings::default();
        let code = pairings
            .create(Some("hall".into()), DEFAULT_TTL)
            .expect("room");
        assert_eq!(code.code.len(), CODE_LEN + 1);
        assert_eq!(code.code.as_bytes()[4], b'-');
        assert!(
            code.code
                .bytes()
                .filter(|it| *it != b'-')
                .all(|it| ALPHABET.contains(&it))
        );
        let typed = format!(" {} ", code.code.to_lowercase().replace('-', " "));
        assert_eq!(
            pairings.redeem(&typed),
            Redeemed::Valid {
                name: Some("hall".into())
            }
        );
        assert_eq!(pairings.redeem(&code.code), Redeemed::Used);
        assert_eq!(pairings.redeem("AAAA-AAAA"), Redeemed::Invalid);
    }

    #[test]
    fn an_expired_code_is_invalid() {
        let pairings = Pairings::default();
        let code = pairings.create(None, Duration::from_secs(1)).expect("room");
        // Expire it without waiting: move its deadline to now.
        for it in pairings.lock().values_mut() {
            it.expires = Instant::now();
        }
        assert_eq!(pairings.redeem(&code.code), Redeemed::Invalid);
    }
}
