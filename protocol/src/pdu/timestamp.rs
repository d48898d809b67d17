//! Service-centre timestamps (TP-SCTS, TP-DT, absolute TP-VP; 23.040 §9.2.3.11): seven
//! swapped-nibble BCD octets, YY MM DD hh mm ss TZ, the zone in quarter hours with its sign in
//! bit 3 of the first semi-octet.
//!
//! Plain integers, no calendar library and no clock. Decoding is lenient: a non-decimal
//! semi-octet is taken at its value (phones put odd things here and the message still matters),
//! and nothing is range-checked. Must never panic on any input.

use serde::Serialize;
use std::fmt;

/// A timestamp as the service centre wrote it: local time plus its offset from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Timestamp {
    /// Full year: two-digit years below 90 are 20xx, the others 19xx (as libGammu reads them).
    pub year: u16,
    /// Month, 1-12.
    pub month: u8,
    /// Day of month, 1-31.
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute, 0-59.
    pub minute: u8,
    /// Second, 0-59.
    pub second: u8,
    /// Offset from UTC in quarter hours, e.g. 8 for +02:00 and -32 for -08:00 (range ±79).
    pub tz_quarters: i8,
}

impl Timestamp {
    /// Reads the seven octets.
    pub(crate) fn decode(octets: [u8; 7]) -> Timestamp {
        let [year, month, day, hour, minute, second, _] = octets.map(swapped_bcd);
        let year = u16::from(year) + if year < 90 { 2000 } else { 1900 };
        let [.., zone_octet] = octets;
        let magnitude = (zone_octet & 0x07) * 10 + (zone_octet >> 4);
        let magnitude = i8::try_from(magnitude).unwrap_or(i8::MAX);
        let tz_quarters = if zone_octet & 0x08 != 0 {
            -magnitude
        } else {
            magnitude
        };
        Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
            tz_quarters,
        }
    }

    /// The seven octets; fields are taken modulo 100 (the zone is clamped to ±79).
    pub(crate) fn encode(&self) -> [u8; 7] {
        let year = u8::try_from(self.year % 100).unwrap_or(0);
        let magnitude = self.tz_quarters.unsigned_abs().min(79);
        let sign = if self.tz_quarters < 0 { 0x08 } else { 0 };
        let zone = (magnitude % 10) << 4 | (magnitude / 10) | sign;
        [
            to_swapped_bcd(year),
            to_swapped_bcd(self.month),
            to_swapped_bcd(self.day),
            to_swapped_bcd(self.hour),
            to_swapped_bcd(self.minute),
            to_swapped_bcd(self.second),
            zone,
        ]
    }

    /// The offset from UTC in minutes.
    pub fn offset_minutes(&self) -> i32 {
        i32::from(self.tz_quarters) * 15
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339, e.g. `2015-11-27T00:00:00+02:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = self.offset_minutes();
        let sign = if offset < 0 { '-' } else { '+' };
        let offset = offset.unsigned_abs();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            offset / 60,
            offset % 60
        )
    }
}

/// Low semi-octet is the tens digit, high semi-octet the units.
fn swapped_bcd(octet: u8) -> u8 {
    (octet & 0x0F) * 10 + (octet >> 4)
}

fn to_swapped_bcd(value: u8) -> u8 {
    let value = value % 100;
    (value % 10) << 4 | (value / 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        tz_quarters: i8,
    ) -> Timestamp {
        Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
            tz_quarters,
        }
    }

    #[test]
    fn vectors() {
        // python-gsmmodem test_pdu.py TestTimestamp; SimpleOffsetTzInfo there is in hours, so
        // 2B is -8 h (libGammu agrees: -28800 s).
        let check = |octets: [u8; 7], expected: Timestamp, text: &str| {
            assert_eq!(Timestamp::decode(octets), expected, "{octets:02X?}");
            assert_eq!(expected.encode(), octets, "{expected:?}");
            assert_eq!(expected.to_string(), text);
        };
        check(
            [0x51, 0x11, 0x72, 0, 0, 0, 0x00],
            ts(2015, 11, 27, 0, 0, 0, 0),
            "2015-11-27T00:00:00+00:00",
        );
        check(
            [0x51, 0x11, 0x72, 0, 0, 0, 0x80],
            ts(2015, 11, 27, 0, 0, 0, 8),
            "2015-11-27T00:00:00+02:00",
        );
        check(
            [0x70, 0x40, 0x21, 0x32, 0x52, 0x24, 0x23],
            ts(2007, 4, 12, 23, 25, 42, 32),
            "2007-04-12T23:25:42+08:00",
        );
        check(
            [0x70, 0x40, 0x21, 0x32, 0x52, 0x24, 0x2B],
            ts(2007, 4, 12, 23, 25, 42, -32),
            "2007-04-12T23:25:42-08:00",
        );
        check(
            [0x99, 0x21, 0x13, 0x10, 0x00, 0x00, 0x1A],
            ts(1999, 12, 31, 1, 0, 0, -21),
            "1999-12-31T01:00:00-05:15",
        );
    }

    #[test]
    fn lenient_on_garbage() {
        let stamp = Timestamp::decode([0xFF; 7]);
        assert_eq!(stamp.month, 165);
        assert_eq!(stamp.tz_quarters, -85);
    }
}
