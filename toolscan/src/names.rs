//! Tool names that imitate other names: look-alike letters from other scripts, digits for
//! letters, case and separator variants, one or two typos, decorations such as `_v2`.
//!
//! Two skeletons per name: the *plain* one (lowercase, separators removed: `Send-Email` and
//! `send_email` are both `sendemail`) and the *look-alike* one, where characters that render
//! alike are folded too (`I`, `1`, `|` → `l`; `0` → `o`; `rn` → `m`; Cyrillic and Greek
//! look-alikes → Latin). Equal look-alike skeletons with different plain ones are a
//! deliberate imitation; equal plain skeletons with different names are a variant that a model
//! (and a person) will confuse.

use crate::{Category, Finding, Severity, excerpt};

/// Names longer than this are not compared by edit distance (cost is quadratic in length).
const MAX_COMPARED_LEN: usize = 64;

/// Lowercase, separators and invisible characters removed.
pub(crate) fn plain_skeleton(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Like [`plain_skeleton`], with characters that render alike folded together.
pub(crate) fn lookalike_skeleton(name: &str) -> String {
    let mut folded = String::new();
    for c in name.chars() {
        let c = match c {
            'I' | '1' | '|' | 'i' | 'ı' | 'ӏ' | 'Ι' | 'І' | 'і' | 'ι' | 'l' | 'L' => 'l',
            '0' | 'О' | 'о' | 'Ο' | 'ο' | 'o' | 'O' => 'o',
            c => confusable(c),
        };
        if c.is_alphanumeric() {
            folded.extend(c.to_lowercase());
        }
    }
    folded.replace("rn", "m").replace("vv", "w")
}

/// Cyrillic and Greek letters that render like Latin ones, and digits read as letters.
fn confusable(c: char) -> char {
    match c {
        'а' | 'А' | 'α' | 'Α' | '4' => 'a',
        'в' | 'В' | 'β' | 'Β' => 'b',
        'с' | 'С' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'Е' | 'ε' | 'Ε' | '3' => 'e',
        'һ' | 'Н' | 'η' | 'Η' => 'h',
        'ı' | 'ӏ' | 'Ι' | 'І' | 'і' | 'ι' => 'i',
        'ј' | 'Ј' => 'j',
        'к' | 'К' | 'κ' | 'Κ' => 'k',
        'м' | 'М' | 'Μ' => 'm',
        'п' | 'ո' => 'n',
        'О' | 'о' | 'Ο' | 'ο' => 'o',
        'р' | 'Р' | 'ρ' | 'Ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' | 'Ѕ' | '5' => 's',
        'т' | 'Т' | 'τ' | 'Τ' | '7' => 't',
        'υ' | 'ս' => 'u',
        'ν' | 'ѵ' => 'v',
        'ԝ' | 'ѡ' => 'w',
        'х' | 'Х' | 'χ' | 'Χ' => 'x',
        'у' | 'У' | 'γ' => 'y',
        'Ζ' => 'z',
        c => c,
    }
}

/// Letters outside ASCII that fold to an ASCII letter: in a name that is otherwise ASCII they
/// can only be there to imitate.
fn lookalike_letters(name: &str) -> Vec<char> {
    name.chars()
        .filter(|&c| !c.is_ascii() && confusable(c) != c)
        .collect()
}

/// Findings about a tool's own name, without a catalog: look-alike letters from another
/// script mixed into an ASCII name.
pub(crate) fn name_findings(name: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let lookalikes = lookalike_letters(name);
    let ascii_letters = name.chars().filter(|c| c.is_ascii_alphabetic()).count();
    if !lookalikes.is_empty() && ascii_letters > 0 {
        let escaped: Vec<String> = lookalikes
            .iter()
            .map(|c| format!("U+{:04X}", *c as u32))
            .collect();
        out.push(Finding {
            rule: "mixed_script_name".into(),
            category: Category::Typosquatting,
            severity: Severity::High,
            location: "/name".into(),
            excerpt: excerpt(&escape_non_ascii(name)),
            message: format!(
                "name mixes Latin letters with look-alike letters from another script ({})",
                escaped.join(", ")
            ),
        });
    }
    out
}

/// Non-ASCII characters as `\u{..}`, so an excerpt shows the imitation.
pub(crate) fn escape_non_ascii(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\u{{{:x}}}", c as u32)
            }
        })
        .collect()
}

/// How a name relates to another server's tool name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resemblance {
    /// The same name.
    Same,
    /// Differs only in case and separators (`send-email`, `SendEmail`).
    CaseOrSeparators,
    /// Differs only in characters that render alike (`send_emaiI`, `reаd_file`).
    LookAlike,
    /// One typo away (two for long names).
    Typo,
    /// The other name plus a decoration (`_v2`, `_pro`, `official_`).
    Decorated,
}

const DECORATIONS: &[&str] = &[
    "v2", "v3", "2", "new", "pro", "plus", "official", "secure", "safe", "fast", "latest", "fixed",
    "beta", "real", "better", "updated",
];

/// A name with its skeletons, computed once per catalog entry (a catalog compares every pair).
pub(crate) struct NameKey {
    raw: String,
    plain: String,
    lookalike: String,
}

impl NameKey {
    pub(crate) fn new(name: &str) -> NameKey {
        NameKey {
            raw: name.to_string(),
            plain: plain_skeleton(name),
            lookalike: lookalike_skeleton(name),
        }
    }
}

/// How `candidate` resembles `incumbent`, if it does in a way a model would confuse.
pub(crate) fn resemblance(candidate: &NameKey, incumbent: &NameKey) -> Option<Resemblance> {
    if candidate.raw == incumbent.raw {
        return Some(Resemblance::Same);
    }
    let (pc, pi) = (&candidate.plain, &incumbent.plain);
    if pc.is_empty() || pi.is_empty() {
        return None;
    }
    // Every resemblance below needs equal skeleton lengths, a decoration (at most 8 more
    // characters) or a typo (at most 2): anything further apart is a different name.
    if pc.len().abs_diff(pi.len()) > 8 && candidate.lookalike.len() != incumbent.lookalike.len() {
        return None;
    }
    if pc == pi {
        return Some(Resemblance::CaseOrSeparators);
    }
    if pc.chars().count() >= 3 && candidate.lookalike == incumbent.lookalike {
        return Some(Resemblance::LookAlike);
    }
    // A plural or singular of the same name is a sibling tool, not an imitation.
    let plural = |a: &str, b: &str| a.strip_suffix('s').or_else(|| a.strip_suffix("es")) == Some(b);
    if plural(pc, pi) || plural(pi, pc) {
        return None;
    }
    let decorated = DECORATIONS.iter().any(|d| {
        pc.strip_suffix(d) == Some(pi.as_str()) || pc.strip_prefix(d) == Some(pi.as_str())
    });
    if decorated && pi.chars().count() >= 4 {
        return Some(Resemblance::Decorated);
    }
    let (lc, li) = (pc.chars().count(), pi.chars().count());
    if lc > MAX_COMPARED_LEN || li > MAX_COMPARED_LEN || lc.abs_diff(li) > 2 {
        return None;
    }
    // Short names have many honest neighbours (get/set/git, add/and): one edit only counts
    // from seven characters on, two from twelve.
    let shortest = lc.min(li);
    let limit = match shortest {
        0..=6 => 0,
        7..=11 => 1,
        _ => 2,
    };
    edit_distance_within(pc, pi, limit)
        .filter(|&d| d >= 1)
        .map(|_| Resemblance::Typo)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), or `None` as
/// soon as it must exceed `limit`: most pairs of a catalog are far apart, and three rolling
/// rows with an early exit keep the pairwise comparison cheap.
pub(crate) fn edit_distance_within(a: &str, b: &str, limit: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        row[0] = i + 1;
        let mut row_min = row[0];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let mut best = (prev[j + 1] + 1).min(row[j] + 1).min(prev[j] + cost);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                best = best.min(before[j - 1] + 1);
            }
            row[j + 1] = best;
            row_min = row_min.min(best);
        }
        if row_min > limit {
            return None;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut row);
    }
    prev.last().copied().filter(|&d| d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resemblance(candidate: &str, incumbent: &str) -> Option<Resemblance> {
        super::resemblance(&NameKey::new(candidate), &NameKey::new(incumbent))
    }

    #[test]
    fn resemblance_kinds() {
        use Resemblance::*;
        assert_eq!(resemblance("send_email", "send_email"), Some(Same));
        assert_eq!(
            resemblance("SendEmail", "send_email"),
            Some(CaseOrSeparators)
        );
        assert_eq!(
            resemblance("git-commit", "git_commit"),
            Some(CaseOrSeparators)
        );
        assert_eq!(resemblance("send_emaiI", "send_email"), Some(LookAlike));
        assert_eq!(resemblance("search_c0de", "search_code"), Some(LookAlike));
        assert_eq!(resemblance("re\u{430}d_file", "read_file"), Some(LookAlike));
        assert_eq!(
            resemblance("slack_post_mesage", "slack_post_message"),
            Some(Typo)
        );
        assert_eq!(
            resemblance("transfer_funds_v2", "transfer_funds"),
            Some(Decorated)
        );
        assert_eq!(resemblance("get_issues", "get_issue"), None);
        assert_eq!(resemblance("get_log", "git_log"), None);
        assert_eq!(resemblance("create_event", "create_issue"), None);
    }

    #[test]
    fn mixed_script_names_are_high_on_their_own() {
        let f = name_findings("re\u{430}d_file");
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].rule.as_str(), f[0].severity),
            ("mixed_script_name", Severity::High)
        );
        assert!(f[0].excerpt.contains("\\u{430}"));
        assert!(name_findings("read_file").is_empty());
        assert!(name_findings("météo_du_jour").is_empty());
        assert!(name_findings("\u{43f}\u{43e}\u{433}\u{43e}\u{434}\u{430}").is_empty());
    }

    #[test]
    fn edit_distance_counts_transpositions_once_and_stops_at_the_limit() {
        assert_eq!(edit_distance_within("send_email", "send_emial", 2), Some(1));
        assert_eq!(edit_distance_within("abc", "abc", 0), Some(0));
        assert_eq!(edit_distance_within("", "abc", 3), Some(3));
        assert_eq!(edit_distance_within("kitten", "sitting", 3), Some(3));
        assert_eq!(edit_distance_within("kitten", "sitting", 2), None);
        assert_eq!(edit_distance_within("ca", "abc", 3), Some(3));
        assert_eq!(edit_distance_within("abcdef", "badcfe", 3), Some(3));
    }
}
