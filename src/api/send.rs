//! [`SendRequest`]: a send request as the hub understands it, parsed from the REST body once,
//! with every check of a send in [`SendRequest::parse`]. What comes out is valid by
//! construction (E.164 recipients, a text that fits, times in order); the handler only adds
//! what needs I/O (does the pinned device exist, is there room in the queue).
//!
//! Pure: no I/O, no clock of its own (the caller gives `now`).

use smshub_protocol::gsm::{self, Encoding};

use super::ApiConfig;
use super::dto::SendSmsRequest;
use super::error::ApiError;
use crate::domain::{DeviceId, Millis, PhoneNumber, hash_secret, parse_rfc3339};

/// Most recipients in one request.
pub const MAX_RECIPIENTS: usize = 1000;
/// Longest accepted idempotency key or client id.
const MAX_IDEMPOTENCY_KEY: usize = 128;
/// Highest SIM slot a device may have.
const MAX_SIM_SLOT: u8 = 7;
/// How far ahead `schedule_at` and `valid_until` may be (a hundred years): beyond, they are
/// refused, so every stored time is a plain four-digit RFC 3339 year.
const MAX_AHEAD_S: i64 = 100 * 365 * 86_400;
/// The longest `ttl` taken as given (ten years); a longer one is cut to it.
const MAX_TTL_S: i64 = 10 * 365 * 86_400;

/// How recipients' numbers are checked (`--phone-validation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PhoneValidation {
    /// Valid numbers of their country only (libphonenumber's metadata); a request may still
    /// ask for lenient checking with `skip_phone_validation`.
    #[default]
    Strict,
    /// Any `+` and 7 to 15 digits (see [`PhoneNumber::parse_lenient`]).
    Lenient,
}

/// A valid send request: one message per recipient, each with the same text and options.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub recipients: Vec<PhoneNumber>,
    pub text: String,
    /// SMS parts of the text, as the hub counts them.
    pub parts: u32,
    /// Send through this device only.
    pub device_id: Option<DeviceId>,
    /// Send through this SIM slot only.
    pub sim_slot: Option<u8>,
    pub priority: i32,
    pub delivery_report: bool,
    /// Not offered before this instant.
    pub schedule_at: Option<Millis>,
    /// Expires if no device accepted it before this instant.
    pub valid_until: Option<Millis>,
    /// The client's idempotency key, from the header or the body's `id`.
    pub idempotency_key: Option<String>,
    /// With an idempotency key: a digest of everything the request asks for, to tell a
    /// repeat from a conflicting reuse of the same key.
    pub fingerprint: Option<String>,
}

impl SendRequest {
    /// Checks everything a send asks for; the first problem found is the error.
    pub fn parse(
        request: SendSmsRequest,
        idempotency_header: Option<String>,
        config: &ApiConfig,
        now: Millis,
    ) -> Result<SendRequest, ApiError> {
        let idempotency_key = match (idempotency_header, request.id.clone()) {
            (Some(header), Some(id)) if header != id => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "the Idempotency-Key header and the body's id differ; give one of them",
                ));
            }
            (header, id) => header.or(id),
        };
        if let Some(it) = &idempotency_key
            && (it.is_empty() || it.len() > MAX_IDEMPOTENCY_KEY)
        {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("an idempotency key or id must be 1 to {MAX_IDEMPOTENCY_KEY} characters"),
            ));
        }
        let mut given: Vec<String> = Vec::new();
        given.extend(request.phone_number.clone());
        given.extend(request.phone_numbers.clone().unwrap_or_default());
        if given.is_empty() {
            return Err(ApiError::bad_request(
                "missing_recipient",
                "give phone_number or phone_numbers",
            ));
        }
        if given.len() > MAX_RECIPIENTS {
            return Err(ApiError::bad_request(
                "too_many_recipients",
                format!(
                    "at most {MAX_RECIPIENTS} recipients per request, got {}",
                    given.len()
                ),
            ));
        }
        let lenient = request.skip_phone_validation.unwrap_or(false)
            || config.phone_validation == PhoneValidation::Lenient;
        let recipients = given
            .iter()
            .map(|it| {
                if lenient {
                    PhoneNumber::parse_lenient(it, config.default_region)
                } else {
                    PhoneNumber::parse(it, config.default_region)
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| ApiError::bad_request("invalid_phone_number", err.to_string()))?;
        let text = request.message.clone().unwrap_or_default();
        if text.chars().all(invisible) {
            return Err(ApiError::bad_request(
                "empty_message",
                "message must not be empty",
            ));
        }
        let segmentation = gsm::segment(&text);
        if segmentation.parts as u32 > config.max_parts {
            return Err(ApiError::bad_request(
                "message_too_long",
                format!(
                    "the message needs {} SMS parts ({} {} units); the limit is {}",
                    segmentation.parts,
                    segmentation.units,
                    match segmentation.encoding {
                        Encoding::Gsm7 => "GSM 7-bit",
                        Encoding::Ucs2 => "UCS-2",
                    },
                    config.max_parts
                ),
            ));
        }
        let sim_slot = match request.sim_slot {
            None => None,
            Some(slot) => Some(
                u8::try_from(slot)
                    .ok()
                    .filter(|it| *it <= MAX_SIM_SLOT)
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_sim_slot",
                            format!("sim_slot must be 0 to {MAX_SIM_SLOT}, got {slot}"),
                        )
                    })?,
            ),
        };
        let priority = request.priority.unwrap_or(0);
        if !(-100..=100).contains(&priority) {
            return Err(ApiError::bad_request(
                "invalid_priority",
                format!("priority must be -100 to 100, got {priority}"),
            ));
        }
        let horizon = now + MAX_AHEAD_S * 1000;
        let schedule_at = instant("schedule_at", &request.schedule_at)?;
        if schedule_at.is_some_and(|at| at > horizon) {
            return Err(ApiError::bad_request(
                "invalid_schedule",
                "schedule_at must be within 100 years from now",
            ));
        }
        let until = instant("valid_until", &request.valid_until)?;
        if until.is_some_and(|it| it > horizon) {
            return Err(ApiError::bad_request(
                "invalid_valid_until",
                "valid_until must be within 100 years from now",
            ));
        }
        let valid_until = match (request.ttl, until) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "give ttl or valid_until, not both",
                ));
            }
            (Some(ttl), None) if ttl < 1 => {
                return Err(ApiError::bad_request(
                    "invalid_ttl",
                    format!("ttl must be at least 1 second, got {ttl}"),
                ));
            }
            (Some(ttl), None) => {
                Some(schedule_at.unwrap_or(now).max(now) + ttl.min(MAX_TTL_S) * 1000)
            }
            (None, until) => until,
        };
        if let Some(until) = valid_until {
            if until <= now {
                return Err(ApiError::bad_request(
                    "invalid_valid_until",
                    "valid_until is in the past",
                ));
            }
            if schedule_at.is_some_and(|at| at >= until) {
                return Err(ApiError::bad_request(
                    "invalid_schedule",
                    "schedule_at is not before the message expires",
                ));
            }
        }
        let device_id = match &request.device_id {
            Some(given) => Some(DeviceId::parse(given).ok_or_else(|| unknown_device(given))?),
            None => None,
        };
        let delivery_report = request.delivery_report.unwrap_or(false);
        let fingerprint = idempotency_key.as_ref().map(|_| {
            let mut canonical = serde_json::json!({
            "to": recipients.iter().map(|it| it.as_str()).collect::<Vec<_>>(),
            "text": text,
            "device": request.device_id,
            "sim": request.sim_slot,
            "priority": priority,
            "schedule_at": schedule_at,
            "ttl": request.ttl,
            "valid_until": if request.ttl.is_some() { None } else { valid_until },
            "delivery_report": delivery_report,
            });
            // Only when given, so keys stored before SIM cards existed keep their hash.
            if let Some(card) = request.sim_card_id.as_ref().or(request.sim.as_ref()) {
                canonical["sim_card"] = card.as_str().into();
            }
            hash_secret(&canonical.to_string())
        });
        Ok(SendRequest {
            recipients,
            text,
            parts: segmentation.parts as u32,
            device_id,
            sim_slot,
            priority,
            delivery_report,
            schedule_at,
            valid_until,
            idempotency_key,
            fingerprint,
        })
    }
}

/// The answer when the pinned device does not exist.
pub fn unknown_device(given: &str) -> ApiError {
    ApiError::bad_request("unknown_device", format!("no device with id {given:?}"))
}

/// Whether a character shows nothing: whitespace, control characters and the invisible
/// format characters (zero-width space and joiners, direction marks, the BOM, soft hyphen).
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

/// An optional RFC 3339 instant of the request, by field name.
fn instant(name: &str, text: &Option<String>) -> Result<Option<Millis>, ApiError> {
    match text {
        Some(text) => parse_rfc3339(text).map(Some).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_time",
                format!("{name} must be an RFC 3339 time, got {text:?}"),
            )
        }),
        None => Ok(None),
    }
}
