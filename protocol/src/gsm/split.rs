//! Splitting a text into SMS parts, one character at a time.
//!
//! A character is never cut: an extension character (escape pair, 2 septets) or a character
//! outside the Basic Multilingual Plane (surrogate pair, 2 code units) goes whole into the next
//! part when it does not fit. Must never panic or slice a string off a character boundary.

use super::{Encoding, RefSize, capacity, cost};

/// The texts of the parts of `text`, or `None` if a character has no form in `encoding`.
pub(super) fn split(text: &str, encoding: Encoding, ref_size: RefSize) -> Option<Vec<&str>> {
    let mut costs = Vec::with_capacity(text.len());
    for (index, c) in text.char_indices() {
        costs.push((index, cost(encoding, c)?));
    }
    let total: usize = costs.iter().map(|(_, cost)| cost).sum();
    if total <= capacity(encoding, false, ref_size) {
        return Some(vec![text]);
    }
    let per_part = capacity(encoding, true, ref_size);
    let (mut parts, mut start, mut used) = (Vec::new(), 0, 0);
    for (index, cost) in costs {
        if used + cost > per_part {
            parts.push(text.get(start..index)?);
            start = index;
            used = 0;
        }
        used += cost;
    }
    parts.push(text.get(start..)?);
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_cuts_a_character() {
        let check = |text: &str, encoding, ref_size, expected: &[usize]| {
            let parts = split(text, encoding, ref_size).unwrap_or_default();
            let lens: Vec<usize> = parts.iter().map(|p| p.chars().count()).collect();
            assert_eq!(lens, expected, "{text:?}");
            assert_eq!(parts.concat(), text);
        };
        // 152 'a' then '€' (2 septets) does not fit in 153: it opens the second part.
        check(
            &format!("{}€{}", "a".repeat(152), "b".repeat(10)),
            Encoding::Gsm7,
            RefSize::EightBit,
            &[152, 11],
        );
        // 66 code units then an emoji (2 units) does not fit in 67.
        check(
            &format!("{}😀{}", "я".repeat(66), "я".repeat(10)),
            Encoding::Ucs2,
            RefSize::EightBit,
            &[66, 11],
        );
        check(
            &"😀".repeat(40),
            Encoding::Ucs2,
            RefSize::SixteenBit,
            &[33, 7],
        );
        check("", Encoding::Gsm7, RefSize::EightBit, &[0]);
    }
}
