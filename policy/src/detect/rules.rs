//! The rule file (`policy/rules/detectors.toml`) compiled into a [`Detectors`] catalogue: each
//! rule's regex, its prefilter (keywords near which it runs, or the digits a run must hold),
//! its validator by name, and its rank where findings overlap.

use regex::{Regex, RegexSet};

use super::validators::{VALIDATORS, Validator, validator};
use super::{Detectors, EntityClass, RuleError};
use crate::injection::InjectionDetector;

const RULE_FILE: &str = include_str!("../../rules/detectors.toml");

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    entity: String,
    class: EntityClass,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    validate: Option<String>,
    #[serde(default)]
    generic: bool,
    /// A detector implemented in code rather than a regex: `person_names` or `places`.
    #[serde(default)]
    builtin: Option<String>,
    /// gitleaks-style prefilter: the regex runs only near one of these (exact case; an
    /// all-lowercase keyword also matches its Capitalised and UPPER forms).
    #[serde(default)]
    keywords: Vec<String>,
    /// Prefilter for numbers: the regex runs only near a run of at least this many digits.
    #[serde(default)]
    digits: Option<usize>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rule: Vec<RuleSpec>,
}

pub(super) struct Rule {
    pub(super) entity: String,
    pub(super) class: EntityClass,
    pub(super) detector: String,
    pub(super) validate: Option<Validator>,
    /// Which rule wins where spans overlap (higher wins): gazetteer guesses lose to generic
    /// rules, which lose to personal-data rules, which lose to specific credential rules.
    pub(super) rank: u8,
}

#[derive(Clone, Copy)]
enum Builtin {
    PersonNames,
    Places,
}

impl Detectors {
    /// The shipped catalogue (`policy/rules/detectors.toml`). Its validity is a unit test, so a
    /// broken file cannot ship; should it fail anyway, no rules load rather than a crash.
    pub fn new() -> Detectors {
        Detectors::from_toml(RULE_FILE).unwrap_or_else(|_| Detectors {
            screen: RegexSet::empty(),
            screened: Vec::new(),
            digit_screen: RegexSet::empty(),
            digit_rules: Vec::new(),
            min_digits: usize::MAX,
            keywords: None,
            keyword_rules: Vec::new(),
            keyword_chars: Vec::new(),
            patterns: Vec::new(),
            pattern_rule: Vec::new(),
            rules: Vec::new(),
            person_rule: None,
            place_rule: None,
            injection: InjectionDetector::new(),
        })
    }

    /// Compiles a rule file in the format of `policy/rules/detectors.toml`.
    pub fn from_toml(text: &str) -> Result<Detectors, RuleError> {
        let file: RuleFile = toml::from_str(text).map_err(|e| RuleError::Toml(e.to_string()))?;
        let mut patterns = Vec::with_capacity(file.rule.len());
        let mut pattern_rule = Vec::with_capacity(file.rule.len());
        let mut rules = Vec::with_capacity(file.rule.len());
        let (mut person_rule, mut place_rule) = (None, None);
        let (mut screened, mut digit_rules) = (Vec::new(), Vec::new());
        let mut keyword_index: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        for spec in file.rule {
            let fail = |message: String| RuleError::Rule {
                id: spec.id.clone(),
                message,
            };
            let validate = match spec.validate.as_deref() {
                None => None,
                Some(name) => Some(validator(name).ok_or_else(|| {
                    fail(format!("unknown validate {name:?}; expected {VALIDATORS}"))
                })?),
            };
            let builtin = match spec.builtin.as_deref() {
                None => None,
                Some("person_names") => Some(Builtin::PersonNames),
                Some("places") => Some(Builtin::Places),
                Some(other) => {
                    return Err(fail(format!(
                        "unknown builtin {other:?}; expected person_names or places"
                    )));
                }
            };
            let index = rules.len();
            match (builtin, spec.regex.as_deref()) {
                (Some(_), Some(_)) => return Err(fail("builtin rules take no regex".into())),
                (None, None) => return Err(fail("a rule needs a regex or a builtin".into())),
                (Some(Builtin::PersonNames), None) => person_rule = Some(index),
                (Some(Builtin::Places), None) => place_rule = Some(index),
                (None, Some(re)) => {
                    let pattern = patterns.len();
                    patterns.push(Regex::new(re).map_err(|e| fail(e.to_string()))?);
                    pattern_rule.push(index);
                    match (spec.digits, spec.keywords.is_empty()) {
                        (Some(_), false) => {
                            return Err(fail("use keywords or digits, not both".into()));
                        }
                        (Some(n), true) => digit_rules.push((pattern, n)),
                        (None, false) => {
                            for k in &spec.keywords {
                                if k.is_empty() {
                                    return Err(fail("empty keyword".into()));
                                }
                                for form in keyword_forms(k) {
                                    let rules = keyword_index.entry(form).or_default();
                                    if !rules.contains(&pattern) {
                                        rules.push(pattern);
                                    }
                                }
                            }
                        }
                        (None, true) => screened.push(pattern),
                    }
                }
            }
            let rank = match (builtin.is_some(), spec.generic, spec.class) {
                (true, _, _) => 0,
                (false, true, _) => 1,
                (false, false, EntityClass::Pii) => 2,
                (false, false, EntityClass::Secret) => 3,
            };
            rules.push(Rule {
                detector: format!("rule:{}", spec.id),
                entity: spec.entity,
                class: spec.class,
                validate,
                rank,
            });
        }
        let set = |members: &mut dyn Iterator<Item = usize>| {
            RegexSet::new(members.filter_map(|i| patterns.get(i).map(Regex::as_str))).map_err(|e| {
                RuleError::Rule {
                    id: "*".into(),
                    message: e.to_string(),
                }
            })
        };
        let screen = set(&mut screened.iter().copied())?;
        let digit_screen = set(&mut digit_rules.iter().map(|&(p, _)| p))?;
        let min_digits = digit_rules
            .iter()
            .map(|&(_, n)| n)
            .min()
            .unwrap_or(usize::MAX);
        let mut keyword_chars = Vec::new();
        let (words, keyword_rules): (Vec<String>, Vec<Vec<usize>>) = keyword_index
            .into_iter()
            .filter_map(|(word, rules)| {
                let mut chars = word.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => {
                        keyword_chars.push((c, rules));
                        None
                    }
                    _ => Some((word, rules)),
                }
            })
            .unzip();
        let keywords = if words.is_empty() {
            None
        } else {
            Some(
                // Case-sensitive with the case forms listed: an ASCII case-insensitive
                // automaton cannot use the SIMD prefilter and cost more than all the regexes.
                // Leftmost-longest, not overlapping: overlapping search walks the automaton
                // byte by byte; keywords that overlap ("--" in "-----BEGIN") lose nothing,
                // since the longer one opens a window around the same bytes.
                aho_corasick::AhoCorasick::builder()
                    .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                    .build(&words)
                    .map_err(|e| RuleError::Rule {
                        id: "*".into(),
                        message: e.to_string(),
                    })?,
            )
        };
        Ok(Detectors {
            screen,
            screened,
            digit_screen,
            digit_rules,
            min_digits,
            keywords,
            keyword_rules,
            keyword_chars,
            patterns,
            pattern_rule,
            rules,
            person_rule,
            place_rule,
            injection: InjectionDetector::new(),
        })
    }
}

/// A keyword as written, and for an all-lowercase word also "Word" and "WORD".
fn keyword_forms(k: &str) -> Vec<String> {
    let mut forms = vec![k.to_string()];
    if k.bytes().all(|c| c.is_ascii_lowercase()) {
        let mut cap = k.to_string();
        cap[..1].make_ascii_uppercase();
        forms.push(cap);
        forms.push(k.to_ascii_uppercase());
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::entities;

    #[test]
    fn shipped_rule_file_compiles() {
        let d = Detectors::from_toml(RULE_FILE).unwrap();
        assert!(d.rules.len() >= 20);
        assert_eq!(d.class_of("EMAIL"), Some(EntityClass::Pii));
        assert_eq!(d.class_of("AWS_ACCESS_KEY"), Some(EntityClass::Secret));
        // The keyword automaton must stay a SIMD (Teddy) search: at most 64 patterns, none
        // shorter than 3 bytes (one-character keywords go to memchr).
        let ac = d.keywords.as_ref().unwrap();
        assert!(
            ac.patterns_len() <= 64,
            "{} keyword forms",
            ac.patterns_len()
        );
        assert!(ac.min_pattern_len() >= 3);
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
        let no_regex = "[[rule]]\nid='z'\nentity='Z'\nclass='pii'\n";
        let err = Detectors::from_toml(no_regex).unwrap_err().to_string();
        assert!(
            err.contains("rule z") && err.contains("regex or a builtin"),
            "{err}"
        );
        let bad_builtin = "[[rule]]\nid='w'\nentity='W'\nclass='pii'\nbuiltin='ner'\n";
        let err = Detectors::from_toml(bad_builtin).unwrap_err().to_string();
        assert!(
            err.contains("rule w") && err.contains("person_names"),
            "{err}"
        );
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
    fn finds_secrets() {
        let found = entities("key AKIAIOSFODNN7EXAMPLE and -----BEGIN RSA PRIVATE KEY-----");
        assert!(found.contains(&("AWS_ACCESS_KEY".into(), "AKIAIOSFODNN7EXAMPLE".into())));
        assert!(found.iter().any(|(e, _)| e == "PRIVATE_KEY"));
    }
}
