//! Content detectors: a `RegexSet` screens the text in one pass, then only the patterns that
//! hit run `find_iter`, and candidates that have a checksum (cards, IBANs) must pass it.
//! This is the first cut; the policy issue extends the catalogue (phone numbers by region,
//! gitleaks-style secret rules, prompt injection).

use meshos_types::Finding;
use regex::{Regex, RegexSet};

use crate::injection::{InjectionDetector, InjectionVerdict};

type Validator = fn(&str) -> bool;

const RULE_FILE: &str = include_str!("../rules/detectors.toml");

/// What a rule protects: personal data or credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityClass {
    Pii,
    Secret,
}

impl EntityClass {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityClass::Pii => "pii",
            EntityClass::Secret => "secret",
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    entity: String,
    class: EntityClass,
    regex: String,
    #[serde(default)]
    validate: Option<String>,
    #[serde(default)]
    generic: bool,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rule: Vec<RuleSpec>,
}

struct Rule {
    entity: String,
    class: EntityClass,
    detector: String,
    validate: Option<Validator>,
    generic: bool,
}

impl Rule {
    /// Which rule wins where spans overlap (higher wins).
    fn rank(&self) -> u8 {
        match (self.generic, self.class) {
            (true, _) => 0,
            (false, EntityClass::Pii) => 1,
            (false, EntityClass::Secret) => 2,
        }
    }
}

/// A detector rule file that cannot be used, with the rule at fault.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("detector rules are not valid TOML: {0}")]
    Toml(String),
    #[error("detector rule {id}: {message}")]
    Rule { id: String, message: String },
}

fn validator(name: &str) -> Option<Validator> {
    match name {
        "luhn" => Some(luhn_valid),
        "iban_mod97" => Some(iban_valid),
        "digits_8_15" => Some(phone_plausible),
        "not_placeholder" => Some(not_placeholder),
        "ipv6" => Some(ipv6_valid),
        _ => None,
    }
}

/// The compiled detector catalogue. Build once, share across requests.
pub struct Detectors {
    screen: RegexSet,
    patterns: Vec<Regex>,
    rules: Vec<Rule>,
    injection: InjectionDetector,
}

impl std::fmt::Debug for Detectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detectors")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl Default for Detectors {
    fn default() -> Self {
        Self::new()
    }
}

impl Detectors {
    /// The shipped catalogue (`policy/rules/detectors.toml`). Its validity is a unit test, so a
    /// broken file cannot ship; should it fail anyway, no rules load rather than a crash.
    pub fn new() -> Detectors {
        Detectors::from_toml(RULE_FILE).unwrap_or_else(|_| Detectors {
            screen: RegexSet::empty(),
            patterns: Vec::new(),
            rules: Vec::new(),
            injection: InjectionDetector::new(),
        })
    }

    /// Compiles a rule file in the format of `policy/rules/detectors.toml`.
    pub fn from_toml(text: &str) -> Result<Detectors, RuleError> {
        let file: RuleFile = toml::from_str(text).map_err(|e| RuleError::Toml(e.to_string()))?;
        let mut patterns = Vec::with_capacity(file.rule.len());
        let mut rules = Vec::with_capacity(file.rule.len());
        for spec in file.rule {
            let fail = |message: String| RuleError::Rule {
                id: spec.id.clone(),
                message,
            };
            let re = Regex::new(&spec.regex).map_err(|e| fail(e.to_string()))?;
            let validate = match spec.validate.as_deref() {
                None => None,
                Some(name) => Some(validator(name).ok_or_else(|| {
                    fail(format!(
                        "unknown validate {name:?}; expected luhn, iban_mod97, digits_8_15, not_placeholder or ipv6"
                    ))
                })?),
            };
            patterns.push(re);
            rules.push(Rule {
                detector: format!("rule:{}", spec.id),
                entity: spec.entity,
                class: spec.class,
                validate,
                generic: spec.generic,
            });
        }
        let screen =
            RegexSet::new(patterns.iter().map(Regex::as_str)).map_err(|e| RuleError::Rule {
                id: "*".into(),
                message: e.to_string(),
            })?;
        Ok(Detectors {
            screen,
            patterns,
            rules,
            injection: InjectionDetector::new(),
        })
    }

    /// Prompt-injection screening of the same text (phrases over normalised text, heuristics,
    /// decoded payloads).
    pub fn scan_injection(&self, text: &str) -> InjectionVerdict {
        self.injection.scan(text)
    }

    /// The class of an entity kind this catalogue reports, if it reports it.
    pub fn class_of(&self, entity: &str) -> Option<EntityClass> {
        self.rules
            .iter()
            .find(|r| r.entity == entity)
            .map(|r| r.class)
    }

    /// Every entity kind of a class, e.g. all credential kinds.
    pub fn entities_of(&self, class: EntityClass) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .rules
            .iter()
            .filter(|r| r.class == class)
            .map(|r| r.entity.as_str())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Findings with UTF-8 byte offsets into `text`, sorted by position.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut findings = Vec::new();
        for rule_index in self.screen.matches(text).iter() {
            let (Some(rule), Some(re)) =
                (self.rules.get(rule_index), self.patterns.get(rule_index))
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
                findings.push((
                    Finding {
                        entity: rule.entity.clone(),
                        start: m.start(),
                        end: m.end(),
                        detector: rule.detector.clone(),
                    },
                    rule.rank(),
                ));
            }
        }
        // Spans overlap: a card number also looks like a phone number, a token in a URL also
        // looks like an e-mail address or a password assignment. A specific credential rule
        // beats personal-data rules, which beat generic rules; then the longer span wins. Each
        // byte ends up in one finding, so redaction masks it once.
        findings.sort_by(|a, b| a.0.start.cmp(&b.0.start).then(b.0.end.cmp(&a.0.end)));
        let mut kept: Vec<(Finding, u8)> = Vec::with_capacity(findings.len());
        for (f, rank) in findings {
            match kept.last_mut() {
                Some((last, last_rank)) if f.start < last.end => {
                    let better = rank > *last_rank
                        || (rank == *last_rank && f.end - f.start > last.end - last.start);
                    if better {
                        *last = f;
                        *last_rank = rank;
                    }
                }
                _ => kept.push((f, rank)),
            }
        }
        kept.into_iter().map(|(f, _)| f).collect()
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

/// A real IPv6 address with at least three groups written out (so `a::b` in prose is not one).
fn ipv6_valid(candidate: &str) -> bool {
    candidate.parse::<std::net::Ipv6Addr>().is_ok()
        && candidate.split(':').filter(|g| !g.is_empty()).count() >= 3
}

/// Rejects template placeholders and masked values that look like assignments of secrets.
fn not_placeholder(candidate: &str) -> bool {
    let v = candidate.trim_matches(|c| matches!(c, ',' | ';' | ')' | '.'));
    let masked = !v.is_empty() && v.chars().all(|c| matches!(c, '*' | 'x' | 'X' | '•' | '.'));
    let templated = v.starts_with("${")
        || v.starts_with("{{")
        || v.starts_with('<')
        || v.starts_with('[')
        || v.starts_with('%')
        || v.starts_with("$(");
    !(masked
        || templated
        || v.eq_ignore_ascii_case("password")
        || v.eq_ignore_ascii_case("changeme"))
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
    fn shipped_rule_file_compiles() {
        let d = Detectors::from_toml(RULE_FILE).unwrap();
        assert!(d.rules.len() >= 20);
        assert_eq!(d.class_of("EMAIL"), Some(EntityClass::Pii));
        assert_eq!(d.class_of("AWS_ACCESS_KEY"), Some(EntityClass::Secret));
    }

    #[test]
    fn credential_kinds_known_to_trust_match_the_rules() {
        let d = Detectors::new();
        let mut shared: Vec<&str> = meshos_types::CREDENTIAL_ENTITIES.to_vec();
        shared.sort_unstable();
        assert_eq!(d.entities_of(EntityClass::Secret), shared);
    }

    #[test]
    fn bad_rule_files_name_the_rule() {
        let bad_regex = "[[rule]]\nid='x'\nentity='X'\nclass='pii'\nregex='('\n";
        let err = Detectors::from_toml(bad_regex).unwrap_err().to_string();
        assert!(err.contains("rule x"), "{err}");
        let bad_validator =
            "[[rule]]\nid='y'\nentity='Y'\nclass='pii'\nregex='a'\nvalidate='crc'\n";
        let err = Detectors::from_toml(bad_validator).unwrap_err().to_string();
        assert!(err.contains("rule y") && err.contains("luhn"), "{err}");
    }

    #[test]
    fn finds_more_secret_shapes() {
        let cases = [
            ("GITLAB_TOKEN", "token glpat-abcdefghij0123456789 here"),
            (
                "GOOGLE_API_KEY",
                "key=AIzaSyA1234567890abcdefghijklmnopqrstuv",
            ),
            ("NPM_TOKEN", "npm_abcdefghijklmnopqrstuvwxyz0123456789"),
            ("PASSWORD", "db_password = \"hunter2hunter2\""),
            (
                "AWS_SECRET_KEY",
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
        ];
        for (entity, text) in cases {
            assert!(
                entities(text).iter().any(|(e, _)| e == entity),
                "{entity} not found in {text:?}: {:?}",
                entities(text)
            );
        }
        assert!(entities("password = ${DB_PASSWORD}").is_empty());
        assert!(entities("pwd: [hidden]").is_empty());
        assert!(entities("password=********").is_empty());
        // Values may contain $ and *.
        assert!(
            entities("DB_PASSWORD=A$ls3FRkRx@!hT")
                .contains(&("PASSWORD".into(), "A$ls3FRkRx@!hT".into()))
        );
        assert!(
            entities("db at postgres://app:s3cr3tPass@db.internal/app")
                .contains(&("PASSWORD".into(), "s3cr3tPass".into()))
        );
    }

    #[test]
    fn finds_ipv6_but_not_times_or_mac_like_text() {
        for (text, addr) in [
            ("from 2001:db8:aa19::c6cb failed", "2001:db8:aa19::c6cb"),
            (
                "peer fe80:0000:0000:0000:0202:b3ff:fe1e:8329 up",
                "fe80:0000:0000:0000:0202:b3ff:fe1e:8329",
            ),
        ] {
            assert!(
                entities(text).contains(&("IP_ADDRESS".into(), addr.into())),
                "{text}: {:?}",
                entities(text)
            );
        }
        assert!(entities("meeting at 12:30:45 today").is_empty());
        assert!(entities("use std::io::Read;").is_empty());
    }

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
