//! API keys and device tokens: creating them, and checking a presented secret.
//!
//! Secrets are 256-bit random strings, stored only as SHA-256 hashes and shown once. A
//! presented secret is hashed and looked up by its hash; hashes are compared in constant
//! time. An API key is looked up on every request (a few microseconds, see `store::keys`) and
//! never cached, so a key revoked by any process is refused from the next request on.

pub mod oidc;
pub mod pairing;
pub mod scope;

use subtle::ConstantTimeEq;
use uuid::Uuid;

pub use scope::{Scope, Scopes};

use crate::domain::{DeviceId, DeviceKind, generate_device_id, generate_secret, hash_secret};
use crate::store::{ApiKeyRecord, Change, DeviceRecord, Store, StoreError};

/// Prefix of API keys, so a leaked key is recognisable.
pub const API_KEY_PREFIX: &str = "shk_";
/// Prefix of device tokens.
pub const DEVICE_TOKEN_PREFIX: &str = "shd_";

/// Who is calling the API, and what they may do: what every route's authorization yields.
///
/// `owner` is the tenant: the messages a principal sends carry it, and without
/// `messages:read_all` it sees and cancels only messages carrying it. For an API key it is
/// the key's id.
#[derive(Debug, Clone)]
pub struct Principal {
    pub owner: Uuid,
    /// What people see to tell credentials apart: the key's prefix (`shk_7DWX4B`).
    pub label: String,
    pub scopes: Scopes,
}

impl Principal {
    /// The principal of a stored API key. Keys have every scope until scoped keys exist.
    pub fn of_key(key: &ApiKeyRecord) -> Principal {
        Principal {
            owner: key.id,
            label: key.prefix.clone(),
            scopes: Scopes::ALL,
        }
    }

    /// Whether this principal may see a message sent under `owner`.
    pub fn may_see(&self, owner: Option<Uuid>) -> bool {
        self.scopes.reads_all_messages() || owner == Some(self.owner)
    }
}

/// A new API key; `secret` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: Uuid,
    pub name: String,
    pub secret: String,
}

/// A newly registered device; `token` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub id: DeviceId,
    pub name: String,
    pub token: String,
}

/// Checks API keys against the database, on every request: no cache, so a revocation made
/// by another process (`smshub keys revoke`) counts from the next request on.
pub struct ApiKeys {
    store: Store,
}

impl ApiKeys {
    pub fn new(store: Store) -> ApiKeys {
        ApiKeys { store }
    }

    /// The key record for a presented secret, if it is a valid, unrevoked key.
    pub async fn check(&self, secret: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self
            .store
            .find_api_key(&hash_secret(secret))
            .await?
            .filter(|it| !it.revoked))
    }
}

/// Revokes the API keys named by `key`: an id (as printed by `keys create`) or a key's prefix
/// (`shk_` and 6 characters, also the start of the key itself). Whether any unrevoked key
/// matched.
pub async fn revoke_api_key(store: &Store, key: &str) -> Result<bool, StoreError> {
    let key = key.trim();
    let id = Uuid::parse_str(key).ok();
    let prefix = (id.is_none() && key.starts_with(API_KEY_PREFIX)).then(|| {
        key.chars()
            .take(API_KEY_PREFIX.len() + 6)
            .collect::<String>()
    });
    let outcome = store.apply(Change::RevokeApiKey { id, prefix }).await?;
    Ok(outcome == crate::store::Outcome::Applied)
}

/// Creates and stores a new API key.
pub async fn create_api_key(store: &Store, name: &str) -> Result<NewApiKey, StoreError> {
    let secret = generate_secret(API_KEY_PREFIX);
    let id = Uuid::new_v4();
    let prefix: String = secret.chars().take(API_KEY_PREFIX.len() + 6).collect();
    store
        .apply(Change::CreateApiKey {
            id,
            name: name.to_string(),
            prefix,
            key_hash: hash_secret(&secret),
        })
        .await?;
    Ok(NewApiKey {
        id,
        name: name.to_string(),
        secret,
    })
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
