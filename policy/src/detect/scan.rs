//! The detection pipeline over one text: rules without a prefilter run where one `RegexSet`
//! pass over the whole text says they can match; keyword rules run only in windows around an
//! Aho-Corasick keyword hit; number rules only in windows around runs of digits, screened by
//! their own `RegexSet`. Each match is checked by its rule's validator, the gazetteer adds
//! PERSON and LOCATION, and overlapping candidates are resolved by rank so each byte ends up
//! in at most one finding.

use meshos_types::Finding;

use super::{Detectors, gazetteer};

/// A candidate finding before overlaps are resolved; strings are made only for the winners.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    rule: usize,
    rank: u8,
}

impl Detectors {
    /// Findings with UTF-8 byte offsets into `text`, sorted by position.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut spans: Vec<Span> = Vec::new();
        // Rules without a prefilter: the whole text, screened in one RegexSet pass.
        if !self.screened.is_empty() {
            for i in self.screen.matches(text).iter() {
                if let Some(&p) = self.screened.get(i) {
                    self.run(p, text, 0, text.len(), &mut spans);
                }
            }
        }
        // Keyword rules: only near a keyword hit (gitleaks' `keywords`), one Aho-Corasick pass
        // for all of them.
        if self.keywords.is_some() || !self.keyword_chars.is_empty() {
            let mut windows: Vec<(usize, usize, usize)> = Vec::new();
            let mut open = |rules: &[usize], start: usize, end: usize| {
                let (start, end) = window(text, start, end, KEYWORD_BEFORE, KEYWORD_AFTER);
                for &p in rules {
                    windows.push((p, start, end));
                }
            };
            if let Some(ac) = &self.keywords {
                for m in ac.find_iter(text) {
                    if let Some(rules) = self.keyword_rules.get(m.pattern().as_usize()) {
                        open(rules, m.start(), m.end());
                    }
                }
            }
            for (c, rules) in &self.keyword_chars {
                for (at, _) in text.match_indices(*c) {
                    open(rules, at, at + c.len_utf8());
                }
            }
            windows.sort_unstable();
            let mut merged: Option<(usize, usize, usize)> = None;
            for (p, start, end) in windows {
                match merged.as_mut() {
                    Some((mp, _, me)) if *mp == p && start <= *me => *me = (*me).max(end),
                    _ => {
                        if let Some((mp, ms, me)) = merged.take() {
                            self.run(mp, text, ms, me, &mut spans);
                        }
                        merged = Some((p, start, end));
                    }
                }
            }
            if let Some((mp, ms, me)) = merged {
                self.run(mp, text, ms, me, &mut spans);
            }
        }
        // Number rules: only around runs of digits, and only the rules the RegexSet screen
        // finds in that window.
        if !self.digit_rules.is_empty() {
            for (start, end, digits) in digit_windows(text, self.min_digits) {
                let Some(window_text) = text.get(start..end) else {
                    continue;
                };
                for i in self.digit_screen.matches(window_text).iter() {
                    if let Some(&(p, need)) = self.digit_rules.get(i)
                        && digits >= need
                    {
                        self.run(p, text, start, end, &mut spans);
                    }
                }
            }
        }
        if self.person_rule.is_some() || self.place_rule.is_some() {
            gazetteer::scan(text, |entity, start, end| {
                let rule = match entity {
                    gazetteer::Entity::Person => self.person_rule,
                    gazetteer::Entity::Location => self.place_rule,
                };
                if let Some(rule) = rule {
                    spans.push(Span {
                        start,
                        end,
                        rule,
                        rank: 0,
                    });
                }
            });
        }
        // Spans overlap: a card number also looks like a phone number, a token in a URL also
        // looks like an e-mail address or a password assignment. The higher rank wins, then
        // the longer span. Each byte ends up in one finding, so redaction masks it once.
        spans.sort_unstable_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut kept: Vec<Span> = Vec::with_capacity(spans.len());
        for s in spans {
            match kept.last_mut() {
                Some(last) if s.start < last.end => {
                    // Same rank and length: the rule listed first wins (the file lists the
                    // more specific shapes first: a dashed SSN before a national phone
                    // number that happens to parse).
                    let (len, last_len) = (s.end - s.start, last.end - last.start);
                    let better = s.rank > last.rank
                        || (s.rank == last.rank
                            && (len > last_len || (len == last_len && s.rule < last.rule)));
                    if better {
                        *last = s;
                    }
                }
                _ => kept.push(s),
            }
        }
        kept.into_iter()
            .filter_map(|s| {
                let rule = self.rules.get(s.rule)?;
                Some(Finding {
                    entity: rule.entity.clone(),
                    start: s.start,
                    end: s.end,
                    detector: rule.detector.clone(),
                })
            })
            .collect()
    }

    /// Runs pattern `p` over `text[from..to]` (matches start at or after `from` and end by
    /// `to`; the text before `from` still counts for look-behind such as `\b`), validates each
    /// candidate and records it.
    fn run(&self, p: usize, text: &str, from: usize, to: usize, spans: &mut Vec<Span>) {
        let (Some(re), Some(&rule_index)) = (self.patterns.get(p), self.pattern_rule.get(p)) else {
            return;
        };
        let (Some(rule), Some(hay)) = (self.rules.get(rule_index), text.get(..to)) else {
            return;
        };
        let mut push = |start: usize, end: usize| {
            let span = match rule.validate {
                Some(ok) => ok(text, start, end),
                None => Some((start, end)),
            };
            if let Some((start, end)) = span {
                spans.push(Span {
                    start,
                    end,
                    rule: rule_index,
                    rank: rule.rank,
                });
            }
        };
        let mut at = from;
        if re.captures_len() > 1 {
            // Capture groups mark the entity inside a wider context match; a rule with
            // alternatives may have several groups, the one that took part wins.
            while at < to {
                let Some(caps) = re.captures_at(hay, at) else {
                    break;
                };
                let Some(whole) = caps.get(0) else { break };
                if let Some(m) = caps.iter().skip(1).flatten().next() {
                    push(m.start(), m.end());
                }
                at = next_start(hay, whole.start(), whole.end());
            }
        } else {
            while at < to {
                let Some(m) = re.find_at(hay, at) else { break };
                push(m.start(), m.end());
                at = next_start(hay, m.start(), m.end());
            }
        }
    }
}

/// Where the next search starts after a match (past an empty match by one character).
fn next_start(hay: &str, start: usize, end: usize) -> usize {
    if end > start {
        return end;
    }
    end + hay
        .get(end..)
        .and_then(|s| s.chars().next())
        .map_or(1, char::len_utf8)
}

/// How far around a keyword its rule's regex looks: the context before a keyword (an e-mail
/// address's local part before `@`) and the value after it (a token, `= "value"`).
const KEYWORD_BEFORE: usize = 96;
const KEYWORD_AFTER: usize = 256;
/// How far around a run of digits the number rules look: before, for an IBAN's country code
/// and letters ("NL91 ABNA " before its digits), `+` and brackets; after, for IPv6's trailing
/// hex. Windows then widen to whitespace.
const DIGITS_BEFORE: usize = 16;
const DIGITS_AFTER: usize = 12;

/// `[start, end)` widened by `before`/`after` bytes and then out to whitespace (or the text's
/// ends). Entities never contain the whitespace a window ends at beyond what the widening
/// covers, and `\b` at a whitespace edge means the same in the window as in the text.
fn window(text: &str, start: usize, end: usize, before: usize, after: usize) -> (usize, usize) {
    let b = text.as_bytes();
    let mut s = start.saturating_sub(before);
    while s > 0 && !b[s].is_ascii_whitespace() {
        s -= 1;
    }
    let mut e = end.saturating_add(after).min(b.len());
    while e < b.len() && !b[e].is_ascii_whitespace() {
        e += 1;
    }
    (s, e)
}

/// Windows around runs of digits (digits with at most three other bytes between them, not
/// across a line break) that hold at least `min_digits` digits: `(start, end, digits)` in
/// order. Windows of neighbouring runs may overlap; they are not merged, so each stays small
/// and its RegexSet screen names only the rules that fit that run (an entity seen from two
/// windows is found twice and deduplicated with the other overlaps).
fn digit_windows(text: &str, min_digits: usize) -> Vec<(usize, usize, usize)> {
    let b = text.as_bytes();
    let mut out: Vec<(usize, usize, usize)> = Vec::new();
    let mut i = 0;
    while let Some(first) = next_digit(b, i) {
        let (mut last, mut count, mut j) = (first, 1, first + 1);
        while j < b.len() && j <= last + 4 && b[j] != b'\n' {
            if b[j].is_ascii_digit() {
                last = j;
                count += 1;
            }
            j += 1;
        }
        i = last + 1;
        if count < min_digits {
            continue;
        }
        let (s, e) = window(text, first, last + 1, DIGITS_BEFORE, DIGITS_AFTER);
        match out.last_mut() {
            Some(prev) if s == prev.0 => {
                prev.1 = prev.1.max(e);
                prev.2 = prev.2.max(count);
            }
            _ => out.push((s, e, count)),
        }
    }
    out
}

/// The next ASCII digit at or after `i`, eight bytes at a time: prose is mostly letters.
fn next_digit(b: &[u8], mut i: usize) -> Option<usize> {
    while i + 8 <= b.len() {
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(&b[i..i + 8]);
        let x = u64::from_le_bytes(chunk);
        // Bytes 0x30..=0x39: x ^ 0x30 is below 10; with the high bit clear, adding 0x76 sets
        // it exactly for values from 10 up, so a clear high bit marks a digit.
        let y = (x ^ 0x3030_3030_3030_3030) & 0x7F7F_7F7F_7F7F_7F7F;
        let ge10 = y.wrapping_add(0x7676_7676_7676_7676) & 0x8080_8080_8080_8080;
        let digit = !ge10 & !x & 0x8080_8080_8080_8080;
        if digit != 0 {
            return Some(i + (digit.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    (i..b.len()).find(|&j| b[j].is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{assert_found, entities, found};

    #[test]
    fn a_specific_token_beats_the_generic_password_rule() {
        let text = "git clone https://x-access-token:ghp_0123456789abcdefghijABCDEFGHIJ012345@github.com/o/r.git";
        let found = entities(text);
        assert!(found.iter().any(|(e, _)| e == "GITHUB_TOKEN"), "{found:?}");
        assert!(found.iter().all(|(e, _)| e != "PASSWORD"), "{found:?}");
    }

    #[test]
    fn non_ascii_text_around_entities_still_matches() {
        let text = "Müller: bitte an jürgen@example.de, Karte 4111 1111 1111 1111 — danke";
        let found = entities(text);
        // ASCII word boundaries: the address is found from its ASCII part on.
        assert!(
            found
                .iter()
                .any(|(e, v)| e == "EMAIL" && v.ends_with("rgen@example.de")),
            "{found:?}"
        );
        assert!(found.iter().any(|(e, _)| e == "CREDIT_CARD"), "{found:?}");
    }

    #[test]
    fn finds_email_and_card_with_byte_offsets_after_multibyte_text() {
        let text = "Grüße — mail jane.doe@example.com, card 4111 1111 1111 1111.";
        let found = Detectors::new().scan(text);
        let email = found.iter().find(|f| f.entity == "EMAIL").unwrap();
        assert_eq!(&text[email.start..email.end], "jane.doe@example.com");
        let card = found.iter().find(|f| f.entity == "CREDIT_CARD").unwrap();
        assert_eq!(&text[card.start..card.end], "4111 1111 1111 1111");
    }

    #[test]
    fn clean_text_has_no_findings() {
        assert!(entities("Summarise the quarterly report in three bullet points.").is_empty());
    }

    #[test]
    fn redaction_masks_each_finding() {
        let text = "write to a@b.io or +44 20 7946 0958 now";
        let d = Detectors::new();
        let mask = [crate::RedactionRule {
            mode: crate::RedactionMode::Mask,
            entities: None,
        }];
        let out = crate::redact::redact(text, &d.scan(text), &mask, None);
        assert_eq!(out.text, "write to [EMAIL] or [PHONE] now");
    }

    #[test]
    fn prefilter_windows_keep_offsets_and_context() {
        // Entities far into a long text, next to multi-byte text, and a rule file without
        // prefilters (whole-text RegexSet) finding the same thing.
        let mut text = "Grüße — ".repeat(200);
        text.push_str(
            "card 4111 1111 1111 1111, mail jürgen.x@example.de, key AKIAIOSFODNN7EXAMPLE",
        );
        assert_found(&text, "CREDIT_CARD", "4111 1111 1111 1111");
        assert_found(&text, "AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE");
        let plain = "[[rule]]\nid='c'\nentity='CREDIT_CARD'\nclass='pii'\nregex='(?-u:\\b)(?:\\d[ -]?){12,18}\\d(?-u:\\b)'\nvalidate='card'\n";
        let d = Detectors::from_toml(plain).unwrap();
        let f = d.scan(&text);
        assert_eq!(f.len(), 1);
        assert_eq!(&text[f[0].start..f[0].end], "4111 1111 1111 1111");
        let both =
            "[[rule]]\nid='b'\nentity='B'\nclass='pii'\nregex='x'\nkeywords=['x']\ndigits=3\n";
        let err = Detectors::from_toml(both).unwrap_err().to_string();
        assert!(err.contains("rule b"), "{err}");
    }

    #[test]
    fn regex_rules_beat_gazetteer_guesses_on_overlap() {
        let text = "mail Paul.Harris@example.com or call Paul";
        let got = found(text);
        assert!(
            got.iter()
                .any(|(e, v, _)| e == "EMAIL" && v == "Paul.Harris@example.com"),
            "{got:?}"
        );
        assert!(
            got.iter().any(|(e, v, _)| e == "PERSON" && v == "Paul"),
            "{got:?}"
        );
        assert_eq!(got.len(), 2, "{got:?}");
    }
}
