//! Scans a JSON file of tool definitions and prints one JSON line per entry:
//! `{"id", "label", "family", "split", "server", "name", "verdict", "findings": [...]}`.
//!
//! ```sh
//! cargo run -p meshos-toolscan --example scan -- bench/toolscan/corpus.json
//! cargo run -p meshos-toolscan --example scan -- --split dev bench/toolscan/corpus.json
//! ```
//!
//! The file is either the corpus (an array of `{id, server, tool, targets?, version?, ...}`) or
//! a plain array of tool definitions (then every tool is on server `default`). Each entry is
//! judged on `scan_tool` plus `scan_catalog` over its catalog: the entries of its own server
//! (other versions of the same tool left out: a rug pull's v2 is judged on its own content),
//! followed by the entries its `targets` name (the tools it shadows or imitates). The catalog
//! lists the targets first, as a gateway lists the tools it pinned first.

use std::process::ExitCode;

use meshos_toolscan::{Scanner, scan_catalog, scan_tool, verdict};
use serde_json::{Value, json};

fn main() -> ExitCode {
    let mut split = None;
    let mut path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--split" => split = args.next(),
            "-h" | "--help" => {
                eprintln!("usage: scan [--split dev|heldout] FILE.json");
                return ExitCode::SUCCESS;
            }
            _ => path = Some(arg),
        }
    }
    let Some(path) = path else {
        eprintln!("usage: scan [--split dev|heldout] FILE.json");
        return ExitCode::from(2);
    };
    let entries = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()))
    {
        Ok(Value::Array(items)) => items,
        Ok(_) => {
            eprintln!("{path}: expected a JSON array");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    };
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            if e.get("tool").is_some() {
                e
            } else {
                json!({"server": "default", "tool": e})
            }
        })
        .collect();
    let scanner = Scanner::new();
    for (index, entry) in entries.iter().enumerate() {
        if let Some(s) = &split
            && entry.get("split").and_then(Value::as_str) != Some(s.as_str())
        {
            continue;
        }
        let tool = entry.get("tool").cloned().unwrap_or(Value::Null);
        let mut findings = scan_tool(&scanner, &tool);
        let (catalog, position) = catalog_of(&entries, index);
        for (i, finding) in scan_catalog(&scanner, &catalog) {
            if i == position {
                findings.push(finding);
            }
        }
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let line = json!({
            "id": entry.get("id"),
            "label": entry.get("label"),
            "family": entry.get("family"),
            "split": entry.get("split"),
            "server": entry.get("server"),
            "name": tool.get("name"),
            "verdict": verdict(&findings),
            "findings": findings,
        });
        println!("{line}");
    }
    ExitCode::SUCCESS
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The catalog entry `index` is judged in, and its position there.
fn catalog_of(entries: &[Value], index: usize) -> (Vec<(String, Value)>, usize) {
    let Some(me) = entries.get(index) else {
        return (Vec::new(), 0);
    };
    let server = text(me, "server");
    let name = me.get("tool").map_or("", |t| text(t, "name"));
    let mut catalog = Vec::new();
    let targets: Vec<&str> = me
        .get("targets")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for target in &targets {
        if let Some(t) = entries.iter().find(|e| text(e, "id") == *target) {
            catalog.push((
                text(t, "server").to_string(),
                t.get("tool").cloned().unwrap_or(Value::Null),
            ));
        }
    }
    let mut position = 0;
    for (i, e) in entries.iter().enumerate() {
        let same_server = text(e, "server") == server;
        let other_version = i != index && e.get("tool").map_or("", |t| text(t, "name")) == name;
        if same_server && !other_version {
            if i == index {
                position = catalog.len();
            }
            catalog.push((
                server.to_string(),
                e.get("tool").cloned().unwrap_or(Value::Null),
            ));
        }
    }
    (catalog, position)
}
