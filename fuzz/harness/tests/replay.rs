//! The fuzz targets on stable, in `cargo nextest run --workspace`: every committed corpus input
//! (`fuzz/corpus/<target>/`) and every crash kept as a regression (`fuzz/regressions/<target>/`)
//! replayed through its target, then a short deterministic mutation smoke from those inputs.
//! Coverage-guided fuzzing runs on nightly with cargo-fuzz (fuzz/README.md); this keeps what it
//! found fixed and the targets themselves building and passing on every commit.
//!
//! `MESHOS_FUZZ_SMOKE_RUNS` sets the mutated inputs per target (default 200; 0 replays only),
//! `MESHOS_FUZZ_SMOKE_SECONDS` the most time one target's smoke may take (default 3): the
//! inputs are the same sequence on every machine, a slow one runs a shorter prefix of it.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use meshos_fuzz::{TARGETS, Target};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files of `fuzz/<kind>/<target>/`, sorted by name (none if the folder is missing).
fn files(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Runs one input, naming it if the target panics.
fn run_named(target: &Target, what: &str, input: &[u8]) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (target.run)(input))) {
        eprintln!(
            "fuzz target {} failed on {what} ({} bytes): {:?}",
            target.name,
            input.len(),
            String::from_utf8_lossy(&input[..input.len().min(400)])
        );
        resume_unwind(panic);
    }
}

/// xorshift64*: deterministic, so a smoke failure reproduces from the target name alone.
struct Rng(u64);

impl Rng {
    fn seeded(name: &str) -> Rng {
        let seed = name.bytes().fold(0x9e37_79b9_7f4a_7c15_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Tokens worth splicing into any of the formats: JSON, YAML, CSV, Cedar, notes, protobuf.
const TOKENS: &[&[u8]] = &[
    b"0",
    b"-1",
    b"1e308",
    b"-0.0",
    b"NaN",
    b"18446744073709551616",
    b"null",
    b"true",
    b"[]",
    b"{}",
    b"\"\"",
    b"\\u0000",
    b"\x00",
    b"\n",
    b"\n\n",
    b"\n---\n",
    b"=== ",
    b",",
    b":",
    "\u{2014} ".as_bytes(),
    b"&a [*a, *a]",
    b"{{incident_id}}",
    b"when { true };",
    b"\x12\x00",
    b"\x0a\x00",
    b"\x1b\x1c",
    b"\xff\xff\xff\xff\x0f",
];

/// One random edit of `input`, sometimes splicing in part of `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            2 => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at..end.max(at));
            }
            3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            4 if !out.is_empty() => {
                let from = rng.below(out.len());
                let len = rng.below(64).min(out.len() - from);
                let chunk = out[from..from + len].to_vec();
                out.splice(at..at, chunk);
            }
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let len = rng.below(256).min(other.len() - from);
                out.splice(at..at, other[from..from + len].iter().copied());
            }
            _ => out.truncate(at),
        }
    }
    out.truncate(64 * 1024);
    out
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn replay_and_smoke(name: &str) {
    let target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"));
    let corpus = files("corpus", name);
    let regressions = files("regressions", name);
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{name}/ is empty: commit the minimised corpus (fuzz/README.md)"
    );
    for (path, input) in corpus.iter().chain(&regressions) {
        run_named(target, &path.display().to_string(), input);
    }
    let mut rng = Rng::seeded(name);
    let budget = Duration::from_secs(env_or("MESHOS_FUZZ_SMOKE_SECONDS", 3));
    let started = Instant::now();
    for i in 0..env_or("MESHOS_FUZZ_SMOKE_RUNS", 200) {
        if started.elapsed() > budget {
            break;
        }
        let (_, input) = &corpus[rng.below(corpus.len())];
        let (_, other) = &corpus[rng.below(corpus.len())];
        let mutated = mutate(&mut rng, input, other);
        run_named(target, &format!("smoke input {i}"), &mutated);
    }
}

#[test]
fn every_target_is_replayed_here() {
    let tested = [
        "otlp_protobuf",
        "otlp_json",
        "events_body",
        "policy_bundle",
        "playbook_yaml",
        "diagnose_files",
        "mcp_args",
        "signed_note",
    ];
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(names, tested, "add a test below for every target");
}

#[test]
fn otlp_protobuf() {
    replay_and_smoke("otlp_protobuf");
}

#[test]
fn otlp_json() {
    replay_and_smoke("otlp_json");
}

#[test]
fn events_body() {
    replay_and_smoke("events_body");
}

#[test]
fn policy_bundle() {
    replay_and_smoke("policy_bundle");
}

#[test]
fn playbook_yaml() {
    replay_and_smoke("playbook_yaml");
}

#[test]
fn diagnose_files() {
    replay_and_smoke("diagnose_files");
}

#[test]
fn mcp_args() {
    replay_and_smoke("mcp_args");
}

#[test]
fn signed_note() {
    replay_and_smoke("signed_note");
}
