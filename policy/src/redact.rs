//! Redaction of findings in submitted content, in three modes a policy chooses with
//! `@redact_mode` (and limits to entity kinds with `@redact_entities`):
//!
//! - `mask`: `[EMAIL]` — nothing of the value survives.
//! - `hash`: `[EMAIL:h:1f0c…]` — a keyed hash (HMAC-SHA256 under a per-tenant key): the same
//!   value gives the same token within a tenant, so records can still be joined, but it cannot
//!   be reversed and does not match across tenants.
//! - `pseudonym`: `[EMAIL:psn_…]` — a stable token the caller stores (sealed) so that an
//!   operator can re-identify it later through an audited tool; the engine only computes the
//!   token and hands the original back to the caller for sealing.
//!
//! When several redact obligations cover the same finding, the most protective mode wins
//! (mask over hash over pseudonym): a team can make redaction stricter, never looser.
//! Without keys (offline tools), hash and pseudonym fall back to mask rather than leak.

use std::collections::BTreeMap;
use std::fmt::Write;

use hmac::{Hmac, Mac};
use meshos_types::Finding;
use sha2::Sha256;

/// How a finding is replaced. Ordered from least to most protective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RedactionMode {
    Pseudonym,
    Hash,
    Mask,
}

impl RedactionMode {
    /// The annotation value (`@redact_mode("…")`) and the name in obligation details.
    pub fn as_str(self) -> &'static str {
        match self {
            RedactionMode::Mask => "mask",
            RedactionMode::Hash => "hash",
            RedactionMode::Pseudonym => "pseudonym",
        }
    }

    pub fn parse(text: &str) -> Option<RedactionMode> {
        match text {
            "mask" => Some(RedactionMode::Mask),
            "hash" => Some(RedactionMode::Hash),
            "pseudonym" => Some(RedactionMode::Pseudonym),
            _ => None,
        }
    }
}

/// One redact obligation: its mode and, if it names them, the entity kinds it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactionRule {
    pub mode: RedactionMode,
    /// `None` covers every finding.
    pub entities: Option<Vec<String>>,
}

impl RedactionRule {
    fn covers(&self, entity: &str) -> bool {
        self.entities
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e == entity))
    }
}

/// Per-tenant keys for the keyed modes. Derived by the caller from its secret; the engine
/// never sees the secret itself.
#[derive(Clone)]
pub struct RedactionKeys {
    pub hash: [u8; 32],
    pub pseudonym: [u8; 32],
}

impl std::fmt::Debug for RedactionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedactionKeys(..)")
    }
}

/// A pseudonym the engine issued; the caller must seal and store `value` before it returns
/// the redacted content, or the token can never be re-identified.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedPseudonym {
    pub pseudonym: String,
    pub entity: String,
    pub value: String,
}

impl std::fmt::Debug for IssuedPseudonym {
    // The value is personal data; keep it out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedPseudonym")
            .field("pseudonym", &self.pseudonym)
            .field("entity", &self.entity)
            .finish_non_exhaustive()
    }
}

/// Redacted text and the pseudonyms it contains.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redaction {
    pub text: String,
    pub pseudonyms: Vec<IssuedPseudonym>,
}

/// The prefix of every pseudonym id (`psn_` + 20 hex digits, 80 bits).
pub const PSEUDONYM_PREFIX: &str = "psn_";

/// Whether `text` has the shape of a pseudonym id, e.g. for input checks.
pub fn is_pseudonym_id(text: &str) -> bool {
    text.strip_prefix(PSEUDONYM_PREFIX).is_some_and(|h| {
        h.len() == 20
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

/// Replaces each finding some rule covers, in the most protective mode among those rules.
/// Findings must be sorted and non-overlapping, as `Detectors::scan` returns them.
pub fn redact(
    text: &str,
    findings: &[Finding],
    rules: &[RedactionRule],
    keys: Option<&RedactionKeys>,
) -> Redaction {
    let mut out = String::with_capacity(text.len());
    let mut issued: BTreeMap<String, IssuedPseudonym> = BTreeMap::new();
    let mut pos = 0;
    for f in findings {
        if f.start < pos
            || f.end > text.len()
            || !text.is_char_boundary(f.start)
            || !text.is_char_boundary(f.end)
        {
            continue;
        }
        let Some(mode) = rules
            .iter()
            .filter(|r| r.covers(&f.entity))
            .map(|r| r.mode)
            .max()
        else {
            continue;
        };
        out.push_str(&text[pos..f.start]);
        let value = &text[f.start..f.end];
        match (mode, keys) {
            (RedactionMode::Hash, Some(keys)) => {
                let digest = keyed_digest(&keys.hash, &f.entity, value);
                let _ = write!(out, "[{}:h:{}]", f.entity, &digest[..16]);
            }
            (RedactionMode::Pseudonym, Some(keys)) => {
                let digest = keyed_digest(&keys.pseudonym, &f.entity, value);
                let pseudonym = format!("{PSEUDONYM_PREFIX}{}", &digest[..20]);
                let _ = write!(out, "[{}:{}]", f.entity, pseudonym);
                issued
                    .entry(pseudonym.clone())
                    .or_insert_with(|| IssuedPseudonym {
                        pseudonym,
                        entity: f.entity.clone(),
                        value: value.to_string(),
                    });
            }
            _ => {
                let _ = write!(out, "[{}]", f.entity);
            }
        }
        pos = f.end;
    }
    out.push_str(&text[pos..]);
    Redaction {
        text: out,
        pseudonyms: issued.into_values().collect(),
    }
}

/// HMAC over the entity kind and a normalised value, so `Jane.Doe@Example.com` and
/// `jane.doe@example.com`, or `4111 1111…` and `4111-1111…`, get the same token.
fn keyed_digest(key: &[u8; 32], entity: &str, value: &str) -> String {
    let normalised: String = match entity {
        "CREDIT_CARD" | "IBAN" | "PHONE" | "SSN" => value
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        _ => value.trim().to_lowercase(),
    };
    // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(entity.as_bytes());
    mac.update(&[0]);
    mac.update(normalised.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(entity: &str, text: &str, needle: &str) -> Finding {
        let start = text.find(needle).expect("needle in text");
        Finding {
            entity: entity.to_string(),
            start,
            end: start + needle.len(),
            detector: "test".to_string(),
        }
    }

    const KEYS: RedactionKeys = RedactionKeys {
        hash: [1; 32],
        pseudonym: [2; 32],
    };

    fn rule(mode: RedactionMode, entities: Option<&[&str]>) -> RedactionRule {
        RedactionRule {
            mode,
            entities: entities.map(|e| e.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn each_mode_replaces_the_value_and_keeps_the_rest() {
        let text = "Grüße von jane@example.com, Karte 4111 1111 1111 1111.";
        let findings = vec![
            finding("EMAIL", text, "jane@example.com"),
            finding("CREDIT_CARD", text, "4111 1111 1111 1111"),
        ];
        let masked = redact(
            text,
            &findings,
            &[rule(RedactionMode::Mask, None)],
            Some(&KEYS),
        );
        assert_eq!(masked.text, "Grüße von [EMAIL], Karte [CREDIT_CARD].");
        assert!(masked.pseudonyms.is_empty());

        let hashed = redact(
            text,
            &findings,
            &[rule(RedactionMode::Hash, None)],
            Some(&KEYS),
        );
        assert!(
            hashed.text.starts_with("Grüße von [EMAIL:h:"),
            "{}",
            hashed.text
        );
        assert!(!hashed.text.contains("jane") && !hashed.text.contains("4111"));

        let pseudo = redact(
            text,
            &findings,
            &[rule(RedactionMode::Pseudonym, None)],
            Some(&KEYS),
        );
        assert_eq!(pseudo.pseudonyms.len(), 2);
        for p in &pseudo.pseudonyms {
            assert!(is_pseudonym_id(&p.pseudonym), "{}", p.pseudonym);
            assert!(
                pseudo
                    .text
                    .contains(&format!("[{}:{}]", p.entity, p.pseudonym))
            );
        }
        let email = pseudo
            .pseudonyms
            .iter()
            .find(|p| p.entity == "EMAIL")
            .expect("email pseudonym");
        assert_eq!(email.value, "jane@example.com");
        assert!(
            !format!("{email:?}").contains("jane"),
            "values stay out of Debug output"
        );
    }

    #[test]
    fn tokens_are_stable_per_key_and_normalised_value() {
        let a = "mail JANE@example.com";
        let b = "mail jane@EXAMPLE.com";
        let rules = [rule(RedactionMode::Hash, None)];
        let ra = redact(
            a,
            &[finding("EMAIL", a, "JANE@example.com")],
            &rules,
            Some(&KEYS),
        );
        let rb = redact(
            b,
            &[finding("EMAIL", b, "jane@EXAMPLE.com")],
            &rules,
            Some(&KEYS),
        );
        assert_eq!(ra.text, rb.text);
        let other_tenant = RedactionKeys {
            hash: [9; 32],
            pseudonym: [9; 32],
        };
        let rc = redact(
            a,
            &[finding("EMAIL", a, "JANE@example.com")],
            &rules,
            Some(&other_tenant),
        );
        assert_ne!(ra.text, rc.text, "another tenant's key gives another token");
    }

    #[test]
    fn the_most_protective_mode_wins_and_uncovered_kinds_stay() {
        let text = "jane@example.com paid with 4111 1111 1111 1111";
        let findings = vec![
            finding("EMAIL", text, "jane@example.com"),
            finding("CREDIT_CARD", text, "4111 1111 1111 1111"),
        ];
        let rules = [
            rule(RedactionMode::Pseudonym, None),
            rule(RedactionMode::Mask, Some(&["CREDIT_CARD"])),
        ];
        let r = redact(text, &findings, &rules, Some(&KEYS));
        assert!(r.text.starts_with("[EMAIL:psn_"), "{}", r.text);
        assert!(r.text.ends_with("paid with [CREDIT_CARD]"), "{}", r.text);

        let only_cards = [rule(RedactionMode::Mask, Some(&["CREDIT_CARD"]))];
        let r = redact(text, &findings, &only_cards, Some(&KEYS));
        assert_eq!(r.text, "jane@example.com paid with [CREDIT_CARD]");
    }

    #[test]
    fn keyed_modes_without_keys_mask_instead_of_leaking() {
        let text = "call jane@example.com";
        let f = [finding("EMAIL", text, "jane@example.com")];
        for mode in [RedactionMode::Hash, RedactionMode::Pseudonym] {
            let r = redact(text, &f, &[rule(mode, None)], None);
            assert_eq!(r.text, "call [EMAIL]");
            assert!(r.pseudonyms.is_empty());
        }
    }
}
