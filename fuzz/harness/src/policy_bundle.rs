//! Policy bundles: `Bundle::from_files`, what `--policy-dir`, hot reload and `meshos policy`
//! load (Cedar schema and policies, `org.toml`, `budgets.toml`, `models.toml`, the
//! `bundle.sha256` manifest), then a few decisions through a bundle that loaded.
//!
//! An input is a small text archive of bundle files:
//!
//! ```text
//! @default                  (optional first line: start from the shipped bundle's files)
//! === global/extra.cedar    (a file: its text runs to the next `=== ` line or the end)
//! permit (principal, action, resource) when { … };
//! === -teams/support/no-money.cedar   (a leading `-` removes a file)
//! ```
//!
//! A `bundle.sha256` whose text starts with `@auto` gets the right manifest of the other files
//! in its place (anything after that line is appended), so inputs reach past the manifest
//! check. Beyond "no panic" in loading: evaluating requests through a bundle that loaded never
//! panics, whatever its policies say.

use std::sync::OnceLock;

use meshos_policy::{
    Bundle, BundleFile, CheckRequest, Detectors, MANIFEST_FILE, RequestIdentity, evaluate,
    manifest_text,
};

fn default_files() -> &'static [BundleFile] {
    static FILES: OnceLock<Vec<BundleFile>> = OnceLock::new();
    FILES.get_or_init(|| {
        Bundle::embedded_default()
            .expect("the shipped bundle loads")
            .files()
            .to_vec()
    })
}

fn detectors() -> &'static Detectors {
    static DETECTORS: OnceLock<Detectors> = OnceLock::new();
    DETECTORS.get_or_init(Detectors::new)
}

/// Ends the archive entry being read: a `-name` entry removes that file, any other replaces it.
fn finish(entry: Option<(String, String)>, files: &mut Vec<BundleFile>) {
    let Some((name, body)) = entry else { return };
    files.retain(|f| f.name != name.trim_start_matches('-'));
    if !name.starts_with('-') {
        files.push(BundleFile { name, text: body });
    }
}

/// The files an archive describes (see the module docs).
pub fn archive_files(text: &str) -> Vec<BundleFile> {
    let mut files: Vec<BundleFile> = Vec::new();
    let mut rest = text;
    if let Some(after) = rest.strip_prefix("@default\n") {
        files = default_files().to_vec();
        rest = after;
    }
    let mut current: Option<(String, String)> = None;
    for line in rest.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix("=== ") {
            finish(current.take(), &mut files);
            current = Some((name.trim_end_matches('\n').to_string(), String::new()));
        } else if let Some((_, body)) = &mut current {
            body.push_str(line);
        }
    }
    finish(current, &mut files);
    if let Some(at) = files
        .iter()
        .position(|f| f.name == MANIFEST_FILE && f.text.starts_with("@auto"))
    {
        let extra = files[at]
            .text
            .split_once('\n')
            .map_or(String::new(), |(_, tail)| tail.to_string());
        files[at].text = manifest_text(&files) + &extra;
    }
    files
}

pub fn files(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let files = archive_files(&text);
    let Ok(bundle) = Bundle::from_files(files) else {
        return;
    };
    let _ = bundle.policy_ids();
    for agent in [
        "support-bot",
        "billing-bot",
        "research-bot",
        "unknown-agent",
    ] {
        for action in ["email.send", "payments.transfer", "shell.exec", "db.query"] {
            let _ = bundle.facts_needed(&RequestIdentity {
                tenant: "acme",
                agent_id: agent,
                action,
            });
            let _ = evaluate(
                &bundle,
                detectors(),
                &CheckRequest {
                    tenant: "acme",
                    agent_id: agent,
                    action,
                    // Content (scanned, then redacted as the bundle's rules say) for one
                    // agent only: the scan costs more than the decision.
                    content: (agent == "support-bot")
                        .then_some("card 4111 1111 1111 1111, mail jane@example.com"),
                    model: Some("gpt-4o-mini"),
                    tool: Some("web-search"),
                    region: Some("aws:eu-west-1"),
                    region_jurisdictions: vec!["eu".into()],
                    checks_last_minute: 3,
                    ..CheckRequest::default()
                },
            );
        }
    }
}
