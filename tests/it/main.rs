//! smshub's integration tests: one binary, real hub on port 0 with its own database file,
//! real HTTP and real WebSocket phones.

mod api;
mod cli;
mod device;
mod dispatch;
mod support;
