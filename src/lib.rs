//! smshub: a self-hosted SMS hub. Android phones (over WebSocket) and USB GSM modems (over
//! serial AT commands) are SMS workers; applications send SMS through one REST API.
//!
//! # Layout, in the order a message flows
//!
//! - [`api`]: the HTTP surface (REST, device WebSocket endpoint, dashboard, health). Checks
//!   input, commits through `store`, hands messages to `dispatch`.
//! - [`store`]: the database, the source of truth; the only module that imports sea-orm.
//!   One writer task commits many changes per transaction.
//! - [`dispatch`]: one task owning the queue of waiting messages; offers each to the best
//!   device (scored on battery, charging, signal and load) the moment one can take it.
//! - [`registry`]: live device sessions and their last status, in memory only.
//! - [`transport`]: carries jobs to devices and brings reports back; `android` speaks device
//!   protocol v1 (the wire types live in the `smshub-protocol` crate); `gateway_app` speaks
//!   the mobile API of capcom6's SMS Gateway app; `modem` drives serial GSM modems with AT
//!   commands; `hilink` drives Huawei HiLink sticks over their HTTP API.
//! - [`simulate`]: fake phones over real WebSockets, for the demo, tests and benchmarks;
//!   [`demo`]: the demo's key and phones, reused between runs on one database.
//! - [`bench`]: `smshub bench`, the load generator and measurement harness.
//! - [`conformance`]: `smshub conformance`, a scripted hub that checks a worker against
//!   every rule of device protocol v1.
//! - [`events`]: what the hub tells applications, read from the event log: streams,
//!   webhooks, MQTT.
//! - [`webhooks`]: the event log delivered to HTTP endpoints, signed (Standard Webhooks),
//!   each delivery a durable row retried with backoff.
//! - [`mqtt`]: the MQTT bridge: the event log published to a broker, sends taken from it.
//! - [`server`]: the accept loop: connection caps (API and devices apart), header and body
//!   timeouts, graceful shutdown with a bounded grace; [`client_tls`]: TLS for the
//!   connections smshub opens (MQTT broker, a worker's hub).
//! - [`app`]: wires it together, binds, serves, shuts down gracefully.
//! - [`cluster`]: several nodes on one PostgreSQL database: the node holding the leader lock
//!   runs the hub, the others relay their connections to it.
//! - [`domain`], [`auth`]: phone numbers, message states, secrets; who may do what (scoped
//!   API keys, rate limits, users, sessions, hub JWTs).
//! - [`keys_cli`]: `smshub keys …` and `smshub users …`, straight on the database.
//! - [`telemetry`]: the Prometheus recorder behind `GET /metrics` and what records into it;
//!   [`series`]: the last day minute by minute, in memory, for the console's charts;
//!   [`history`]: each device's last day minute by minute, for its page and sparklines.
//! - [`logging`]: the log to stderr, which drops what it cannot write rather than panic.
//! - [`pdu_cli`]: `smshub pdu encode|decode`, the PDU codec at the command line.
//! - [`worker`]: `smshub worker`, a remote modem worker: drives local modems with the
//!   modem layers of [`transport`] and is a client of a hub over device protocol v1.

pub mod api;
pub mod app;
pub mod auth;
pub mod bench;
pub mod client_tls;
pub mod cluster;
pub mod conformance;
pub mod dashboard;
pub mod demo;
pub mod dispatch;
pub mod domain;
pub mod events;
pub mod history;
pub mod keys_cli;
pub mod logging;
pub mod mqtt;
pub mod pdu_cli;
pub mod registry;
pub mod remote;
pub mod series;
pub mod server;
pub mod settings;
pub mod simulate;
pub mod store;
pub mod telemetry;
pub mod transport;
pub mod webhooks;
pub mod worker;

pub use app::{App, Config};
