//! The scan over the dev split of `bench/toolscan/corpus.json` must not regress below what was
//! measured when the rules were written (2026-12-06, see `bench/toolscan/README.md`):
//!
//! * attacks: 24 of 24 dev attacks `poisoned` (tool poisoning 13, rug pull v2 3, shadowing 4,
//!   typosquatting 4);
//! * benign: 0 of 35 dev benign definitions `poisoned`, 1 `suspicious` (a GitLab
//!   `create_issue` beside GitHub's: the same name on two servers is reported as medium
//!   shadowing by design).
//!
//! The held-out split is reported by `bench/toolscan/compare.py`, not asserted here: it is
//! there to show how the rules generalise, and asserting it would invite tuning to it.
//!
//! Each entry is judged like `examples/scan.rs` does: `scan_tool` plus its share of
//! `scan_catalog` over its targets and its own server's tools (other versions left out).

use meshos_toolscan::{Scanner, Verdict, scan_catalog, scan_tool, verdict};
use serde_json::Value;

const MEASURED_DEV_ATTACKS_POISONED: usize = 24;
const MEASURED_DEV_BENIGN_SUSPICIOUS: usize = 1;

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn tool_name(v: &Value) -> &str {
    v.get("tool").map_or("", |t| text(t, "name"))
}

fn judge(scanner: &Scanner, entries: &[Value], index: usize) -> Verdict {
    let Some(me) = entries.get(index) else {
        return Verdict::Clean;
    };
    let tool = me.get("tool").cloned().unwrap_or(Value::Null);
    let mut findings = scan_tool(scanner, &tool);
    let mut catalog = Vec::new();
    for target in me
        .get("targets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Some(t) = entries.iter().find(|e| text(e, "id") == target) {
            catalog.push((text(t, "server").to_string(), t["tool"].clone()));
        }
    }
    let mut position = usize::MAX;
    for (i, e) in entries.iter().enumerate() {
        if text(e, "server") == text(me, "server") && (i == index || tool_name(e) != tool_name(me))
        {
            if i == index {
                position = catalog.len();
            }
            catalog.push((text(e, "server").to_string(), e["tool"].clone()));
        }
    }
    findings.extend(
        scan_catalog(scanner, &catalog)
            .into_iter()
            .filter(|(i, _)| *i == position)
            .map(|(_, f)| f),
    );
    verdict(&findings)
}

#[test]
fn dev_split_does_not_regress() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/toolscan/corpus.json");
    let corpus: Value = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let entries = corpus.as_array().cloned().unwrap_or_default();
    assert!(
        entries.len() >= 50,
        "corpus not found or too small at {path}"
    );

    let scanner = Scanner::new();
    let (mut attacks, mut detected, mut missed) = (0, 0, Vec::new());
    let (mut benign, mut poisoned, mut suspicious) = (0, Vec::new(), Vec::new());
    for (i, e) in entries.iter().enumerate() {
        if text(e, "split") != "dev" {
            continue;
        }
        let v = judge(&scanner, &entries, i);
        let id = text(e, "id").to_string();
        match text(e, "label") {
            "attack" => {
                attacks += 1;
                if v == Verdict::Poisoned {
                    detected += 1;
                } else {
                    missed.push(id);
                }
            }
            _ => {
                benign += 1;
                match v {
                    Verdict::Poisoned => poisoned.push(id),
                    Verdict::Suspicious => suspicious.push(id),
                    Verdict::Clean => {}
                }
            }
        }
    }
    assert_eq!(
        (attacks, benign),
        (24, 35),
        "the dev split changed: update the measurement"
    );
    assert!(
        detected >= MEASURED_DEV_ATTACKS_POISONED,
        "dev attacks detected {detected}/{attacks}; missed {missed:?}"
    );
    assert!(
        poisoned.is_empty(),
        "benign definitions judged poisoned: {poisoned:?}"
    );
    assert!(
        suspicious.len() <= MEASURED_DEV_BENIGN_SUSPICIOUS,
        "benign definitions judged suspicious: {suspicious:?}"
    );
}
