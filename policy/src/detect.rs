//! Content detectors. A `RegexSet` screens the text in one pass; only the patterns that hit run
//! `find_iter`, and each candidate must pass its rule's validator (Luhn, IBAN mod-97, SSA rules,
//! libphonenumber metadata through the `phonenumber` crate, password shape). PERSON and LOCATION
//! come from a gazetteer pass over capitalised words (see [`gazetteer`]), not from a model: they
//! are deliberately light, and their recall is measured against spaCy in `bench/detectors`.
//! Every finding carries UTF-8 byte offsets into the original text.

use meshos_types::Finding;
use regex::{Regex, RegexSet};

use crate::injection::{InjectionDetector, InjectionVerdict};

/// A validator sees the candidate inside its text: it may narrow the span (a password's value
/// without the sentence's full stop) or reject the candidate (`None`).
type Validator = fn(&str, usize, usize) -> Option<(usize, usize)>;

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

struct Rule {
    entity: String,
    class: EntityClass,
    detector: String,
    validate: Option<Validator>,
    /// Which rule wins where spans overlap (higher wins): gazetteer guesses lose to generic
    /// rules, which lose to personal-data rules, which lose to specific credential rules.
    rank: u8,
}

/// A detector rule file that cannot be used, with the rule at fault.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("detector rules are not valid TOML: {0}")]
    Toml(String),
    #[error("detector rule {id}: {message}")]
    Rule { id: String, message: String },
}

const VALIDATORS: &str = "luhn, card, iban_mod97, digits_8_15, phone, ssn, not_placeholder, \
                          password_value or ipv6";

fn validator(name: &str) -> Option<Validator> {
    match name {
        "luhn" => Some(luhn_valid),
        "card" => Some(card_valid),
        "iban_mod97" => Some(iban_valid),
        "digits_8_15" => Some(phone_plausible),
        "phone" => Some(phone_valid),
        "ssn" => Some(ssn_valid),
        "not_placeholder" => Some(not_placeholder),
        "password_value" => Some(password_value),
        "ipv6" => Some(ipv6_valid),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Builtin {
    PersonNames,
    Places,
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

/// A candidate finding before overlaps are resolved; strings are made only for the winners.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    rule: usize,
    rank: u8,
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
}

impl Detectors {
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

// ------------------------------------------------------------------------------- validators

fn digit_count(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

/// A number must stand alone: a valid-looking group inside a longer run of digit groups (the
/// tail of an IBAN, a part of an ISBN, a card number's middle) is not an entity of its own.
fn standalone_number(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    let sep = |c: u8| matches!(c, b' ' | b'-' | b'.' | b'/');
    if start > 0 {
        let p = b[start - 1];
        if p.is_ascii_alphanumeric() || p == b'_' {
            return false;
        }
        if sep(p) && start >= 2 && b[start - 2].is_ascii_digit() {
            return false;
        }
    }
    if end < b.len() {
        let n = b[end];
        if n.is_ascii_alphanumeric() || n == b'_' {
            return false;
        }
        if sep(n) && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
            return false;
        }
    }
    true
}

fn luhn_ok(candidate: &str) -> bool {
    let mut sum = 0u32;
    let mut n = 0usize;
    for d in candidate.bytes().rev().filter(u8::is_ascii_digit) {
        let d = u32::from(d - b'0');
        let x = if n % 2 == 1 { d * 2 } else { d };
        sum += if x > 9 { x - 9 } else { x };
        n += 1;
    }
    (13..=19).contains(&n) && sum.is_multiple_of(10)
}

fn luhn_valid(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    luhn_ok(&text[start..end]).then_some((start, end))
}

/// A payment card: Luhn, an issuer prefix in use (2–6: Mastercard 2-series, Amex/Diners/JCB,
/// Visa, Mastercard/Maestro, Discover/UnionPay), groups as cards print them (none, fours, or
/// Amex 4-6-5), and not part of a longer number (an IBAN's digits, an ISBN).
fn card_valid(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let c = &text[start..end];
    if !luhn_ok(c) || !matches!(c.as_bytes().first(), Some(b'2'..=b'6')) {
        return None;
    }
    let groups: Vec<usize> = c
        .split([' ', '-'])
        .filter(|g| !g.is_empty())
        .map(str::len)
        .collect();
    let printed = match groups.as_slice() {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        [first @ .., last] => first.iter().all(|&g| g == 4) && (1..=4).contains(last),
        [] => false,
    };
    (printed && standalone_number(text, start, end)).then_some((start, end))
}

fn iban_valid(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let compact: Vec<u8> = text[start..end]
        .bytes()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if !(15..=34).contains(&compact.len()) {
        return None;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for &c in tail.iter().chain(head) {
        let value = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return None,
        };
        // Letters expand to two digits (A=10 … Z=35).
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    (remainder == 1).then_some((start, end))
}

/// A real IPv6 address with at least three groups written out (so `a::b` in prose is not one).
fn ipv6_valid(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let c = &text[start..end];
    (c.parse::<std::net::Ipv6Addr>().is_ok() && c.split(':').filter(|g| !g.is_empty()).count() >= 3)
        .then_some((start, end))
}

fn is_placeholder(v: &str) -> bool {
    let v = v.trim_matches(|c| matches!(c, ',' | ';' | ')' | '.'));
    let masked = !v.is_empty() && v.chars().all(|c| matches!(c, '*' | 'x' | 'X' | '•' | '.'));
    let templated = v.starts_with("${")
        || v.starts_with("{{")
        || v.starts_with('<')
        || v.starts_with('[')
        || v.starts_with('%')
        || v.starts_with("$(");
    // `$DB_PASSWORD`: a shell variable, not its value.
    let variable = v.len() > 1
        && v.starts_with('$')
        && v[1..]
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
    masked
        || templated
        || variable
        || v.eq_ignore_ascii_case("password")
        || v.eq_ignore_ascii_case("changeme")
}

/// Rejects template placeholders and masked values that look like assignments of secrets.
fn not_placeholder(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    (!is_placeholder(&text[start..end])).then_some((start, end))
}

/// A password value in prose or on a command line, where there is no `key = value` to vouch for
/// it: it must look like a password (6+ characters of at least two kinds: lower, upper, digit,
/// symbol), so "my password is wrong" is not one. A full stop or comma closing the sentence is
/// not part of the value.
fn password_value(text: &str, start: usize, mut end: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let at_end = |e: usize| e >= b.len() || b[e].is_ascii_whitespace();
    if end - start > 6 && at_end(end) && matches!(b[end - 1], b'.' | b',' | b';' | b':' | b')') {
        end -= 1;
    }
    let v = &text[start..end];
    if v.len() < 6 || is_placeholder(v) {
        return None;
    }
    let kinds = [
        v.bytes().any(|c| c.is_ascii_lowercase()),
        v.bytes().any(|c| c.is_ascii_uppercase()),
        v.bytes().any(|c| c.is_ascii_digit()),
        v.bytes().any(|c| !c.is_ascii_alphanumeric()),
    ];
    (kinds.iter().filter(|&&k| k).count() >= 2).then_some((start, end))
}

fn phone_plausible(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    (8..=15)
        .contains(&digit_count(&text[start..end]))
        .then_some((start, end))
}

/// A US Social Security number: the regex enforces the SSA's rules (area not 000, 666 or 9xx,
/// group not 00, serial not 0000); here it must also stand alone, so `123 45 6789` inside a
/// longer digit sequence (an account number printed in groups) is not one.
fn ssn_valid(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let digits: Vec<u8> = text[start..end]
        .bytes()
        .filter(u8::is_ascii_digit)
        .collect();
    // Numbers the SSA never issued and that appear in examples: one digit repeated.
    let repeated = digits.windows(2).all(|w| w[0] == w[1]);
    (digits.len() == 9 && !repeated && standalone_number(text, start, end)).then_some((start, end))
}

/// Digits after a four-character upper-case group ("IE05 QOAO 0173 9175 …") are the tail of an
/// IBAN (one whose checksum failed), not a phone number.
fn after_iban_group(text: &str, start: usize) -> bool {
    let b = text.as_bytes();
    start >= 6
        && b[start - 1] == b' '
        && b[start - 5..start - 1]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && !b[start - 6].is_ascii_alphanumeric()
}

/// Dates and times written with separators (`03.12.2024`, `2024-01-12`, `12/03/24`) are never
/// phone numbers, whatever the metadata says.
fn date_like(c: &str) -> bool {
    let groups: Vec<&str> = c.split(['.', '-', '/', ' ']).collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    matches!(lens.as_slice(), [1 | 2, 1 | 2, 2 | 4] | [4, 1 | 2, 1 | 2])
}

/// Regions tried for a national number with a trunk prefix `0` (or a bracketed area code),
/// most common first. Each try parses and checks the number against libphonenumber metadata.
const TRUNK_ZERO_REGIONS: &[phonenumber::country::Id] = {
    use phonenumber::country::Id::*;
    &[
        GB, DE, FR, IN, NL, AU, IT, BE, AT, CH, IE, SE, JP, BR, ZA, NZ, MX,
    ]
};
/// Regions whose national numbers have no trunk prefix: NANP first.
const NO_TRUNK_REGIONS: &[phonenumber::country::Id] = {
    use phonenumber::country::Id::*;
    &[US, IT, ES, PL, PT, DK, NO]
};

/// A phone number, validated against libphonenumber's metadata (through the `phonenumber`
/// crate): `+` numbers by their country code, national numbers by the regions whose format
/// they could be. Only candidates from the regex reach this, so texts without a number-like
/// run never pay for it.
fn phone_valid(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    // The crate compiles its metadata regexes lazily into a shared LRU cache of 100; checking
    // numbers of many regions needs more than that, and a thrashing cache recompiled regexes
    // on every candidate (half a millisecond per text). Enlarge it once; it only grows as
    // regions are used.
    static CACHE: std::sync::Once = std::sync::Once::new();
    CACHE.call_once(|| {
        if let Ok(mut cache) = phonenumber::metadata::DATABASE.cache().lock() {
            cache.set_capacity(4096);
        }
    });
    let c = &text[start..end];
    let n = digit_count(c);
    if !(7..=15).contains(&n)
        || !standalone_number(text, start, end)
        || after_iban_group(text, start)
    {
        return None;
    }
    let valid_in = |region: Option<phonenumber::country::Id>| {
        phonenumber::parse(region, c).is_ok_and(|num| phonenumber::is_valid(&num))
    };
    if c.starts_with('+') {
        return valid_in(None).then_some((start, end));
    }
    if date_like(c) {
        return None;
    }
    let national = c.trim_start_matches('(');
    let regions = if national.starts_with('0') {
        TRUNK_ZERO_REGIONS
    } else {
        NO_TRUNK_REGIONS
    };
    regions
        .iter()
        .any(|&r| valid_in(Some(r)))
        .then_some((start, end))
}

/// PERSON and LOCATION without a model: one pass over the capitalised words of the text, looked
/// up in gazetteers (US Census given names and surnames, GeoNames places; see the headers of
/// `policy/rules/person_names.txt` and `places.txt`), combined with cues around them.
///
/// * PERSON: a known given name that is not also an English word ("Paul", "Hans-Georg" when
///   both parts are known), extended over the surname that follows; an ambiguous given name
///   ("Will", "Mark") only with a known surname after it; and any capitalised name after a
///   strong cue: a title (`Mr.`, `Dr.`, `Frau`), a greeting (`Hi …,`), a sign-off line
///   (`Best regards,⏎Name`), a chat speaker (`[10:42] Name:`) or an introduction
///   (`my name is …`).
/// * LOCATION: places are reported only where the text ties them to a person (`lives in`,
///   `born in`, `moved to`, `ship to`, `from`, `city:` …). A place alone ("the weather in
///   Paris") is not personal data, and redacting every city would break ordinary prompts.
///
/// This is honest about its limits: names missing from the US-centric Census lists, lowercase
/// names and places mentioned without a cue are missed; capitalised common words that are
/// names produce false positives. Tokens are hashed (lowercased, Latin accents folded) and
/// looked up in one hash map; nothing allocates per token.
mod gazetteer {
    use std::collections::HashMap;
    use std::hash::{BuildHasherDefault, Hasher};
    use std::sync::OnceLock;

    const PERSON_FILE: &str = include_str!("../rules/person_names.txt");
    const PLACE_FILE: &str = include_str!("../rules/places.txt");

    const GIVEN: u8 = 1;
    const GIVEN_AMBIGUOUS: u8 = 2;
    const SURNAME: u8 = 4;
    const SURNAME_AMBIGUOUS: u8 = 8;
    const PLACE: u8 = 16;
    const PLACE_AMBIGUOUS: u8 = 32;
    /// The words so far are the start of a longer place name ("New" of "New York").
    const PLACE_PREFIX: u8 = 64;
    /// A capitalised word that is not a name after a cue ("Hi Team", "born in March").
    const NOT_NAME: u8 = 128;
    /// Longest place name looked up, in words.
    const MAX_PLACE_WORDS: usize = 5;
    /// Longest name taken after a cue, in words.
    const MAX_NAME_WORDS: usize = 4;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Entity {
        Person,
        Location,
    }

    /// Keys are already FNV hashes; hashing them again would only cost time.
    #[derive(Default)]
    struct Prehashed(u64);

    impl Hasher for Prehashed {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
            }
        }
        fn write_u64(&mut self, n: u64) {
            self.0 = n;
        }
    }

    struct Gazetteer {
        flags: HashMap<u64, u8, BuildHasherDefault<Prehashed>>,
        titles: CueSet,
        greetings: CueSet,
        introductions: CueSet,
        sign_offs: CueSet,
        strong_place_cues: CueSet,
        place_cues: CueSet,
    }

    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0100_0000_01b3;

    fn feed(h: u64, b: u8) -> u64 {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    }

    /// Lowercases one character and folds Latin accents, so "Müller" finds the Census
    /// "MULLER" and "São Paulo" finds "Sao Paulo"; other letters hash as their lowercase.
    fn feed_char(mut h: u64, c: char) -> u64 {
        if c.is_ascii() {
            return feed(h, c.to_ascii_lowercase() as u8);
        }
        let folded: &str = match c {
            'À'..='Å' | 'à'..='å' | 'Ā' | 'ā' | 'Ă' | 'ă' | 'Ą' | 'ą' => "a",
            'Æ' | 'æ' => "ae",
            'Ç' | 'ç' | 'Ć' | 'ć' | 'Č' | 'č' => "c",
            'È'..='Ë' | 'è'..='ë' | 'Ē' | 'ē' | 'Ė' | 'ė' | 'Ę' | 'ę' | 'Ě' | 'ě' => {
                "e"
            }
            'Ì'..='Ï' | 'ì'..='ï' | 'Ī' | 'ī' | 'İ' | 'ı' => "i",
            'Ð' | 'ð' | 'Đ' | 'đ' | 'Ď' | 'ď' => "d",
            'Ñ' | 'ñ' | 'Ń' | 'ń' | 'Ň' | 'ň' => "n",
            'Ò'..='Ö' | 'Ø' | 'ò'..='ö' | 'ø' | 'Ō' | 'ō' | 'Ő' | 'ő' => "o",
            'Œ' | 'œ' => "oe",
            'Ù'..='Ü' | 'ù'..='ü' | 'Ū' | 'ū' | 'Ů' | 'ů' | 'Ű' | 'ű' => "u",
            'Ý' | 'ý' | 'ÿ' | 'Ÿ' => "y",
            'ß' => "ss",
            'Ł' | 'ł' | 'Ľ' | 'ľ' => "l",
            'Ś' | 'ś' | 'Š' | 'š' | 'Ş' | 'ş' | 'Ș' | 'ș' => "s",
            'Ź' | 'ź' | 'Ż' | 'ż' | 'Ž' | 'ž' => "z",
            'Ř' | 'ř' => "r",
            'Ť' | 'ť' | 'Ţ' | 'ţ' | 'Ț' | 'ț' => "t",
            'Ğ' | 'ğ' => "g",
            '’' => "'",
            _ => {
                for l in c.to_lowercase() {
                    let mut buf = [0u8; 4];
                    for &b in l.encode_utf8(&mut buf).as_bytes() {
                        h = feed(h, b);
                    }
                }
                return h;
            }
        };
        for b in folded.bytes() {
            h = feed(h, b);
        }
        h
    }

    fn is_letter(c: char) -> bool {
        c.is_ascii_alphabetic() || (!c.is_ascii() && c.is_alphabetic())
    }

    /// A word: letters, with `-` or an apostrophe between letters ("Hans-Georg", "O'Brien").
    #[derive(Clone, Copy)]
    struct Word {
        start: usize,
        end: usize,
        /// Upper-case first letter and a lower-case letter after it: "Paul", not "PAUL"/"paul".
        capitalised: bool,
    }

    fn char_at(text: &str, i: usize) -> Option<char> {
        text.get(i..).and_then(|s| s.chars().next())
    }

    fn char_before(text: &str, i: usize) -> Option<char> {
        text.get(..i).and_then(|s| s.chars().next_back())
    }

    fn word_at(text: &str, start: usize) -> Option<Word> {
        let first = char_at(text, start).filter(|&c| is_letter(c))?;
        let mut end = start + first.len_utf8();
        let mut lower_after_first = false;
        while let Some(c) = char_at(text, end) {
            if is_letter(c) {
                lower_after_first |= c.is_lowercase();
                end += c.len_utf8();
            } else if matches!(c, '-' | '\'' | '’')
                && char_at(text, end + c.len_utf8()).is_some_and(is_letter)
            {
                end += c.len_utf8();
            } else {
                break;
            }
        }
        Some(Word {
            start,
            end,
            capitalised: first.is_uppercase() && lower_after_first,
        })
    }

    fn hash_word(h: u64, text: &str, w: Word) -> u64 {
        text[w.start..w.end].chars().fold(h, feed_char)
    }

    /// The next word after `w` on the same line, with one space between (or ". " inside a
    /// place name such as "St. Gallen").
    fn next_word(text: &str, w: Word) -> Option<Word> {
        let rest = text.get(w.end..)?;
        let skip = if rest.starts_with(' ') {
            1
        } else if rest.starts_with(". ") {
            2
        } else {
            return None;
        };
        word_at(text, w.end + skip)
    }

    impl Gazetteer {
        fn load() -> Gazetteer {
            let mut flags: HashMap<u64, u8, BuildHasherDefault<Prehashed>> =
                HashMap::with_capacity_and_hasher(100_000, BuildHasherDefault::default());
            for line in PERSON_FILE.lines().chain(PLACE_FILE.lines()) {
                let Some((tag, name)) = line.split_once(' ') else {
                    continue;
                };
                let flag = match tag {
                    "g" => GIVEN,
                    "g?" => GIVEN_AMBIGUOUS,
                    "s" => SURNAME,
                    "s?" => SURNAME_AMBIGUOUS,
                    "p" => PLACE,
                    "p?" => PLACE | PLACE_AMBIGUOUS,
                    _ => continue,
                };
                // Hash the name word by word exactly as the scanner will read it.
                let mut h = FNV_OFFSET;
                let mut w = word_at(name, 0);
                if w.is_none() {
                    continue;
                }
                let mut words = 0;
                while let Some(word) = w {
                    if words > 0 {
                        *flags.entry(h).or_default() |= PLACE_PREFIX;
                        h = feed(h, b' ');
                    }
                    h = hash_word(h, name, word);
                    words += 1;
                    w = next_word(name, word);
                    if words == MAX_PLACE_WORDS {
                        break;
                    }
                }
                if w.is_none() {
                    *flags.entry(h).or_default() |= flag;
                }
            }
            for n in NOT_NAMES {
                *flags
                    .entry(n.chars().fold(FNV_OFFSET, feed_char))
                    .or_default() |= NOT_NAME;
            }
            Gazetteer {
                flags,
                titles: CueSet::new(TITLES),
                greetings: CueSet::new(GREETINGS),
                introductions: CueSet::new(INTRODUCTIONS),
                sign_offs: CueSet::new(SIGN_OFFS),
                strong_place_cues: CueSet::new(STRONG_PLACE_CUES),
                place_cues: CueSet::new(PLACE_CUES),
            }
        }

        fn get(&self, h: u64) -> u8 {
            self.flags.get(&h).copied().unwrap_or(0)
        }
    }

    fn gazetteer() -> &'static Gazetteer {
        static G: OnceLock<Gazetteer> = OnceLock::new();
        G.get_or_init(Gazetteer::load)
    }

    /// Case-insensitive ASCII `ends_with` that also needs a word boundary before the cue.
    fn ends_with_word(hay: &str, cue: &str) -> bool {
        let (h, c) = (hay.as_bytes(), cue.as_bytes());
        h.len() >= c.len()
            && h[h.len() - c.len()..].eq_ignore_ascii_case(c)
            && (h.len() == c.len() || !h[h.len() - c.len() - 1].is_ascii_alphanumeric())
    }

    /// Cue phrases grouped by their last byte, so testing the text before a word costs one
    /// table look-up for most words rather than one comparison per cue.
    struct CueSet {
        by_last: Vec<Vec<&'static str>>,
    }

    impl CueSet {
        fn new(cues: &[&'static str]) -> CueSet {
            let mut by_last = vec![Vec::new(); 256];
            for c in cues {
                if let Some(&l) = c.as_bytes().last() {
                    by_last[usize::from(l.to_ascii_lowercase())].push(*c);
                }
            }
            CueSet { by_last }
        }

        /// Whether `before` (text up to the word, spaces trimmed) ends with one of the cues.
        fn ends(&self, before: &str) -> bool {
            let Some(&l) = before.as_bytes().last() else {
                return false;
            };
            self.by_last[usize::from(l.to_ascii_lowercase())]
                .iter()
                .any(|c| ends_with_word(before, c))
        }
    }

    /// Up to this many bytes before a word are read for cues (all cues are shorter), so a long
    /// line costs nothing extra per word.
    const CUE_WINDOW: usize = 48;

    /// The text just before a word on its line (at most `CUE_WINDOW` bytes), spaces trimmed,
    /// and whether that reaches back to the start of the line.
    fn before_on_line(text: &str, start: usize) -> (&str, bool) {
        let mut from = start.saturating_sub(CUE_WINDOW);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let window = &text[from..start];
        let (window, line_start) = match window.rfind('\n') {
            Some(i) => (&window[i + 1..], true),
            None => (window, from == 0),
        };
        (window.trim_end_matches([' ', '\t']), line_start)
    }

    const TITLES: &[&str] = &[
        "mr", "mrs", "ms", "mx", "miss", "dr", "prof", "sir", "dame", "herr", "frau", "mme",
        "mlle", "monsieur", "madame", "señor", "señora", "senor", "senora", "sr", "sra", "signor",
        "signora", "sig", "dott", "mevrouw", "meneer", "dhr", "mevr",
    ];
    const GREETINGS: &[&str] = &[
        "hi",
        "hello",
        "hey",
        "dear",
        "hallo",
        "liebe",
        "lieber",
        "bonjour",
        "ciao",
        "hola",
        "good morning",
        "morning",
        "thanks",
        "thank you",
        "beste",
        "caro",
        "cara",
        "querido",
        "querida",
    ];
    /// Introductions vouch for any capitalised name, not only a known given name.
    const INTRODUCTIONS: &[&str] = &[
        "my name is",
        "name is",
        "full name:",
        "contact person:",
        "signed by",
        "attn:",
        "attention:",
        "c/o",
    ];
    const SIGN_OFFS: &[&str] = &[
        "regards",
        "best",
        "thanks",
        "thank you",
        "cheers",
        "sincerely",
        "yours",
        "best wishes",
        "viele grüße",
        "grüße",
        "mit freundlichen grüßen",
        "cordialement",
        "saludos",
        "cordiali saluti",
        "un saluto",
        "groeten",
        "met vriendelijke groet",
        "bien à vous",
    ];
    /// Capitalised words after a greeting or cue that are not names.
    const NOT_NAMES: &[&str] = &[
        "team",
        "all",
        "everyone",
        "everybody",
        "there",
        "folks",
        "guys",
        "support",
        "sir",
        "madam",
        "again",
        "world",
        "both",
        "colleagues",
        "friends",
        "customer",
        "user",
        "admin",
        "service",
        "sales",
        "billing",
        "the",
        "this",
        "that",
        "please",
        "thanks",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "subject",
        "re",
        "fwd",
        "note",
        "error",
        "warning",
        "info",
        "debug",
        "yes",
        "no",
        "ok",
        "okay",
        "i",
        "we",
        "you",
        "it",
        "my",
        "our",
        "your",
    ];
    /// Cues that tie a place to a person; with these, an unknown capitalised name counts too.
    const STRONG_PLACE_CUES: &[&str] = &[
        "live in",
        "lives in",
        "living in",
        "lived in",
        "born in",
        "grew up in",
        "reside in",
        "resides in",
        "residing in",
        "resident of",
        "hometown is",
        "wohne in",
        "wohnt in",
        "j'habite à",
        "vivo en",
        "vivo a",
        "abito a",
        "woon in",
        "woont in",
    ];
    /// Keys of structured fields whose value is a place tied to a record's person
    /// (`city: Berlin`, `"billing_country": "France"`, `location="Lyon"`); the key or its last
    /// `_`/`.`/`-` segment.
    const PLACE_KEYS: &[&str] = &[
        "city",
        "town",
        "country",
        "location",
        "hometown",
        "birthplace",
        "residence",
        "village",
        "municipality",
        "ville",
        "stadt",
        "ort",
        "wohnort",
        "ciudad",
        "citta",
        "pais",
        "land",
    ];
    /// Keys of structured fields whose value is a person's name (the whole key: `host_name`
    /// and `username` are not people).
    const PERSON_KEYS: &[&str] = &[
        "name",
        "full_name",
        "fullname",
        "display_name",
        "displayname",
        "contact_name",
        "contact_person",
        "first_name",
        "firstname",
        "last_name",
        "lastname",
        "surname",
        "given_name",
        "customer_name",
        "patient_name",
        "employee_name",
        "recipient_name",
        "sender_name",
        "account_holder",
        "cardholder",
        "cardholder_name",
    ];

    /// The key of a `key: value` / `key = value` / `"key": "value"` field whose value starts
    /// right after `before`.
    fn field_key(before: &str) -> Option<&str> {
        let s = before.trim_end_matches(['"', '\'']).trim_end();
        let s = s.strip_suffix([':', '='])?;
        let s = s.trim_end().trim_end_matches(['"', '\'']);
        // The key is the run of key characters before the separator; what precedes it may be
        // any character, so step past it by its UTF-8 length.
        let start = s
            .char_indices()
            .rev()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let key = &s[start..];
        (!key.is_empty()).then_some(key)
    }

    fn is_place_key(key: &str) -> bool {
        let last = key.rsplit(['_', '.', '-']).next().unwrap_or(key);
        PLACE_KEYS
            .iter()
            .any(|k| key.eq_ignore_ascii_case(k) || last.eq_ignore_ascii_case(k))
    }

    fn is_person_key(key: &str) -> bool {
        PERSON_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k))
    }
    /// Cues that tie a known, unambiguous place to a person.
    const PLACE_CUES: &[&str] = &[
        "from",
        "moved to",
        "moving to",
        "move to",
        "relocated to",
        "relocating to",
        "based in",
        "ship to",
        "shipped to",
        "shipping to",
        "ships to",
        "deliver to",
        "delivered to",
        "delivery to",
        "flight to",
        "flying to",
        "fly to",
        "trip to",
        "travel to",
        "travelling to",
        "traveling to",
        "visiting",
        "staying in",
        "stay in",
        "holiday in",
        "vacation in",
        "work in",
        "working in",
        "studied in",
        "study in",
        "currently in",
        "home in",
        "house in",
        "apartment in",
        "flat in",
        "aus",
        "nach",
    ];

    /// A word may start an entity only after a space, punctuation or quotes, not inside a
    /// path, an address, an identifier or a number.
    fn starts_cleanly(text: &str, start: usize) -> bool {
        match char_before(text, start) {
            None => true,
            Some(c) => {
                c.is_whitespace()
                    || matches!(
                        c,
                        '(' | '"' | '\'' | '[' | '<' | '«' | '“' | '‘' | ',' | ';' | ':' | '='
                    )
            }
        }
    }

    /// ... and end before a space or punctuation, not before `@`, `_`, `/`, digits or `.x`.
    fn ends_cleanly(text: &str, end: usize) -> bool {
        match char_at(text, end) {
            None => true,
            Some(c) if c.is_alphanumeric() || matches!(c, '@' | '_' | '/' | '\\') => false,
            Some('.') => !char_at(text, end + 1).is_some_and(char::is_alphanumeric),
            Some(_) => true,
        }
    }

    const PARTICLES: &[&str] = &[
        "van", "von", "de", "da", "di", "del", "della", "der", "den", "du", "le", "la", "dos",
        "das", "ten", "ter", "zu", "y", "bin", "al",
    ];

    /// Extends a name over the capitalised words that follow on the line (and particles such
    /// as "van der" before one). `surnames_only`: only over known surnames and unknown words,
    /// not over places or words the gazetteer knows as something else.
    fn extend_name(text: &str, g: &Gazetteer, first: Word, surnames_only: bool) -> Word {
        let mut last = first;
        let mut cursor = first;
        let mut words = 1;
        while words < MAX_NAME_WORDS {
            // A full stop ends the name ("… Paul. Then …"), so does anything but one space.
            if text.as_bytes().get(cursor.end) != Some(&b' ') {
                break;
            }
            let Some(next) = next_word(text, cursor) else {
                break;
            };
            if !next.capitalised {
                let s = &text[next.start..next.end];
                if PARTICLES.contains(&s) {
                    cursor = next;
                    continue;
                }
                break;
            }
            let f = g.get(hash_word(FNV_OFFSET, text, next));
            if f & NOT_NAME != 0 {
                break;
            }
            // After a known given name, a capitalised surname counts even if it is also a
            // word ("Paul Baron"); a word known only as something else (a place, another
            // given name) ends the name.
            if surnames_only && f & (SURNAME | SURNAME_AMBIGUOUS) == 0 && f != 0 {
                break;
            }
            last = next;
            cursor = next;
            words += 1;
        }
        Word {
            start: first.start,
            end: last.end,
            capitalised: true,
        }
    }

    /// The longest place name starting at `w` (whose hash is `h`): its last word and flags.
    fn place_at(text: &str, g: &Gazetteer, w: Word, mut h: u64) -> Option<(Word, u8)> {
        let mut best = None;
        let mut cur = w;
        for _ in 0..MAX_PLACE_WORDS {
            let f = g.get(h);
            if f & PLACE != 0 {
                best = Some((cur, f));
            }
            if f & PLACE_PREFIX == 0 {
                break;
            }
            let Some(next) = next_word(text, cur) else {
                break;
            };
            h = hash_word(feed(h, b' '), text, next);
            cur = next;
        }
        best
    }

    /// A cue before a word that makes it a person's name whatever the gazetteer says.
    fn person_cue(text: &str, g: &Gazetteer, w: Word, before: &str, line_start: bool) -> bool {
        // Title: "Dr. Sarah Connor", "Herr Müller".
        if g.titles.ends(before.strip_suffix('.').unwrap_or(before)) {
            return true;
        }
        if g.greetings.ends(before)
            || g.introductions.ends(before)
            || field_key(before).is_some_and(is_person_key)
        {
            return true;
        }
        // Chat transcript: "[10:42] Name:" at the start of a line.
        if line_start
            && before.len() > 2
            && before.starts_with('[')
            && before.ends_with(']')
            && before[1..before.len() - 1]
                .bytes()
                .all(|c| c.is_ascii_digit() || c == b':')
        {
            let name = extend_name(text, g, w, false);
            return text.as_bytes().get(name.end) == Some(&b':');
        }
        // Sign-off: the name alone at the start of the line after "Best regards,".
        if line_start && before.is_empty() {
            let line = text[..w.start].trim_end_matches([' ', '\t']);
            if let Some(prev) = line.strip_suffix('\n') {
                let prev = prev.trim_end_matches(['\n', '\r', ' ']);
                let prev = prev.trim_end_matches([',', '!', '.']);
                let tail_from = prev.len().saturating_sub(CUE_WINDOW);
                let tail = prev.get(tail_from..).unwrap_or(prev);
                let tail = &tail[tail.rfind('\n').map_or(0, |i| i + 1)..];
                return g.sign_offs.ends(tail);
            }
        }
        false
    }

    /// Candidate starts: ASCII upper-case letters, and lead bytes of two-byte UTF-8 sequences
    /// (Latin-1 and Latin Extended-A capitals live there). Eight bytes at a time: most of a
    /// prompt is lower-case ASCII and is skipped without looking at each byte.
    fn next_candidate(b: &[u8], mut i: usize) -> Option<usize> {
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let candidate = |c: u8| c.is_ascii_uppercase() || (0xC3..0xE0).contains(&c);
        while i + 8 <= b.len() {
            let mut chunk = [0u8; 8];
            chunk.copy_from_slice(&b[i..i + 8]);
            let x = u64::from_le_bytes(chunk);
            let ascii = x & !HIGH;
            // For bytes below 0x80: +0x3F sets the high bit from 'A' (0x41) up, +0x25 from
            // '[' (0x5B) up; no carry crosses a byte.
            let ge_a = ascii.wrapping_add(0x3F3F_3F3F_3F3F_3F3F);
            let ge_after_z = ascii.wrapping_add(0x2525_2525_2525_2525);
            let upper = ge_a & !ge_after_z & !x & HIGH;
            if (x & HIGH) | upper != 0
                && let Some(j) = (i..i + 8).find(|&j| candidate(b[j]))
            {
                return Some(j);
            }
            i += 8;
        }
        (i..b.len()).find(|&j| candidate(b[j]))
    }

    /// Calls `emit(entity, start, end)` for every PERSON and LOCATION found, in text order.
    pub(super) fn scan(text: &str, mut emit: impl FnMut(Entity, usize, usize)) {
        let g = gazetteer();
        let b = text.as_bytes();
        let mut i = 0;
        while let Some(at) = next_candidate(b, i) {
            i = at + 1;
            let Some(w) = word_at(text, at) else {
                continue;
            };
            i = w.end;
            if !w.capitalised || !starts_cleanly(text, w.start) {
                continue;
            }
            let h = hash_word(FNV_OFFSET, text, w);
            let flags = g.get(h);
            // "The", "Please", months: never an entity, and the commonest capitalised words.
            if flags & NOT_NAME != 0 {
                continue;
            }
            let (before, line_start) = before_on_line(text, w.start);
            // LOCATION first: a cue decides whether a place is personal data. Months and the
            // like are never places ("born in March", though March is a town).
            let place = if flags & NOT_NAME == 0 {
                place_at(text, g, w, h)
            } else {
                None
            };
            let strong_cue =
                || g.strong_place_cues.ends(before) || field_key(before).is_some_and(is_place_key);
            if let Some((last, place_flags)) = place {
                let ambiguous = place_flags & PLACE_AMBIGUOUS != 0;
                let cued = strong_cue() || (!ambiguous && g.place_cues.ends(before));
                if cued && ends_cleanly(text, last.end) {
                    emit(Entity::Location, w.start, last.end);
                    i = chain_places(text, g, last, &mut emit);
                    continue;
                }
            } else if flags & (GIVEN | GIVEN_AMBIGUOUS | NOT_NAME) == 0 && strong_cue() {
                // "I live in Kleinblittersdorf": the cue vouches for a place we do not know.
                let name = extend_name(text, g, w, false);
                if ends_cleanly(text, name.end) {
                    emit(Entity::Location, name.start, name.end);
                    i = name.end;
                    continue;
                }
            }
            if flags & NOT_NAME != 0 {
                continue;
            }
            let next_is_surname = || {
                text.as_bytes().get(w.end) == Some(&b' ')
                    && next_word(text, w).is_some_and(|n| {
                        n.capitalised && g.get(hash_word(FNV_OFFSET, text, n)) & SURNAME != 0
                    })
            };
            let is_place = flags & PLACE != 0;
            let person = if person_cue(text, g, w, before, line_start) {
                Some(extend_name(text, g, w, false))
            } else if ((flags & GIVEN != 0 || given_parts(text, g, w))
                && (!is_place || next_is_surname()))
                // An ambiguous given name ("Will") only with a known surname after it.
                || (flags & GIVEN_AMBIGUOUS != 0 && next_is_surname())
            {
                Some(extend_name(text, g, w, true))
            } else {
                None
            };
            if let Some(p) = person
                && ends_cleanly(text, p.end)
            {
                emit(Entity::Person, p.start, p.end);
                i = p.end;
            }
        }
    }

    /// "Anna-Maria": every part a known given name (a hyphenated pair of capitalised given
    /// names is a name even if one part is also a word).
    fn given_parts(text: &str, g: &Gazetteer, w: Word) -> bool {
        let s = &text[w.start..w.end];
        s.contains('-')
            && s.split('-').all(|part| {
                !part.is_empty()
                    && g.get(part.chars().fold(FNV_OFFSET, feed_char)) & (GIVEN | GIVEN_AMBIGUOUS)
                        != 0
            })
    }

    /// "Lyon, France": places listed after a cued place belong to it.
    fn chain_places(
        text: &str,
        g: &Gazetteer,
        mut last: Word,
        emit: &mut impl FnMut(Entity, usize, usize),
    ) -> usize {
        loop {
            if !text[last.end..].starts_with(", ") {
                return last.end;
            }
            let Some(w) = word_at(text, last.end + 2) else {
                return last.end;
            };
            if !w.capitalised {
                return last.end;
            }
            match place_at(text, g, w, hash_word(FNV_OFFSET, text, w)) {
                Some((end_word, _)) if ends_cleanly(text, end_word.end) => {
                    emit(Entity::Location, w.start, end_word.end);
                    last = end_word;
                }
                _ => return last.end,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One catalogue for all tests: compiling it (and loading the gazetteers) per call made the
    /// debug-build tests slow.
    fn shared() -> &'static Detectors {
        static D: std::sync::OnceLock<Detectors> = std::sync::OnceLock::new();
        D.get_or_init(Detectors::new)
    }

    fn entities(text: &str) -> Vec<(String, String)> {
        shared()
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
        let mask = [crate::RedactionRule {
            mode: crate::RedactionMode::Mask,
            entities: None,
        }];
        let out = crate::redact::redact(text, &d.scan(text), &mask, None);
        assert_eq!(out.text, "write to [EMAIL] or [PHONE] now");
    }

    /// (entity, exact bytes, start) of every finding.
    fn found(text: &str) -> Vec<(String, String, usize)> {
        shared()
            .scan(text)
            .into_iter()
            .map(|f| (f.entity, text[f.start..f.end].to_string(), f.start))
            .collect()
    }

    /// Asserts that `value` is found as `entity` at the byte offset where it occurs in `text`.
    fn assert_found(text: &str, entity: &str, value: &str) {
        let start = text.find(value).expect("value in text");
        let got = found(text);
        assert!(
            got.contains(&(entity.to_string(), value.to_string(), start)),
            "{entity} {value:?} at byte {start} not found in {text:?}: {got:?}"
        );
    }

    fn assert_no(text: &str, entity: &str) {
        let got = found(text);
        assert!(
            got.iter().all(|(e, _, _)| e != entity),
            "unexpected {entity} in {text:?}: {got:?}"
        );
    }

    #[test]
    fn ssn_dashed_spaced_and_labelled_with_byte_offsets() {
        assert_found(
            "Sozialversicherung für Jürgen: 123-45-6789",
            "SSN",
            "123-45-6789",
        );
        assert_found("her social is 326 63 2441 — ok", "SSN", "326 63 2441");
        assert_found("Grüße, SSN: 296 82 9858.", "SSN", "296 82 9858");
        assert_found("Größe ok. SSN: 296829858", "SSN", "296829858");
        // Also a valid Irish national number: the SSN shape wins the tie.
        assert_found(
            "order #17810053\nssn: \"087-25-5365\"",
            "SSN",
            "087-25-5365",
        );
        assert_found(
            "social security number 078051121 on file",
            "SSN",
            "078051121",
        );
    }

    #[test]
    fn ssn_near_misses_are_rejected() {
        for text in [
            "ssn 000 12 3456",
            "ssn 666 12 3456",
            "ssn 912 12 3456",
            "ssn 123 00 4567",
            "ssn 123 45 0000",
            "ssn 111 11 1111",
            // Groups inside a longer run of digit groups (an account number, an IBAN tail).
            "acct 12 123 45 6789 00",
            "IBAN DE12 3456 123 45 6789",
            // Nine digits without an SSN label are an order number.
            "order #969544456 shipped",
            "ref 123-45-67890",
        ] {
            assert_no(text, "SSN");
        }
    }

    #[test]
    fn national_phone_formats_are_validated_with_libphonenumber() {
        assert_found("ONCALL_PHONE=(201) 290-3471", "PHONE", "(201) 290-3471");
        assert_found("Rückruf: 201-290-3471 bitte", "PHONE", "201-290-3471");
        assert_found("his number: 07402 574754", "PHONE", "07402 574754");
        assert_found("Büro (030 897795) ist besetzt", "PHONE", "030 897795");
        assert_found("whatsapp 01517 3101092 👍", "PHONE", "01517 3101092");
        assert_found("Appelez le 06 12 95 00 49 svp", "PHONE", "06 12 95 00 49");
        assert_found("London office 020 7946 0958.", "PHONE", "020 7946 0958");
        assert_found("mobile (IN): 081234 56789", "PHONE", "081234 56789");
        assert_found("tel: 07402574754", "PHONE", "07402574754");
        assert_found("Grüße — call +44 20 7946 0958", "PHONE", "+44 20 7946 0958");
    }

    #[test]
    fn number_like_text_is_not_a_phone() {
        for text in [
            "ref=order #7187358055",
            "build_id: PO-2024-315018",
            "due 03.12.2024 or 2024-01-12 or 12/03/2024",
            "isbn 978-0-236-72107-0",
            "version 10.0.22241.3508",
            "card 4111 1111 1111 1111",
            "iban PL33 3937 6584 6590 8462 0192 8075",
            "amount $39,041.32",
            "ts 2023-03-06T11:17:36.969Z",
            "call 0123 456789 123456",
            "version=IE05 QOAO 0173 9175 7678 87",
            // A valid-looking shape that no region's metadata accepts.
            "call (999) 999-9999",
        ] {
            assert_no(text, "PHONE");
        }
    }

    #[test]
    fn cards_need_issuer_prefix_grouping_and_to_stand_alone() {
        assert_found(
            "Karte 3782 822463 10005 (Amex)",
            "CREDIT_CARD",
            "3782 822463 10005",
        );
        assert_found("pan=5555555555554444", "CREDIT_CARD", "5555555555554444");
        // ISBN-13 with a passing Luhn digit, a card-shaped run inside an IBAN.
        assert_no("version=978-1-339-44795-1", "CREDIT_CARD");
        assert_no("version: PL33 3937 6584 6590 8462 0192 8075", "CREDIT_CARD");
        assert_no("id 8111 1111 1111 1113", "CREDIT_CARD");
    }

    #[test]
    fn passwords_in_prose_and_on_command_lines() {
        assert_found(
            "Schöne Grüße! My temporary password is ZWH%Z9EhB@44.",
            "PASSWORD",
            "ZWH%Z9EhB@44",
        );
        assert_found(
            "[11:20] Friedhold: pw is uX+Z0SVS&adK5ofk*t",
            "PASSWORD",
            "uX+Z0SVS&adK5ofk*t",
        );
        assert_found(
            "the password for the VPN was Kx9#mPq2",
            "PASSWORD",
            "Kx9#mPq2",
        );
        assert_found(
            "Bärbel: mysql -u root --password 4bP3dEh6 -h localhost",
            "PASSWORD",
            "4bP3dEh6",
        );
        assert_found(
            "deploy --db-password=Zq8!rT5w --yes",
            "PASSWORD",
            "Zq8!rT5w",
        );
        assert_found("mysqldump -uroot -pS3cr3tPw app", "PASSWORD", "S3cr3tPw");
        assert_found(
            "sshpass -p 'Tr0ub4dor&3' ssh ops@host",
            "PASSWORD",
            "Tr0ub4dor&3",
        );
        assert_found(
            "curl -u admin:Hunt3r2go https://api",
            "PASSWORD",
            "Hunt3r2go",
        );
        assert_found("PGPASSWORD=s3cr3t-Pass psql", "PASSWORD", "s3cr3t-Pass");
    }

    #[test]
    fn password_near_misses_are_rejected() {
        for text in [
            "my password is incorrect",
            "the password is expired, please reset it",
            "password is 12345678",
            "Reset your password at the link below",
            "run with --password-file /etc/app/pw",
            "mysql --password $DB_PASS -h db",
            "mkdir -p /tmp/build && ssh -p 2222 host",
            "docker run -p 8080:80 nginx",
        ] {
            assert_no(text, "PASSWORD");
        }
    }

    #[test]
    fn person_names_from_gazetteer_and_cues() {
        assert_found("Grüße — Herr Müller ruft an", "PERSON", "Müller");
        assert_found(
            "Subject: x\n\nHi Paul-Heinz,\n\nthanks",
            "PERSON",
            "Paul-Heinz",
        );
        assert_found("Ça va? Dr. Sarah Connor called.", "PERSON", "Sarah Connor");
        assert_found(
            "Best regards,\nGiulia Tonisto\nRodgers LLC",
            "PERSON",
            "Giulia Tonisto",
        );
        assert_found("[11:20] Friedhold: pw is up", "PERSON", "Friedhold");
        assert_found(
            "können Sie Jennifer Lopez fragen?",
            "PERSON",
            "Jennifer Lopez",
        );
        assert_found("please forward to Anna-Maria", "PERSON", "Anna-Maria");
        assert_found("My name is Ngozi Okonjo.", "PERSON", "Ngozi Okonjo");
        assert_found(
            "{\"contact_name\": \"Ngozi Okonjo\"}",
            "PERSON",
            "Ngozi Okonjo",
        );
        assert_found(
            "profile display_name=\"Tycho Ångström\"",
            "PERSON",
            "Tycho Ångström",
        );
    }

    #[test]
    fn person_near_misses_are_rejected() {
        for text in [
            "Will you send the report by Friday?",
            "Hi team, the build is green.",
            "Summarise the quarterly report in three bullet points.",
            "see https://github.com/Paul/repo and jennifer.lopez@example.com",
            "PAUL SMITH in capitals is not read",
            "[10:42] Deploy finished",
            "host_name: Frankfurt-Edge",
        ] {
            assert_no(text, "PERSON");
        }
    }

    #[test]
    fn locations_tied_to_a_person() {
        assert_found("Grüße! I live in Lyon, France.", "LOCATION", "Lyon");
        assert_found("Grüße! I live in Lyon, France.", "LOCATION", "France");
        assert_found(
            "Paket für Jürgen: ship to München please",
            "LOCATION",
            "München",
        );
        assert_found(
            "she was born in Kleinblittersdorf in 1990",
            "LOCATION",
            "Kleinblittersdorf",
        );
        assert_found("geoip country=Germany city=Berlin", "LOCATION", "Berlin");
        assert_found(
            "{\"billing_city\": \"Hamburg\", \"x\": 1}",
            "LOCATION",
            "Hamburg",
        );
        assert_found(
            "new login location=\"Northern Mariana Islands\"",
            "LOCATION",
            "Northern Mariana Islands",
        );
        assert_found(
            "we moved to New York City last year",
            "LOCATION",
            "New York City",
        );
        assert_found("login from São Paulo failed", "LOCATION", "São Paulo");
    }

    #[test]
    fn places_without_a_personal_cue_are_not_reported() {
        for text in [
            "What's the weather in Paris tomorrow?",
            "Write a poem about Germany.",
            "she was born in March",
            "the Reading festival",
            "from Reading the logs we know",
        ] {
            assert_no(text, "LOCATION");
        }
    }

    #[test]
    fn gazetteers_load_and_name_their_sources() {
        for (file, source) in [
            (
                include_str!("../rules/person_names.txt"),
                "US Census Bureau",
            ),
            (include_str!("../rules/places.txt"), "CC BY 4.0"),
        ] {
            assert!(
                file.lines().take(10).any(|l| l.contains(source)),
                "{source}"
            );
        }
        let d = Detectors::new();
        assert_eq!(d.class_of("PERSON"), Some(EntityClass::Pii));
        assert_eq!(d.class_of("LOCATION"), Some(EntityClass::Pii));
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

    #[test]
    fn field_keys_after_non_ascii_characters_do_not_panic() {
        // A multi-byte character right before a `key: value` field once made the key lookup
        // slice inside that character and panic the whole scan.
        for text in [
            "ë: Berlin",
            "Σcity: Paris",
            "“name”: Anna Schmidt",
            "İstanbul= Ankara",
            "日本語city = Tokyo, 名前: Sato",
        ] {
            for f in shared().scan(text) {
                assert!(
                    text.is_char_boundary(f.start) && text.is_char_boundary(f.end),
                    "{text}: {f:?}"
                );
            }
        }
        assert_eq!(
            entities("Kundin: Anna Schmidt — ë city: Berlin"),
            entities("Kundin: Anna Schmidt — e city: Berlin"),
            "a non-ASCII character before a field changes nothing"
        );
    }
}
