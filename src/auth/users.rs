//! People: roles and the scopes they give, password hashes (argon2id), and the lockout that
//! slows down guessing.
//!
//! Must never: store or log a password.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use uuid::Uuid;

use super::{Scope, Scopes};
use crate::store::{AccessChange, Change, Outcome, Store, StoreError};

/// What a person may do, as a fixed set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything (`admin`).
    Admin,
    /// Runs the fleet: sends, reads every message and the inbox, manages devices, modems and
    /// webhooks; no keys, users or audit log.
    Operator,
    /// Looks: every message, the inbox, devices and statistics.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|it| it.as_str() == text.trim())
            .ok_or_else(|| format!("unknown role {text:?} (admin, operator or viewer)"))
    }

    pub fn scopes(self) -> Scopes {
        use Scope::*;
        match self {
            Role::Admin => Scopes::ALL,
            Role::Operator => [
                MessagesSend,
                MessagesRead,
                MessagesReadAll,
                InboxRead,
                DevicesRead,
                DevicesWrite,
                ModemsWrite,
                WebhooksWrite,
            ]
            .into_iter()
            .collect(),
            Role::Viewer => [MessagesRead, MessagesReadAll, InboxRead, DevicesRead]
                .into_iter()
                .collect(),
        }
    }
}

/// The argon2id hash (PHC string) of `password`.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|it| it.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|it| it.to_string())
        .map_err(|it| it.to_string())
}

/// Whether `password` matches the stored `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A password people can type and nobody guesses: 20 random letters and digits.
pub fn generate_password() -> String {
    crate::domain::generate_secret("")
        .chars()
        .filter(|it| it.is_ascii_alphanumeric())
        .take(20)
        .collect()
}

/// The first admin, made at the first start of a hub that has no user.
#[derive(Debug, Clone)]
pub struct FirstAdmin {
    pub username: String,
    /// The password, when the hub generated it (print it once); `None` when it was given.
    pub generated_password: Option<String>,
}

/// Adds a user; `Ok(false)` if the name is taken.
pub async fn add_user(
    store: &Store,
    username: &str,
    password: &str,
    role: Role,
) -> Result<bool, UserError> {
    let username = check_username(username)?;
    check_password(password)?;
    let change = AccessChange::AddUser {
        id: Uuid::new_v4(),
        username: username.to_string(),
        password_hash: hash_password(password).map_err(UserError::Invalid)?,
        role: role.as_str().to_string(),
    };
    Ok(store.apply(Change::Access(change)).await? == Outcome::Applied)
}

/// Sets a user's password (and ends its sessions); `Ok(false)` if there is no such user.
pub async fn set_password(
    store: &Store,
    username: &str,
    password: &str,
) -> Result<bool, UserError> {
    check_password(password)?;
    let change = AccessChange::SetPassword {
        username: username.trim().to_string(),
        password_hash: hash_password(password).map_err(UserError::Invalid)?,
    };
    Ok(store.apply(Change::Access(change)).await? == Outcome::Applied)
}

/// Removes a user (and ends its sessions); `Ok(false)` if there is no such user.
pub async fn remove_user(store: &Store, username: &str) -> Result<bool, UserError> {
    let change = AccessChange::RemoveUser {
        username: username.trim().to_string(),
        keep_an_admin: false,
    };
    Ok(store.apply(Change::Access(change)).await? == Outcome::Applied)
}

/// Gives a user another role; `Ok(false)` if there is no such user, or if it is the last
/// admin and `role` is not `admin` (a hub keeps an admin).
pub async fn set_role(store: &Store, username: &str, role: Role) -> Result<bool, UserError> {
    let change = AccessChange::SetRole {
        username: username.trim().to_string(),
        role: role.as_str().to_string(),
    };
    Ok(store.apply(Change::Access(change)).await? == Outcome::Applied)
}

/// Removes a user unless it is the last admin; `Ok(false)` if there is no such user or it is
/// the last admin.
pub async fn remove_user_keeping_an_admin(
    store: &Store,
    username: &str,
) -> Result<bool, UserError> {
    let change = AccessChange::RemoveUser {
        username: username.trim().to_string(),
        keep_an_admin: true,
    };
    Ok(store.apply(Change::Access(change)).await? == Outcome::Applied)
}

/// Makes the first admin (`admin`) if the hub has no user: with `password`, else a generated
/// one that the caller prints once.
pub async fn first_admin(
    store: &Store,
    password: Option<&str>,
) -> Result<Option<FirstAdmin>, UserError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let generated = password.is_none().then(generate_password);
    let password = password.or(generated.as_deref()).unwrap_or_default();
    if !add_user(store, "admin", password, Role::Admin).await? {
        return Ok(None);
    }
    Ok(Some(FirstAdmin {
        username: "admin".to_string(),
        generated_password: generated,
    }))
}

pub fn check_username(username: &str) -> Result<&str, UserError> {
    let username = username.trim();
    let fits = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|it| it.is_alphanumeric() || "._-@".contains(it));
    if fits {
        Ok(username)
    } else {
        Err(UserError::Invalid(
            "a username is 1 to 64 letters, digits, `.`, `_`, `-` or `@`".into(),
        ))
    }
}

pub fn check_password(password: &str) -> Result<(), UserError> {
    if password.chars().count() < 8 {
        return Err(UserError::Invalid(
            "a password has at least 8 characters".into(),
        ));
    }
    Ok(())
}

/// Why a user could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Failed logins allowed before the backoff starts.
const FREE_FAILURES: u32 = 5;
/// The first lockout; each further failure doubles it, up to [`MAX_LOCK`].
const FIRST_LOCK: Duration = Duration::from_secs(30);
const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Names and addresses tracked at most (beyond, the oldest half is dropped).
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Failed logins per username and per client address; after [`FREE_FAILURES`] in a row
/// either is locked out for a time that doubles with each further failure. In memory.
#[derive(Default)]
pub struct Lockout {
    by: Mutex<HashMap<String, Failures>>,
}

impl Lockout {
    /// Seconds to wait before `keys` (a username, an address) may try again, if locked.
    pub fn locked(&self, keys: &[&str], now: Instant) -> Option<u64> {
        let by = self.by.lock().unwrap_or_else(|it| it.into_inner());
        keys.iter()
            .filter_map(|key| by.get(*key)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| (until - now).as_secs().max(1))
            .max()
    }

    /// A failed login of each of `keys`.
    pub fn failed(&self, keys: &[&str], now: Instant) {
        let mut by = self.by.lock().unwrap_or_else(|it| it.into_inner());
        if by.len() >= MAX_TRACKED {
            by.retain(|_, it| now.duration_since(it.last) < FORGET_AFTER / 2);
        }
        for key in keys {
            let entry = by.entry(key.to_string()).or_insert(Failures {
                count: 0,
                last: now,
                locked_until: None,
            });
            if now.duration_since(entry.last) > FORGET_AFTER {
                entry.count = 0;
            }
            entry.count += 1;
            entry.last = now;
            if entry.count >= FREE_FAILURES {
                let doublings = (entry.count - FREE_FAILURES).min(10);
                let lock = (FIRST_LOCK * 2u32.pow(doublings)).min(MAX_LOCK);
                entry.locked_until = Some(now + lock);
            }
        }
    }

    /// A successful login: the username's failures are forgotten (the address's are not, so
    /// one good account does not reset a guesser's count).
    pub fn succeeded(&self, username: &str) {
        self.by
            .lock()
            .unwrap_or_else(|it| it.into_inner())
            .remove(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn roles_map_to_scopes() {
        assert!(Role::Admin.scopes().contains(Scope::KeysAdmin));
        assert!(!Role::Operator.scopes().contains(Scope::KeysAdmin));
        assert!(Role::Operator.scopes().contains(Scope::MessagesSend));
        assert!(!Role::Viewer.scopes().contains(Scope::MessagesSend));
        assert!(Role::Viewer.scopes().reads_all_messages());
    }

    #[test]
    fn repeated_failures_lock_out_and_back_off() {
        let lockout = Lockout::default();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            lockout.failed(&["alice", "10.0.0.1"], now);
        }
        assert_eq!(lockout.locked(&["alice"], now), None);
        lockout.failed(&["alice", "10.0.0.1"], now);
        assert_eq!(lockout.locked(&["alice"], now), Some(30));
        assert_eq!(lockout.locked(&["bob", "10.0.0.1"], now), Some(30));
        lockout.failed(&["alice"], now);
        assert_eq!(lockout.locked(&["alice"], now), Some(60));
        assert_eq!(lockout.locked(&["alice"], now + MAX_LOCK), None);
        lockout.succeeded("alice");
        assert_eq!(lockout.locked(&["alice"], now), None);
    }
}
