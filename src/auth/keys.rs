//! API keys: what a new key may do (`KeySpec`), creating, rotating and revoking keys, and
//! the checks a creator's own rights put on the keys it makes.
//!
//! Used by `smshub keys …` (straight on the database) and by `/api/keys`.

use serde::Serialize;
use uuid::Uuid;

use super::{API_KEY_PREFIX, KeyLimits, Principal, Scopes};
use crate::dispatch::AllowedDevices;
use crate::domain::{Millis, format_millis, generate_secret, hash_secret, parse_rfc3339};
use crate::store::{ApiKeyRecord, Change, NewKeyRow, Outcome, Store, StoreError};

/// What a new key may do.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub name: String,
    pub scopes: Scopes,
    pub expires_at: Option<Millis>,
    pub devices: Option<AllowedDevices>,
    pub limits: KeyLimits,
}

impl KeySpec {
    /// A key with every scope, no expiry, no restriction (what `keys create` made before
    /// scopes existed).
    pub fn admin(name: &str) -> KeySpec {
        KeySpec {
            name: name.to_string(),
            scopes: Scopes::ALL,
            expires_at: None,
            devices: None,
            limits: KeyLimits::default(),
        }
    }

    /// Refuses a key that could do more than `creator`: a scope it lacks, a device outside
    /// its restriction. A restricted creator's key without devices inherits the restriction.
    pub fn within(mut self, creator: &Principal) -> Result<KeySpec, String> {
        if let Some(missing) = self.scopes.iter().find(|it| !creator.scopes.contains(*it)) {
            return Err(format!(
                "you cannot grant the scope {missing}: you do not hold it"
            ));
        }
        if let Some(limit) = &creator.devices {
            match &self.devices {
                None => self.devices = Some(limit.clone()),
                Some(devices) if devices.within(limit) => {}
                Some(_) => {
                    return Err("you cannot grant devices outside your own restriction".into());
                }
            }
        }
        Ok(self)
    }
}

/// A new API key; `secret` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub secret: String,
}

/// An expiry: an RFC 3339 time, or a duration from `now` (`30d`, `12h`, `45m`, `90s`).
pub fn parse_expires(text: &str, now: Millis) -> Result<Millis, String> {
    let text = text.trim();
    if let Some(at) = parse_rfc3339(text) {
        return Ok(at);
    }
    let split = text
        .find(|it: char| !it.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("expiry {text:?}: an RFC 3339 time or a duration like 30d"))?;
    let unit_ms: i64 = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" | "" => 1000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("expiry {text:?}: unit must be s, m, h, d or w")),
    };
    number
        .checked_mul(unit_ms)
        .and_then(|it| it.checked_add(now))
        .filter(|_| number > 0)
        .ok_or_else(|| format!("expiry {text:?} is not a positive duration"))
}

/// Creates and stores a key with every scope (tests, the demo, `keys create` without
/// `--scope`).
pub async fn create_api_key(store: &Store, name: &str) -> Result<NewApiKey, StoreError> {
    create_key(store, &KeySpec::admin(name), None).await
}

fn new_row(spec: &KeySpec, created_by: Option<&str>) -> (NewKeyRow, NewApiKey) {
    let secret = generate_secret(API_KEY_PREFIX);
    let id = Uuid::new_v4();
    let prefix: String = secret.chars().take(API_KEY_PREFIX.len() + 6).collect();
    let row = NewKeyRow {
        id,
        name: spec.name.clone(),
        prefix: prefix.clone(),
        key_hash: hash_secret(&secret),
        scopes: spec.scopes.to_string(),
        expires_at: spec.expires_at,
        devices: spec.devices.as_ref().map(ToString::to_string),
        rate_limits: spec.limits.to_stored(),
        created_by: created_by.map(str::to_string),
    };
    let key = NewApiKey {
        id,
        name: spec.name.clone(),
        prefix,
        secret,
    };
    (row, key)
}

/// Creates and stores a key as `spec` says.
pub async fn create_key(
    store: &Store,
    spec: &KeySpec,
    created_by: Option<&str>,
) -> Result<NewApiKey, StoreError> {
    let (row, key) = new_row(spec, created_by);
    store.apply(Change::CreateApiKey(row)).await?;
    Ok(key)
}

/// The id or prefix a text names: an id (as `keys create` prints it) or a key's prefix
/// (`shk_` and 6 characters, also the start of the key itself).
fn named(key: &str) -> (Option<Uuid>, Option<String>) {
    let key = key.trim();
    let id = Uuid::parse_str(key).ok();
    let prefix = (id.is_none() && key.starts_with(API_KEY_PREFIX)).then(|| {
        key.chars()
            .take(API_KEY_PREFIX.len() + 6)
            .collect::<String>()
    });
    (id, prefix)
}

/// The keys an id or prefix names, newest first.
pub async fn find_keys(store: &Store, key: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
    let (id, prefix) = named(key);
    store.find_api_keys(id, prefix.as_deref()).await
}

/// Revokes the API keys named by `key` (an id or a prefix). Whether any unrevoked key
/// matched.
pub async fn revoke_api_key(store: &Store, key: &str) -> Result<bool, StoreError> {
    let (id, prefix) = named(key);
    let outcome = store.apply(Change::RevokeApiKey { id, prefix }).await?;
    Ok(outcome == Outcome::Applied)
}

/// Replaces the unrevoked key `old` with a new one of the same name, scopes, expiry,
/// devices and limits; the old one is revoked in the same commit. `None` if `old` names no
/// unrevoked key (or several).
pub async fn rotate_api_key(
    store: &Store,
    old: &ApiKeyRecord,
    created_by: Option<&str>,
) -> Result<Option<NewApiKey>, StoreError> {
    if old.revoked {
        return Ok(None);
    }
    let spec = KeySpec {
        name: old.name.clone(),
        scopes: Scopes::parse(&old.scopes).unwrap_or(Scopes::NONE),
        expires_at: old.expires_at,
        devices: old
            .devices
            .as_deref()
            .and_then(|it| AllowedDevices::parse(it).ok().flatten()),
        limits: KeyLimits::from_stored(old.rate_limits.as_deref()),
    };
    let (row, key) = new_row(&spec, created_by);
    let outcomes = store
        .apply_all(vec![
            Change::RevokeApiKey {
                id: Some(old.id),
                prefix: None,
            },
            Change::CreateApiKey(row),
        ])
        .await?;
    Ok((outcomes.first() == Some(&Outcome::Applied)).then_some(key))
}

/// A key as lists show it (never its secret or hash).
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Scopes,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    pub devices: Option<Vec<String>>,
    pub rate_limits: KeyLimits,
    pub created_by: Option<String>,
}

impl KeyView {
    pub fn new(it: &ApiKeyRecord, now: Millis) -> KeyView {
        let status = if it.revoked {
            "revoked"
        } else if it.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        };
        KeyView {
            id: it.id.to_string(),
            name: it.name.clone(),
            prefix: it.prefix.clone(),
            scopes: Scopes::parse(&it.scopes).unwrap_or(Scopes::NONE),
            created_at: format_millis(it.created_at),
            expires_at: it.expires_at.map(format_millis),
            last_used_at: it.last_used_at.map(format_millis),
            revoked_at: it.revoked_at.map(format_millis),
            status,
            devices: it
                .devices
                .as_deref()
                .and_then(|it| AllowedDevices::parse(it).ok().flatten())
                .map(|it| it.items()),
            rate_limits: KeyLimits::from_stored(it.rate_limits.as_deref()),
            created_by: it.created_by.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_parse_as_times_or_durations() {
        let now = 1_000_000;
        assert_eq!(parse_expires("30d", now).unwrap(), now + 30 * 86_400_000);
        assert_eq!(parse_expires("2h", now).unwrap(), now + 7_200_000);
        assert_eq!(
            parse_expires("2030-01-01T00:00:00Z", now).unwrap(),
            parse_rfc3339("2030-01-01T00:00:00Z").unwrap()
        );
        assert!(parse_expires("soon", now).is_err());
        assert!(parse_expires("0d", now).is_err());
        assert!(parse_expires("3y", now).is_err());
    }

    #[test]
    fn a_key_cannot_grant_more_than_its_creator() {
        let creator = Principal::new(
            Uuid::new_v4(),
            "shk_AAAAAA".into(),
            Scopes::parse("keys:admin messages:send").unwrap(),
            super::super::Via::ApiKey,
        );
        let mut spec = KeySpec::admin("x");
        spec.scopes = Scopes::parse("messages:send").unwrap();
        assert!(spec.clone().within(&creator).is_ok());
        spec.scopes = Scopes::parse("messages:read_all").unwrap();
        assert!(
            spec.clone()
                .within(&creator)
                .unwrap_err()
                .contains("messages:read_all")
        );
        assert!(KeySpec::admin("y").within(&creator).is_err());
    }
}
