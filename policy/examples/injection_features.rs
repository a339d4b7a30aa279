//! Feature vectors for `policy/train/train_injection.py`: reads JSON lines `{"id", "text"}` on
//! stdin and writes `{"id", "idx": [..], "val": [..], "dense": [..]}` per line on stdout, as
//! the injection screen computes them (so training and scoring can never disagree).
//! `cargo run --release -p meshos-policy --example injection_features < texts.jsonl`

use std::io::{BufRead, Write};

use meshos_policy::InjectionDetector;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let detector = InjectionDetector::new().rules_only();
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let row: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("line {}: not JSON: {e}", n + 1))?;
        let text = row
            .get("text")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("line {}: no string field \"text\"", n + 1))?;
        let (sparse, dense) = detector.training_features(text);
        let (idx, val): (Vec<u32>, Vec<f32>) = sparse.into_iter().unzip();
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({"id": row.get("id"), "idx": idx, "val": val, "dense": dense}),
        )?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
