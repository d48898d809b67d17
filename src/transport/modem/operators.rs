//! Operator profiles: which network a SIM belongs to (MCC+MNC, the first 5 or 6 digits of its
//! IMSI), its name, APN, and the USSD codes to check the balance, the data balance and to top
//! up.
//!
//! Three layers, later ones winning: the public-domain table in `operators.tsv` (derived from
//! Debian's `mobile-broadband-provider-info`, 818 networks, 137 with a balance code); the
//! built-in Algerian profiles of the first seed system with their correct network codes (603-01
//! Mobilis, 603-02 Djezzy, 603-03 Ooredoo, formerly Nedjma); and profiles given in the hub's
//! configuration. Must never do I/O: the table is compiled in.
//!
//! To refresh the table: `apt-get download mobile-broadband-provider-info`, extract
//! `serviceproviders.xml`, and write one line per `<gsm><network-id>` with the provider name,
//! the first internet APN and the `<balance-check>`/`<balance-top-up>` USSD codes (`CODE`
//! replaced by `{code}`), as the header of `operators.tsv` describes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

const TABLE: &str = include_str!("operators.tsv");

/// What the hub knows about an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorProfile {
    /// MCC and MNC, e.g. `60301`.
    pub mcc_mnc: String,
    /// Display name.
    pub name: String,
    /// ISO country code, lower case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Internet APN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apn: Option<String>,
    /// USSD code that answers with the balance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_ussd: Option<String>,
    /// USSD code that answers with the remaining data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_balance_ussd: Option<String>,
    /// USSD template to top up, `{code}` standing for the voucher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recharge_ussd: Option<String>,
}

/// The built-in Algerian profiles (first seed system), with the network codes of
/// `mobile-broadband-provider-info` (the seed had them wrong).
pub fn algerian_defaults() -> Vec<OperatorProfile> {
    let profile =
        |mcc_mnc: &str, name: &str, apn: &str, balance: &str, data: &str, recharge: &str| {
            OperatorProfile {
                mcc_mnc: mcc_mnc.to_string(),
                name: name.to_string(),
                country: Some("dz".to_string()),
                apn: Some(apn.to_string()),
                balance_ussd: Some(balance.to_string()),
                data_balance_ussd: Some(data.to_string()),
                recharge_ussd: Some(recharge.to_string()),
            }
        };
    vec![
        profile(
            "60301",
            "Mobilis",
            "internet",
            "*100#",
            "*100*2#",
            "*130*{code}#",
        ),
        profile(
            "60302",
            "Djezzy",
            "djezzy.internet",
            "*100#",
            "*999#",
            "*100*{code}#",
        ),
        profile(
            "60303",
            "Ooredoo",
            "internet",
            "*223#",
            "*223*2#",
            "*100*{code}#",
        ),
    ]
}

/// Operator profiles by MCC+MNC.
#[derive(Debug, Clone)]
pub struct Operators {
    by_code: HashMap<String, OperatorProfile>,
}

impl Default for Operators {
    fn default() -> Self {
        Operators::new(Vec::new())
    }
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

impl Operators {
    /// The compiled-in table, the Algerian defaults, then `overrides`.
    pub fn new(overrides: Vec<OperatorProfile>) -> Operators {
        let mut by_code = HashMap::new();
        for line in TABLE
            .lines()
            .filter(|it| !it.starts_with('#') && !it.trim().is_empty())
        {
            let cols: Vec<&str> = line.split('\t').collect();
            let col = |idx: usize| cols.get(idx).copied().unwrap_or("");
            let Some(mcc_mnc) = non_empty(col(0)) else {
                continue;
            };
            let profile = OperatorProfile {
                mcc_mnc: mcc_mnc.clone(),
                name: non_empty(col(2)).unwrap_or_else(|| mcc_mnc.clone()),
                country: non_empty(col(1)),
                apn: non_empty(col(3)),
                balance_ussd: non_empty(col(4)),
                data_balance_ussd: None,
                recharge_ussd: non_empty(col(5)),
            };
            by_code.insert(mcc_mnc, profile);
        }
        for profile in algerian_defaults().into_iter().chain(overrides) {
            by_code.insert(profile.mcc_mnc.clone(), profile);
        }
        Operators { by_code }
    }

    /// The profile of a network code (`60302`).
    pub fn get(&self, mcc_mnc: &str) -> Option<&OperatorProfile> {
        self.by_code.get(mcc_mnc)
    }

    /// The profile of the network an IMSI belongs to: a 3-digit MNC is tried first, then a
    /// 2-digit one.
    pub fn for_imsi(&self, imsi: &str) -> Option<&OperatorProfile> {
        let digits = imsi.trim();
        [6, 5]
            .iter()
            .filter_map(|len| digits.get(..*len))
            .find_map(|code| self.get(code))
    }

    /// How many networks are known.
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    /// Whether no network is known.
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algerian_networks_have_their_real_codes() {
        let operators = Operators::default();
        let check = |imsi: &str, name: &str, balance: &str| {
            let profile = operators.for_imsi(imsi).expect(imsi);
            assert_eq!(
                (profile.name.as_str(), profile.balance_ussd.as_deref()),
                (name, Some(balance)),
                "{imsi}"
            );
        };
        check("603010123456789", "Mobilis", "*100#");
        check("603020123456789", "Djezzy", "*100#");
        check("603030123456789", "Ooredoo", "*223#");
        assert_eq!(
            operators
                .get("60303")
                .and_then(|it| it.recharge_ussd.as_deref()),
            Some("*100*{code}#")
        );
    }

    #[test]
    fn the_public_table_is_loaded() {
        let operators = Operators::default();
        assert!(operators.len() > 800, "{}", operators.len());
        let orange = operators.get("20801").expect("Orange France");
        assert_eq!(
            (orange.name.as_str(), orange.balance_ussd.as_deref()),
            ("Orange", Some("#123#"))
        );
        // A 3-digit MNC (AT&T, 310-410).
        assert_eq!(
            operators
                .for_imsi("310410123456789")
                .map(|it| it.name.as_str()),
            Some("AT&T")
        );
        assert!(operators.for_imsi("999").is_none());
    }

    #[test]
    fn configuration_overrides_defaults() {
        let mut custom = algerian_defaults().remove(1);
        custom.balance_ussd = Some("*710#".into());
        let operators = Operators::new(vec![custom]);
        assert_eq!(
            operators
                .get("60302")
                .and_then(|it| it.balance_ussd.as_deref()),
            Some("*710#")
        );
    }
}
