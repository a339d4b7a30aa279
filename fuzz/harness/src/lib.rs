//! The bodies of Mesh OS's fuzz targets, one plain function per target, each feeding bytes to a
//! parser that reads untrusted input and checking what must hold whatever the bytes are.
//!
//! Two drivers call them: the libFuzzer binaries of the cargo-fuzz project in `fuzz/` (nightly,
//! coverage-guided, hours of work) and this crate's `tests/replay.rs` (stable, part of
//! `cargo nextest run --workspace`), which replays every committed corpus and crash input and
//! runs a short deterministic mutation smoke. A target never returns an error: the parsers
//! must turn bad input into typed errors, and a panic (or a failed assertion here) is the bug.

pub mod diagnose;
pub mod events;
pub mod mcp_args;
pub mod otlp;
pub mod playbooks;
pub mod policy_bundle;
pub mod signed_note;

/// A fuzz target: its name (the libFuzzer binary, and its folders under `fuzz/corpus/` and
/// `fuzz/regressions/`) and its body.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order the README lists them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "otlp_protobuf",
        run: otlp::protobuf,
    },
    Target {
        name: "otlp_json",
        run: otlp::json,
    },
    Target {
        name: "events_body",
        run: events::body,
    },
    Target {
        name: "policy_bundle",
        run: policy_bundle::files,
    },
    Target {
        name: "playbook_yaml",
        run: playbooks::yaml,
    },
    Target {
        name: "diagnose_files",
        run: diagnose::files,
    },
    Target {
        name: "mcp_args",
        run: mcp_args::args,
    },
    Target {
        name: "signed_note",
        run: signed_note::note,
    },
];
