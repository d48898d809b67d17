//! smshub's integration tests: one binary, real hub on port 0 with its own database file,
//! real HTTP and real WebSocket phones.

mod access;
mod access_people;
mod api;
mod architecture;
mod bench;
mod cli;
mod config;
mod crash;
mod delivery;
mod device;
mod dispatch;
mod edge;
mod events;
mod faults;
mod flood;
mod frame_table;
mod gammu;
mod hardening;
mod hilink;
mod hilink_emulator;
mod metrics;
mod modem;
mod modem_api;
mod modem_detect;
mod modem_emulator;
mod modem_parts;
mod oidc;
mod openapi;
mod remote;
mod seed_paths;
mod serving;
mod spec_session;
mod support;
mod templates;
mod tls;
