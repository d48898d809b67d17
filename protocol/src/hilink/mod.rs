//! The HTTP/XML API of Huawei HiLink sticks (E3372h, E303, E3131 in HiLink firmware), as
//! smshub uses it: request bodies, answer readers and what error codes mean.
//!
//! - [`xml`]: a small, case-insensitive XML tree over `quick-xml`.
//! - [`api`]: the calls (session and login, device and radio status, send and send status,
//!   the inbox, USSD) as request builders and typed readers.
//! - [`error`]: `<error><code>` answers and their classes (session, busy, USSD pending, ...).
//!
//! Must never: do I/O, read a clock (the caller passes the date a request carries), or panic
//! on any input. The hub's `transport::hilink` owns the HTTP client and decides what to do.

pub mod api;
pub mod error;
pub mod xml;

pub use api::Reply;
pub use error::{ApiError, ErrorClass};
pub use xml::{Element, XmlError};
