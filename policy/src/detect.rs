//! Content detectors: a `RegexSet` screens the text in one pass, then only the patterns that
//! hit run `find_iter`, and candidates that have a checksum (cards, IBANs) must pass it.
//! This is the first cut; the policy issue extends the catalogue (phone numbers by region,
//! gitleaks-style secret rules, prompt injection).

use meshos_types::Finding;
use regex::{Regex, RegexSet};

type Validator = fn(&str) -> bool;

struct Rule {
    entity: &'static str,
    detector: &'static str,
    pattern: &'static str,
    validate: Option<Validator>,
}

const RULES: &[Rule] = &[
    Rule {
        entity: "EMAIL",
        detector: "regex:email",
        pattern: r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b",
        validate: None,
    },
    Rule {
        entity: "CREDIT_CARD",
        detector: "regex+luhn:credit_card",
        pattern: r"\b(?:\d[ -]?){12,18}\d\b",
        validate: Some(luhn_valid),
    },
    Rule {
        entity: "IBAN",
        detector: "regex+mod97:iban",
        pattern: r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
        validate: Some(iban_valid),
    },
    Rule {
        entity: "SSN",
        detector: "regex:us_ssn",
        pattern: r"\b(?:00[1-9]|0[1-9]\d|[1-578]\d\d|6[0-57-9]\d|66[0-57-9])-(?:0[1-9]|[1-9]\d)-(?:000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d{3})\b",
        validate: None,
    },
    Rule {
        entity: "PHONE",
        detector: "regex:e164_phone",
        pattern: r"(?:^|[^\w+])(\+[1-9]\d{0,2}[ .-]?(?:\(?\d{1,4}\)?[ .-]?){2,4}\d{2,4})\b",
        validate: Some(phone_plausible),
    },
    Rule {
        entity: "IP_ADDRESS",
        detector: "regex:ipv4",
        pattern: r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
        validate: None,
    },
    Rule {
        entity: "AWS_ACCESS_KEY",
        detector: "regex:aws_access_key_id",
        pattern: r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
        validate: None,
    },
    Rule {
        entity: "GITHUB_TOKEN",
        detector: "regex:github_token",
        pattern: r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})\b",
        validate: None,
    },
    Rule {
        entity: "SLACK_TOKEN",
        detector: "regex:slack_token",
        pattern: r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",
        validate: None,
    },
    Rule {
        entity: "STRIPE_KEY",
        detector: "regex:stripe_key",
        pattern: r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b",
        validate: None,
    },
    Rule {
        entity: "PRIVATE_KEY",
        detector: "regex:pem_private_key",
        pattern: r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----",
        validate: None,
    },
    Rule {
        entity: "JWT",
        detector: "regex:jwt",
        pattern: r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b",
        validate: None,
    },
];

/// The compiled detector catalogue. Build once, share across requests.
pub struct Detectors {
    screen: RegexSet,
    patterns: Vec<Regex>,
}

impl std::fmt::Debug for Detectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detectors")
            .field("rules", &self.patterns.len())
            .finish()
    }
}

impl Default for Detectors {
    fn default() -> Self {
        Self::new()
    }
}

impl Detectors {
    pub fn new() -> Detectors {
        // The patterns are constants of this file; a bad one is caught by the unit tests.
        let screen =
            RegexSet::new(RULES.iter().map(|r| r.pattern)).unwrap_or_else(|_| RegexSet::empty());
        let patterns = RULES
            .iter()
            .filter_map(|r| Regex::new(r.pattern).ok())
            .collect();
        Detectors { screen, patterns }
    }

    /// Findings with UTF-8 byte offsets into `text`, sorted by position.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut findings = Vec::new();
        for rule_index in self.screen.matches(text).iter() {
            let (Some(rule), Some(re)) = (RULES.get(rule_index), self.patterns.get(rule_index))
            else {
                continue;
            };
            for caps in re.captures_iter(text) {
                // A rule with a capture group marks the entity inside a wider context match.
                let Some(m) = caps.get(1).or_else(|| caps.get(0)) else {
                    continue;
                };
                if rule.validate.is_some_and(|ok| !ok(m.as_str())) {
                    continue;
                }
                findings.push(Finding {
                    entity: rule.entity.to_string(),
                    start: m.start(),
                    end: m.end(),
                    detector: rule.detector.to_string(),
                });
            }
        }
        // A card number also looks like a phone number or parts of an IBAN: keep the earliest,
        // longest finding where spans overlap so redaction masks each byte once.
        findings.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut kept: Vec<Finding> = Vec::with_capacity(findings.len());
        for f in findings {
            match kept.last() {
                Some(last) if f.start < last.end => continue,
                _ => kept.push(f),
            }
        }
        kept
    }
}

/// Replaces every finding with `[ENTITY]`. Findings must be sorted and non-overlapping, as
/// `Detectors::scan` returns them.
pub fn redact(text: &str, findings: &[Finding]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for f in findings {
        if f.start < pos || f.end > text.len() {
            continue;
        }
        out.push_str(&text[pos..f.start]);
        out.push('[');
        out.push_str(&f.entity);
        out.push(']');
        pos = f.end;
    }
    out.push_str(&text[pos..]);
    out
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

fn luhn_valid(candidate: &str) -> bool {
    let ds = digits(candidate);
    if !(13..=19).contains(&ds.len()) {
        return false;
    }
    let sum: u32 = ds
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if !i.is_multiple_of(2) {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn iban_valid(candidate: &str) -> bool {
    let compact: String = candidate.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let value = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        // Letters expand to two digits (A=10 … Z=35); feed them digit by digit.
        for d in if value >= 10 {
            vec![value / 10, value % 10]
        } else {
            vec![value]
        } {
            remainder = (remainder * 10 + d) % 97;
        }
    }
    remainder == 1
}

fn phone_plausible(candidate: &str) -> bool {
    (8..=15).contains(&digits(candidate).len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entities(text: &str) -> Vec<(String, String)> {
        Detectors::new()
            .scan(text)
            .into_iter()
            .map(|f| (f.entity, text[f.start..f.end].to_string()))
            .collect()
    }

    #[test]
    fn every_rule_compiles() {
        for r in RULES {
            Regex::new(r.pattern).unwrap();
        }
        assert_eq!(Detectors::new().patterns.len(), RULES.len());
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
    fn checksums_reject_lookalikes() {
        assert!(
            entities("order 4111 1111 1111 1112")
                .iter()
                .all(|(e, _)| e != "CREDIT_CARD")
        );
        assert!(
            entities("DE89 3704 0044 0532 0130 00")
                .iter()
                .any(|(e, _)| e == "IBAN")
        );
        assert!(
            entities("DE88 3704 0044 0532 0130 00")
                .iter()
                .all(|(e, _)| e != "IBAN")
        );
    }

    #[test]
    fn finds_secrets() {
        let found = entities("key AKIAIOSFODNN7EXAMPLE and -----BEGIN RSA PRIVATE KEY-----");
        assert!(found.contains(&("AWS_ACCESS_KEY".into(), "AKIAIOSFODNN7EXAMPLE".into())));
        assert!(found.iter().any(|(e, _)| e == "PRIVATE_KEY"));
    }

    #[test]
    fn clean_text_has_no_findings() {
        assert!(entities("Summarise the quarterly report in three bullet points.").is_empty());
    }

    #[test]
    fn redaction_masks_each_finding() {
        let text = "write to a@b.io or +44 20 7946 0958 now";
        let d = Detectors::new();
        let out = redact(text, &d.scan(text));
        assert_eq!(out, "write to [EMAIL] or [PHONE] now");
    }
}
