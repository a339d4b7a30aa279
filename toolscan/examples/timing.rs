//! How long the scan takes: `scan_tool` over every definition of a corpus file, and
//! `scan_catalog` over a synthetic catalog of 2,000 tools on 50 servers with many near names.
//!
//! ```sh
//! cargo run --release -p meshos-toolscan --example timing -- bench/toolscan/corpus.json
//! ```

use std::time::Instant;

use meshos_toolscan::{Scanner, scan_catalog, scan_tool};
use serde_json::{Value, json};

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/toolscan/corpus.json".into());
    let started = Instant::now();
    let scanner = Scanner::new();
    println!("Scanner::new: {:?}", started.elapsed());

    let corpus: Vec<Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let tools: Vec<&Value> = corpus.iter().filter_map(|e| e.get("tool")).collect();
    if !tools.is_empty() {
        let rounds = 20;
        let started = Instant::now();
        let mut findings = 0;
        for _ in 0..rounds {
            for tool in &tools {
                findings += scan_tool(&scanner, tool).len();
            }
        }
        let per_tool = started.elapsed() / (rounds * tools.len()) as u32;
        println!(
            "scan_tool: {} definitions x {rounds}: {per_tool:?} per definition ({} findings per round)",
            tools.len(),
            findings / rounds
        );
    }

    let verbs = [
        "get", "list", "create", "update", "delete", "search", "send", "read", "write", "query",
    ];
    let nouns = ["issue", "file", "email", "message"];
    let mut catalog = Vec::new();
    for server in 0..50 {
        for (i, verb) in verbs.iter().enumerate() {
            for noun in nouns {
                let name = format!("{verb}_{noun}_{}", (server * 7 + i) % 13);
                let description = format!("{verb} a {noun} in the service. Use list_{noun} first.");
                catalog.push((
                    format!("server{server}"),
                    json!({"name": name, "description": description, "inputSchema": {"type": "object"}}),
                ));
            }
        }
    }
    let started = Instant::now();
    let findings = scan_catalog(&scanner, &catalog);
    println!(
        "scan_catalog: {} tools: {:?} ({} findings)",
        catalog.len(),
        started.elapsed(),
        findings.len()
    );
}
