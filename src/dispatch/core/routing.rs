//! Routing by number: rules that send numbers of a prefix (`+49`, `+4915`) through SIMs of a
//! given home operator or label, tried in priority order (a fallback order). A message whose
//! number no enabled rule matches may go through any SIM; one that some rule matches goes
//! only through a SIM that one of its rules admits, the highest priority first.
//!
//! Pure: no I/O, no clock. Few rules, matched by string prefix; the dispatch pass looks them
//! up only while there are any.

use uuid::Uuid;

/// One routing rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRule {
    pub id: Uuid,
    pub name: String,
    /// Higher is tried first.
    pub priority: i32,
    /// E.164 prefixes of the numbers it applies to.
    pub prefixes: Vec<String>,
    /// Only SIMs of this home operator (case-insensitive).
    pub via_operator: Option<String>,
    /// Only SIMs with this label (case-insensitive).
    pub via_label: Option<String>,
}

impl RoutingRule {
    /// Whether the rule applies to `number` (E.164).
    pub fn matches(&self, number: &str) -> bool {
        self.prefixes
            .iter()
            .any(|it| number.starts_with(it.as_str()))
    }

    /// Whether a SIM with this label and home operator may carry the numbers it matches.
    pub fn admits(&self, label: Option<&str>, operator: Option<&str>) -> bool {
        let same = |want: &Option<String>, have: Option<&str>| {
            want.as_ref()
                .is_none_or(|want| have.is_some_and(|have| have.eq_ignore_ascii_case(want)))
        };
        same(&self.via_label, label) && same(&self.via_operator, operator)
    }

    /// The rule in words, for `waiting_reason`.
    pub fn describe(&self) -> String {
        let mut via = Vec::new();
        if let Some(label) = &self.via_label {
            via.push(format!("labelled {label:?}"));
        }
        if let Some(operator) = &self.via_operator {
            via.push(format!("of operator {operator:?}"));
        }
        format!(
            "routing rule {:?} ({} only through SIMs {})",
            self.name,
            self.prefixes.join(", "),
            via.join(" and ")
        )
    }
}

/// The enabled rules, highest priority first (then by name).
#[derive(Debug, Default)]
pub struct Routes {
    rules: Vec<RoutingRule>,
}

impl Routes {
    /// Adds or replaces a rule.
    pub fn put(&mut self, rule: RoutingRule) {
        self.rules.retain(|it| it.id != rule.id);
        self.rules.push(rule);
        self.rules
            .sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
    }

    /// Removes a rule.
    pub fn remove(&mut self, id: Uuid) {
        self.rules.retain(|it| it.id != id);
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule at `at` (an index `matching` gave).
    pub fn get(&self, at: usize) -> &RoutingRule {
        &self.rules[at]
    }

    /// Indexes of the rules that apply to `number`, in the order they are tried, into `out`.
    pub fn matching(&self, number: &str, out: &mut Vec<usize>) {
        out.clear();
        out.extend(
            self.rules
                .iter()
                .enumerate()
                .filter(|(_, it)| it.matches(number))
                .map(|(at, _)| at),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, priority: i32, prefixes: &[&str], label: Option<&str>) -> RoutingRule {
        RoutingRule {
            id: Uuid::new_v4(),
            name: name.into(),
            priority,
            prefixes: prefixes.iter().map(|it| it.to_string()).collect(),
            via_operator: None,
            via_label: label.map(str::to_string),
        }
    }

    #[test]
    fn rules_match_by_prefix_in_priority_order() {
        let mut routes = Routes::default();
        routes.put(rule("de", 1, &["+49"], Some("de")));
        routes.put(rule("de-mobile", 5, &["+4915", "+4917"], Some("mobile")));
        routes.put(rule("fr", 1, &["+33"], Some("fr")));
        let check = |number: &str, expected: &[&str]| {
            let mut out = Vec::new();
            routes.matching(number, &mut out);
            let names: Vec<&str> = out.iter().map(|it| routes.get(*it).name.as_str()).collect();
            assert_eq!(names, expected, "{number}");
        };
        check("+4915112345678", &["de-mobile", "de"]);
        check("+4930123456", &["de"]);
        check("+33612345678", &["fr"]);
        check("+14155550100", &[]);
    }

    #[test]
    fn a_rule_admits_sims_by_label_and_operator() {
        let mut it = rule("de", 1, &["+49"], Some("DE-sim"));
        assert!(it.admits(Some("de-sim"), None));
        assert!(!it.admits(Some("other"), None));
        assert!(!it.admits(None, Some("Telekom")));
        it.via_operator = Some("Telekom".into());
        assert!(it.admits(Some("de-sim"), Some("telekom")));
        assert!(!it.admits(Some("de-sim"), Some("Vodafone")));
        it.via_label = None;
        assert!(it.admits(None, Some("TELEKOM")));
        assert!(it.describe().contains("\"de\""));
    }

    #[test]
    fn a_replaced_rule_moves_and_a_removed_one_is_gone() {
        let mut routes = Routes::default();
        let mut a = rule("a", 1, &["+1"], Some("x"));
        routes.put(a.clone());
        routes.put(rule("b", 2, &["+1"], Some("y")));
        a.priority = 3;
        routes.put(a.clone());
        let mut out = Vec::new();
        routes.matching("+1555", &mut out);
        assert_eq!(routes.get(out[0]).name, "a");
        routes.remove(a.id);
        routes.matching("+1555", &mut out);
        assert_eq!(out.len(), 1);
        assert!(!routes.is_empty());
    }
}
