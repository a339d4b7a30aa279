//! Content detectors: the [`Detectors`] catalogue that turns submitted text into findings.
//!
//! A `RegexSet` screens the text in one pass; only the patterns that hit run `find_iter`, and
//! each candidate must pass its rule's validator (Luhn, IBAN mod-97, SSA rules, libphonenumber
//! metadata through the `phonenumber` crate, password shape). PERSON and LOCATION come from a
//! gazetteer pass over capitalised words, not from a model: they are deliberately light, and
//! their recall is measured against spaCy in `bench/detectors`. Every finding carries UTF-8
//! byte offsets into the original text.
//!
//! One job per file:
//! * `rules`: the rule file (`policy/rules/detectors.toml`) compiled into a catalogue:
//!   regexes, prefilters (keywords, digit runs), validators by name, overlap ranks.
//! * `scan`: the pipeline over one text: RegexSet screen and prefilter windows → `find_iter`
//!   → validator → overlap resolution → findings.
//! * `validators`: the checks a regex candidate must pass (checksums, shapes, metadata).
//! * [`gazetteer`]: PERSON and LOCATION from name and place lists plus cues.

mod gazetteer;
mod rules;
mod scan;
mod validators;

use regex::{Regex, RegexSet};

use crate::injection::{ContentSource, InjectionDetector, InjectionVerdict};
use rules::Rule;

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

/// A detector rule file that cannot be used, with the rule at fault.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("detector rules are not valid TOML: {0}")]
    Toml(String),
    #[error("detector rule {id}: {message}")]
    Rule { id: String, message: String },
}

/// The compiled detector catalogue. Build once, share across requests.
pub struct Detectors {
    /// Screen over the whole text for rules without a prefilter.
    screen: RegexSet,
    /// Indexes (into `patterns`) of the rules `screen` covers.
    screened: Vec<usize>,
    /// Screen over the windows around digit runs, for the rules with `digits`.
    digit_screen: RegexSet,
    /// Indexes (into `patterns`) of those rules, and the digits each needs.
    digit_rules: Vec<(usize, usize)>,
    /// The fewest digits any digit rule needs (no digit window opens below it).
    min_digits: usize,
    /// All keywords of all rules longer than one character; pattern i of the automaton is
    /// `keyword_rules[i]`.
    keywords: Option<aho_corasick::AhoCorasick>,
    keyword_rules: Vec<Vec<usize>>,
    /// One-character keywords ("@"), found with memchr, and their rules.
    keyword_chars: Vec<(char, Vec<usize>)>,
    patterns: Vec<Regex>,
    /// For each pattern, the index of its rule in `rules`.
    pattern_rule: Vec<usize>,
    rules: Vec<Rule>,
    person_rule: Option<usize>,
    place_rule: Option<usize>,
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
    /// Prompt-injection screening of the same text (phrases over normalised text, heuristics,
    /// decoded payloads).
    pub fn scan_injection(&self, text: &str) -> InjectionVerdict {
        self.injection.scan(text)
    }

    /// The injection screen's rules alone (see `InjectionDetector::scan_rules_only`).
    pub fn scan_injection_rules_only(&self, text: &str) -> InjectionVerdict {
        self.injection.scan_rules_only(text)
    }

    /// `scan_injection` for content that came from `source` (a tool result or a retrieved
    /// document is screened more strictly than what the user typed).
    pub fn scan_injection_from(&self, text: &str, source: ContentSource) -> InjectionVerdict {
        self.injection.scan_from(text, source)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_kinds_known_to_trust_match_the_rules() {
        let d = Detectors::new();
        let mut shared: Vec<&str> = meshos_types::CREDENTIAL_ENTITIES.to_vec();
        shared.sort_unstable();
        assert_eq!(d.entities_of(EntityClass::Secret), shared);
    }
}
