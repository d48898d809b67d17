//! API keys and device tokens: creating them, and checking a presented secret.
//!
//! Secrets are 256-bit random strings, stored only as SHA-256 hashes and shown once. A
//! presented secret is hashed and looked up by its hash; hashes are compared in constant
//! time. Checked API keys are cached so a request does not cost a database read.

use dashmap::DashMap;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::domain::{DeviceId, DeviceKind, generate_device_id, generate_secret, hash_secret};
use crate::store::{ApiKeyRecord, Change, DeviceRecord, Store, StoreError};

/// Prefix of API keys, so a leaked key is recognisable.
pub const API_KEY_PREFIX: &str = "shk_";
/// Prefix of device tokens.
pub const DEVICE_TOKEN_PREFIX: &str = "shd_";

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

/// Checks API keys, with a cache of keys already seen.
pub struct ApiKeys {
    store: Store,
    cache: DashMap<String, ApiKeyRecord>,
}

impl ApiKeys {
    pub fn new(store: Store) -> ApiKeys {
        ApiKeys {
            store,
            cache: DashMap::new(),
        }
    }

    /// The key record for a presented secret, if it is a valid, unrevoked key.
    pub async fn check(&self, secret: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let hash = hash_secret(secret);
        if let Some(found) = self.cache.get(&hash).map(|it| it.clone()) {
            return Ok(Some(found));
        }
        let found = self
            .store
            .find_api_key(&hash)
            .await?
            .filter(|it| !it.revoked);
        if let Some(record) = &found {
            self.cache.insert(hash, record.clone());
        }
        Ok(found)
    }
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
