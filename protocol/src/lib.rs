//! smshub's wire formats, with no I/O.
//!
//! - [`at`]: AT command lines of serial modems: a framer that turns bytes into replies, final
//!   result codes, prompts and unsolicited codes; parsers for the replies that matter; and
//!   what each `+CMS`/`+CME ERROR` means for a message.
//! - [`device`]: device protocol v1, the JSON frames phones exchange with the hub over
//!   WebSocket. A compatibility contract: see `android-client-spec/README.md`.
//! - [`gsm`]: the GSM 03.38 default alphabet, UCS-2, and how many SMS parts a text needs.
//! - [`hilink`]: the HTTP/XML API of Huawei HiLink sticks: requests, answers, error codes.
//! - [`pdu`]: the SMS PDU codec for modems: SMS-SUBMIT encoding, SMS-DELIVER /
//!   SMS-STATUS-REPORT / SMS-SUBMIT decoding, and reassembly of long incoming messages.
//!
//! Invariant: nothing here touches tokio, a socket, a database, the clock or randomness,
//! and no decoder panics on any input. The hub, the simulator and tests all build on it.

pub mod at;
pub mod device;
pub mod gsm;
pub mod hilink;
pub mod pdu;
