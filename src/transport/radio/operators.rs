//! Operator profiles: which network a SIM belongs to (MCC+MNC, the first 5 or 6 digits of its
//! IMSI), its name, APN, and the USSD codes to check the balance, the data balance and to top
//! up.
//!
//! Three layers, later ones winning: the public-domain table in `operators.tsv` (derived from
//! Debian's `mobile-broadband-provider-info`, 818 networks, 137 with a balance code); the
//! built-in Algerian profiles with their APNs and USSD codes, under the network codes that
//! table gives them (603-01 Mobilis, 603-02 Djezzy, 603-03 Ooredoo, formerly Nedjma); and
//! profiles given in the hub's configuration, read from an operators file (`smshub serve
//! --operators FILE`, TOML, or JSON when the name ends in `.json`; see
//! [`parse_operators_file`]). A file entry for a known network changes only the fields it
//! names; one for a new network must name it. Must never do I/O: the table is compiled in, and
//! the file's text is handed in by the caller.
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

/// The built-in Algerian profiles (APN, balance, data balance and top-up codes), under the
/// network codes of `mobile-broadband-provider-info`.
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

/// One entry of an operators file: every field but `mcc_mnc` is optional, and only the
/// fields given change a known network's profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilePatch {
    mcc_mnc: String,
    name: Option<String>,
    country: Option<String>,
    apn: Option<String>,
    balance_ussd: Option<String>,
    data_balance_ussd: Option<String>,
    recharge_ussd: Option<String>,
}

/// The shape of an operators file: `[[operator]]` tables in TOML, or `{"operator": [...]}` (or
/// a bare list) in JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorsFile {
    #[serde(default, alias = "operators")]
    operator: Vec<ProfilePatch>,
}

/// Why an operators file was refused; one line, naming the entry or position at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OperatorsFileError(String);

/// Whether `code` is a USSD code (`*100#`, `#123#`); `{code}` stands for a voucher when
/// `template`.
fn valid_ussd(code: &str, template: bool) -> bool {
    let code = if template {
        code.replacen("{code}", "0", 1)
    } else {
        code.to_string()
    };
    !code.is_empty()
        && code.len() <= 160
        && code.ends_with('#')
        && code
            .chars()
            .all(|c| c.is_ascii_digit() || "*#+".contains(c))
}

/// Reads an operators file (`json` picks JSON, otherwise TOML) into complete profiles: each
/// entry is laid over the built-in profile of its network (the compiled-in table and the
/// Algerian defaults), so the result can be given to [`Operators::new`] as overrides.
///
/// ```toml
/// [[operator]]
/// mcc_mnc = "60302"
/// balance_ussd = "*710#"
///
/// [[operator]]
/// mcc_mnc = "99999"
/// name = "Lab network"
/// apn = "lab"
/// balance_ussd = "*100#"
/// data_balance_ussd = "*100*2#"
/// recharge_ussd = "*100*{code}#"
/// ```
pub fn parse_operators_file(
    text: &str,
    json: bool,
) -> Result<Vec<OperatorProfile>, OperatorsFileError> {
    let fail = |message: String| OperatorsFileError(message);
    let patches = if json {
        let located = |err: serde_json::Error| {
            // serde_json's message already ends with "at line L column C".
            fail(err.to_string())
        };
        if text.trim_start().starts_with('[') {
            serde_json::from_str::<Vec<ProfilePatch>>(text).map_err(located)?
        } else {
            serde_json::from_str::<OperatorsFile>(text)
                .map_err(located)?
                .operator
        }
    } else {
        toml::from_str::<OperatorsFile>(text)
            .map_err(|err| {
                let message = err.message().trim().to_string();
                match err.span() {
                    Some(span) => {
                        let before = text.get(..span.start).unwrap_or("");
                        let line = before.matches('\n').count() + 1;
                        let column = before.len() - before.rfind('\n').map_or(0, |it| it + 1) + 1;
                        fail(format!("line {line}, column {column}: {message}"))
                    }
                    None => fail(message),
                }
            })?
            .operator
    };
    let built_in = Operators::default();
    let mut seen = std::collections::HashSet::new();
    let mut profiles = Vec::with_capacity(patches.len());
    for (idx, patch) in patches.into_iter().enumerate() {
        let code = patch.mcc_mnc.trim().to_string();
        let at = format!("operator {} ({code:?})", idx + 1);
        if !(5..=6).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_digit()) {
            return Err(fail(format!(
                "{at}: mcc_mnc must be 5 or 6 digits (MCC and MNC, e.g. \"60302\")"
            )));
        }
        if !seen.insert(code.clone()) {
            return Err(fail(format!("{at}: listed twice")));
        }
        for (field, value, template) in [
            ("balance_ussd", &patch.balance_ussd, false),
            ("data_balance_ussd", &patch.data_balance_ussd, false),
            ("recharge_ussd", &patch.recharge_ussd, true),
        ] {
            if let Some(value) = value
                && !value.is_empty()
                && !valid_ussd(value, template)
            {
                return Err(fail(format!(
                    "{at}: {field} {value:?} is not a USSD code (digits, * and #, ending in #{})",
                    if template {
                        "; {code} for the voucher"
                    } else {
                        ""
                    }
                )));
            }
        }
        let mut profile = match built_in.get(&code) {
            Some(known) => known.clone(),
            None => OperatorProfile {
                mcc_mnc: code.clone(),
                name: patch
                    .name
                    .clone()
                    .and_then(|it| non_empty(&it))
                    .ok_or_else(|| fail(format!("{at}: a network not built in needs a name")))?,
                country: None,
                apn: None,
                balance_ussd: None,
                data_balance_ussd: None,
                recharge_ussd: None,
            },
        };
        // A field given empty clears the built-in value.
        let set = |slot: &mut Option<String>, value: Option<String>| {
            if let Some(value) = value {
                *slot = non_empty(&value);
            }
        };
        if let Some(name) = patch.name.as_deref().and_then(non_empty) {
            profile.name = name;
        }
        set(&mut profile.country, patch.country);
        set(&mut profile.apn, patch.apn);
        set(&mut profile.balance_ussd, patch.balance_ussd);
        set(&mut profile.data_balance_ussd, patch.data_balance_ussd);
        set(&mut profile.recharge_ussd, patch.recharge_ussd);
        profiles.push(profile);
    }
    Ok(profiles)
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
    fn operators_files() {
        let toml = r#"
# Djezzy's balance through another menu; a lab network.
[[operator]]
mcc_mnc = "60302"
balance_ussd = "*710#"

[[operator]]
mcc_mnc = "99999"
name = "Lab network"
apn = "lab"
balance_ussd = "*100#"
data_balance_ussd = "*100*2#"
recharge_ussd = "*100*{code}#"
"#;
        let profiles = parse_operators_file(toml, false).expect("parses");
        assert_eq!(profiles.len(), 2);
        let djezzy = &profiles[0];
        assert_eq!(
            (
                djezzy.name.as_str(),
                djezzy.balance_ussd.as_deref(),
                djezzy.apn.as_deref(),
                djezzy.data_balance_ussd.as_deref()
            ),
            (
                "Djezzy",
                Some("*710#"),
                Some("djezzy.internet"),
                Some("*999#")
            ),
            "only the given field changes"
        );
        let operators = Operators::new(profiles);
        let lab = operators.for_imsi("999991234567890").expect("lab network");
        assert_eq!(
            (lab.name.as_str(), lab.recharge_ussd.as_deref()),
            ("Lab network", Some("*100*{code}#"))
        );

        let json = r#"{"operators": [{"mcc_mnc": "20801", "balance_ussd": ""}]}"#;
        let profiles = parse_operators_file(json, true).expect("parses");
        assert_eq!(
            (profiles[0].name.as_str(), profiles[0].balance_ussd.clone()),
            ("Orange", None),
            "an empty value clears the built-in one"
        );
        let bare = r#"[{"mcc_mnc": "60301", "name": "Mobilis DZ"}]"#;
        assert_eq!(
            parse_operators_file(bare, true).unwrap()[0].name,
            "Mobilis DZ"
        );

        let refused = |text: &str, json: bool, says: &str| {
            let err = parse_operators_file(text, json)
                .expect_err(text)
                .to_string();
            assert!(err.contains(says), "{text:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        };
        refused(
            "[[operator]]\nmcc_mnc = \"60302\"\nbalanse_ussd = \"*1#\"\n",
            false,
            "line 3, column 1: unknown field `balanse_ussd`",
        );
        refused("[[operator]\n", false, "line 1");
        refused("[[operator]]\nmcc_mnc = \"6030\"\n", false, "5 or 6 digits");
        refused("[[operator]]\nmcc_mnc = \"99998\"\n", false, "needs a name");
        refused(
            "[[operator]]\nmcc_mnc = \"60302\"\nbalance_ussd = \"rm -rf\"\n",
            false,
            "not a USSD code",
        );
        refused(
            "[[operator]]\nmcc_mnc = \"60302\"\n[[operator]]\nmcc_mnc = \"60302\"\n",
            false,
            "listed twice",
        );
        refused("{\"operator\": [}", true, "at line 1 column");
        assert!(parse_operators_file("", false).unwrap().is_empty());
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
