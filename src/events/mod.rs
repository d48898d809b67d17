//! What the hub tells applications: the event log (`store::EventLog`, written by the store's
//! writer in the transaction of each change) read by its consumers.
//!
//! - [`config`]: the flags (`--event-retention`, webhooks, MQTT).
//! - [`access`]: which events a principal may see, and the type filters (`message.*`).
//! - [`reader`]: one consumer's position in the log (streams read through it).
//!
//! Must never: write events (only the store's writer does), or read the log in a loop
//! without waiting for the writer's signal.

pub mod access;
pub mod config;
pub mod reader;

pub use config::{EventArgs, EventsConfig};
pub use reader::Reader;
