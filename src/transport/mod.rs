//! Transports carry jobs to devices and bring their reports back. Each kind of device is a
//! folder here: [`android`] (phones over WebSocket), [`gateway_app`] (phones running capcom6's
//! SMS Gateway for Android app, on its mobile API: Server-Sent Events, pulls and reports over
//! HTTP), [`modem`] (serial GSM modems driven with AT commands) and [`hilink`] (Huawei HiLink
//! sticks driven over their HTTP API); what the last two share is in [`radio`], and
//! [`attached::Modems`] attaches both. [`Refused`] is how any of them refuses a request.
//!
//! Every transport speaks to the rest of the hub through one [`link::DeviceLink`]: it
//! registers sessions, receives [`crate::registry::Outbound`] commands (offer, revoke, close)
//! from the dispatcher, and turns what the device says into store changes and dispatcher
//! events. The dispatcher never knows which transport a device uses.
//!
//! Invariant (checked by a test): nothing under `transport` imports `api` or `app`.

pub mod android;
pub mod attached;
pub mod gateway_app;
pub mod hilink;
pub mod link;
pub mod modem;
pub mod radio;
pub mod refused;

pub use refused::Refused;
