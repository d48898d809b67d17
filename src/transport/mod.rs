//! Transports carry jobs to devices and bring their reports back. Each kind of device is a
//! folder or file here: `android` (phones over WebSocket), `modem` (serial GSM modems
//! driven with AT commands) and `hilink` (Huawei HiLink sticks driven over their HTTP API). All of them speak to the rest of the hub the same way: they
//! register sessions in the registry, receive `Outbound` frames from the dispatcher, and turn
//! what the device says into store changes and dispatcher events. The dispatcher never knows
//! which transport a device uses.

pub mod android;
pub(crate) mod device_link;
pub mod hilink;
pub mod modem;
pub mod websocket;
