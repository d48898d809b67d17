//! Who may do what: principals, API keys and their scopes, limits and restrictions
//! (`keys.rs`, `limits.rs`, `usage.rs`), people (`users.rs`), sessions and hub JWTs
//! (`tokens.rs`), device tokens.
//!
//! Secrets are 256-bit random strings, stored only as SHA-256 hashes and shown once. A
//! presented secret is hashed and looked up by its hash; hashes are compared in constant
//! time. API keys are cached in memory by `store::keys`, with a cache no key change
//! outlives: a key revoked by any process is refused from the next request on.

pub mod keys;
pub mod limits;
pub mod oidc;
pub mod pairing;
pub mod scope;
pub mod tokens;
pub mod usage;
pub mod users;

use subtle::ConstantTimeEq;
use uuid::Uuid;

pub use keys::{KeySpec, NewApiKey, create_api_key, create_key, revoke_api_key, rotate_api_key};
pub use limits::{KeyLimits, RateLimits};
pub use scope::{Scope, Scopes};

use crate::dispatch::AllowedDevices;
use crate::domain::{
    DeviceId, DeviceKind, Millis, generate_device_id, generate_secret, hash_secret,
};
use crate::store::{ApiKeyRecord, Change, DeviceRecord, Store, StoreError};

/// Prefix of API keys, so a leaked key is recognisable.
pub const API_KEY_PREFIX: &str = "shk_";
/// Prefix of device tokens.
pub const DEVICE_TOKEN_PREFIX: &str = "shd_";

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// An API key (`X-API-Key` or `Authorization: Bearer`).
    ApiKey,
    /// A login session's cookie; unsafe methods also need this CSRF token.
    Session { csrf: String, id_hash: String },
    /// A hub JWT (`POST /api/auth/token`).
    HubToken,
    /// A bearer JWT of the OpenID provider (`--oidc-issuer`).
    Oidc,
    /// A username and password in `Authorization: Basic` (capcom6's API, `api::compat`).
    Password,
}

/// Who is calling the API, and what they may do: what every route's authorization yields.
///
/// `owner` is the tenant: the messages a principal sends carry it, and without
/// `messages:read_all` it sees and cancels only messages carrying it. For an API key it is
/// the key's id; for a person, the user's id.
#[derive(Debug, Clone)]
pub struct Principal {
    pub owner: Uuid,
    /// What people see to tell credentials apart: the key's prefix (`shk_7DWX4B`), or
    /// `user:NAME`.
    pub label: String,
    pub scopes: Scopes,
    /// The only devices (and SIMs) it may send through; `None`: any.
    pub devices: Option<AllowedDevices>,
    /// Its own rate limits over the hub's defaults.
    pub limits: KeyLimits,
    pub via: Via,
}

impl Principal {
    /// A principal with no device restriction and the default limits.
    pub fn new(owner: Uuid, label: String, scopes: Scopes, via: Via) -> Principal {
        Principal {
            owner,
            label,
            scopes,
            devices: None,
            limits: KeyLimits::default(),
            via,
        }
    }

    /// The principal of a stored API key: its scopes, devices and limits.
    pub fn of_key(key: &ApiKeyRecord) -> Principal {
        Principal {
            owner: key.id,
            label: key.prefix.clone(),
            scopes: Scopes::parse(&key.scopes).unwrap_or(Scopes::NONE),
            devices: key
                .devices
                .as_deref()
                .and_then(|it| AllowedDevices::parse(it).ok().flatten()),
            limits: KeyLimits::from_stored(key.rate_limits.as_deref()),
            via: Via::ApiKey,
        }
    }

    /// Whether this principal may see a message sent under `owner`.
    pub fn may_see(&self, owner: Option<Uuid>) -> bool {
        self.scopes.reads_all_messages() || owner == Some(self.owner)
    }
}

/// What a presented API key turned out to be.
#[derive(Debug, Clone)]
pub enum KeyCheck {
    Valid(Box<ApiKeyRecord>),
    /// Known, unrevoked, but past its `expires_at`.
    Expired,
    /// Unknown or revoked.
    Invalid,
}

/// Checks API keys against the database, on every request: no cache, so a revocation made
/// by another process (`smshub keys revoke`) counts from the next request on. Last uses are
/// kept in memory and written at most once a minute per key.
pub struct ApiKeys {
    store: Store,
    pub usage: usage::KeyUsage,
}

impl ApiKeys {
    pub fn new(store: Store) -> ApiKeys {
        ApiKeys {
            store,
            usage: usage::KeyUsage::default(),
        }
    }

    /// What the presented secret is, at `now`.
    pub async fn check(&self, secret: &str, now: Millis) -> Result<KeyCheck, StoreError> {
        let Some(record) = self.store.find_api_key(&hash_secret(secret)).await? else {
            return Ok(KeyCheck::Invalid);
        };
        if record.revoked {
            return Ok(KeyCheck::Invalid);
        }
        if record.expires_at.is_some_and(|it| it <= now) {
            return Ok(KeyCheck::Expired);
        }
        if self.usage.touch(record.id, now) {
            self.usage.write(&self.store, record.id, now).await;
        }
        Ok(KeyCheck::Valid(Box::new(record)))
    }

    /// `record` with the last use this process saw, if later than the stored one.
    pub fn with_last_use(&self, mut record: ApiKeyRecord) -> ApiKeyRecord {
        record.last_used_at = record.last_used_at.max(self.usage.last(record.id));
        record
    }

    /// Writes the last uses not yet written.
    pub async fn flush(&self) {
        self.usage.flush(&self.store).await;
    }
}

/// A newly registered device; `token` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub id: DeviceId,
    pub name: String,
    pub token: String,
}

/// Registers a device of `kind` and returns its one-time token.
pub async fn create_device(
    store: &Store,
    name: &str,
    kind: DeviceKind,
) -> Result<NewDevice, StoreError> {
    let id = generate_device_id();
    let token = generate_secret(DEVICE_TOKEN_PREFIX);
    store
        .apply(Change::CreateDevice {
            id: id.clone(),
            name: name.to_string(),
            kind,
            token_hash: hash_secret(&token),
        })
        .await?;
    Ok(NewDevice {
        id,
        name: name.to_string(),
        token,
    })
}

/// Gives device `id` a new token (shown once; the old one stops working at once). `None`
/// if there is no such device.
pub async fn rotate_device_token(
    store: &Store,
    id: &DeviceId,
) -> Result<Option<String>, StoreError> {
    let token = generate_secret(DEVICE_TOKEN_PREFIX);
    let outcome = store
        .apply(Change::SetDeviceToken {
            id: id.clone(),
            token_hash: Some(hash_secret(&token)),
        })
        .await?;
    Ok((outcome == crate::store::Outcome::Applied).then_some(token))
}

/// Revokes device `id`'s token: it cannot connect until its token is rotated. Whether the
/// device exists.
pub async fn revoke_device_token(store: &Store, id: &DeviceId) -> Result<bool, StoreError> {
    let outcome = store
        .apply(Change::SetDeviceToken {
            id: id.clone(),
            token_hash: None,
        })
        .await?;
    Ok(outcome == crate::store::Outcome::Applied)
}

/// Whether `token` is the token of `device`.
pub fn device_token_matches(device: &DeviceRecord, token: &str) -> bool {
    hash_secret(token)
        .as_bytes()
        .ct_eq(device.token_hash.as_bytes())
        .into()
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(header: &str) -> Option<String> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|it| !it.is_empty())
}
