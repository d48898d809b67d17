//! AT command line parsing for serial GSM modems (3GPP TS 27.005 / 27.007 and vendor quirks).
//!
//! - [`framer`]: bytes in, [`Event`]s out: information lines, final result codes (`OK`,
//!   `ERROR`, `+CME ERROR: n`, `+CMS ERROR: n`, Huawei's `COMMAND NOT SUPPORT`), the `> `
//!   prompt that comes without a newline, echoed commands, and unsolicited result codes (URCs)
//!   arriving at any time, including the two-line `+CMT:`/`+CDS:` and `+CUSD:` replies whose
//!   quoted text spans lines.
//! - [`reply`]: what the information lines of one command mean (`+CSQ`, `+COPS?`, `+CREG?`,
//!   `+CPIN?`, `^SYSINFOEX`, ICCID and IMSI, `+CPMS`, `+CNMI=?`).
//! - [`sms`]: `+CMGS: <mr>`, stored message lists (`+CMGL`/`+CMGR`), `+CMTI`/`+CDSI`.
//! - [`ussd`]: `+CUSD` replies, plain, UCS-2 hex or Huawei's packed GSM 7-bit hex.
//! - [`error`]: what a `+CMS ERROR`/`+CME ERROR` means for a message: temporary, permanent,
//!   outcome unknown, or a configuration problem, from one table.
//!
//! The data behind every parser are real modem transcripts from public test corpora (Gammu's
//! `tests/`, ModemManager's `test-modem-helpers*.c`, python-gsmmodem's fake modems), cited
//! next to each test. Must never: do I/O, read a clock, or panic on any input; the session
//! that owns the serial port (in the hub) decides what to do with what is parsed here.

pub mod error;
pub mod framer;
pub mod reply;
pub mod sms;
pub mod ussd;

pub use error::{CommandError, ErrorClass};
pub use framer::{Event, Final, Framer, Urc};

/// Splits the parameters of a reply line into fields: commas inside double quotes do not
/// split, surrounding whitespace and quotes are removed.
pub fn fields(params: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in params.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut current).trim().to_string()),
            _ => current.push(c),
        }
    }
    out.push(current.trim().to_string());
    out
}

/// The text after `prefix` (e.g. `+CSQ`), with the colon and spaces after it removed; the
/// prefix matches case-insensitively. `None` when the line does not start with it.
pub fn strip_tag<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let line = line.trim_start();
    let head = line.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = line.get(prefix.len()..)?;
    if !(rest.is_empty() || rest.starts_with(':') || rest.starts_with(' ')) {
        // `+CMT` must not match `+CMTI: ...`.
        return None;
    }
    let rest = rest.trim_start();
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    Some(rest.trim())
}

/// Whether `text` is non-empty and only hex digits.
pub fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_fields() {
        assert_eq!(
            fields(r#"1,0,"CHINA MOBILE",7"#),
            ["1", "0", "CHINA MOBILE", "7"]
        );
        assert_eq!(fields(r#""a,b", c ,"#), ["a,b", "c", ""]);
        assert_eq!(fields(""), [""]);
        assert_eq!(strip_tag("+CSQ: 14,99", "+CSQ"), Some("14,99"));
        assert_eq!(strip_tag("+csq:14,99", "+CSQ"), Some("14,99"));
        assert_eq!(strip_tag("+CS", "+CSQ"), None);
        assert_eq!(strip_tag("+CÉ", "+CSQ"), None);
        assert_eq!(strip_tag("+CMTI: \"SM\",1", "+CMT"), None);
        assert_eq!(strip_tag("+CDS:25", "+CDS"), Some("25"));
    }
}
