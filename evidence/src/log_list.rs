//! The signed list of a deployment's logs: one note naming every log with its size and root,
//! signed with the logs' own key. A log that disappears, or is cut back together with its
//! checkpoints, is still named by the newest list, so an auditor can tell it is gone.
//!
//! Body (a signed note's text):
//!
//! ```text
//! <origin>
//! <sequence number>
//! <unix time, milliseconds>
//! <size> <base64 root> <log name>     one line per log, names strictly ascending
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::checkpoint::check_origin;
use crate::error::EvidenceError;
use crate::merkle::Hash;

/// One log as the list commits to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogListEntry {
    pub name: String,
    pub size: u64,
    pub root: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogList {
    /// Names the deployment's list; it must differ from every log's checkpoint origin so that
    /// a list can never be taken for a checkpoint.
    pub origin: String,
    /// 0 for the first list, one more for each later one.
    pub seq: u64,
    pub time_ms: u64,
    pub logs: Vec<LogListEntry>,
}

fn bad(why: String) -> EvidenceError {
    EvidenceError::MalformedCheckpoint(format!("log list: {why}"))
}

impl LogList {
    /// The note text; errors on names that would not parse back (empty, whitespace or
    /// control characters, not strictly ascending).
    pub fn body(&self) -> Result<String, EvidenceError> {
        check_origin(&self.origin)?;
        check_names(self.logs.iter().map(|l| l.name.as_str()))?;
        let mut out = format!("{}\n{}\n{}\n", self.origin, self.seq, self.time_ms);
        for l in &self.logs {
            out.push_str(&format!("{} {} {}\n", l.size, B64.encode(l.root), l.name));
        }
        Ok(out)
    }

    /// Parse a list body (a note's text, signatures already checked and stripped).
    pub fn parse(body: &str) -> Result<LogList, EvidenceError> {
        let content = body
            .strip_suffix('\n')
            .ok_or_else(|| bad("body does not end with a newline".into()))?;
        let mut lines = content.split('\n');
        let origin = lines.next().unwrap_or_default();
        check_origin(origin)?;
        let mut number = |what: &str| -> Result<u64, EvidenceError> {
            let line = lines
                .next()
                .ok_or_else(|| bad(format!("missing {what} line")))?;
            parse_number(line)
                .ok_or_else(|| bad(format!("{what} {line:?} is not a decimal number")))
        };
        let seq = number("sequence number")?;
        let time_ms = number("time")?;
        let mut logs = Vec::new();
        for line in lines {
            let mut parts = line.splitn(3, ' ');
            let (Some(size), Some(root), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(format!(
                    "line {line:?} is not \"<size> <root> <name>\""
                )));
            };
            let size = parse_number(size)
                .ok_or_else(|| bad(format!("size {size:?} is not a decimal number")))?;
            let bytes = B64
                .decode(root)
                .map_err(|e| bad(format!("root {root:?} is not standard base64: {e}")))?;
            let root: Hash = bytes
                .as_slice()
                .try_into()
                .map_err(|_| bad(format!("root is {} bytes, expected 32", bytes.len())))?;
            logs.push(LogListEntry {
                name: name.to_owned(),
                size,
                root,
            });
        }
        check_names(logs.iter().map(|l| l.name.as_str()))?;
        Ok(LogList {
            origin: origin.to_owned(),
            seq,
            time_ms,
            logs,
        })
    }

    pub fn get(&self, name: &str) -> Option<&LogListEntry> {
        self.logs
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.logs[i])
    }
}

/// Plain ASCII decimal without leading zeros, so one value has one text.
fn parse_number(s: &str) -> Option<u64> {
    let canonical = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && !(s.len() > 1 && s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

fn check_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), EvidenceError> {
    let mut previous: Option<&str> = None;
    for name in names {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(format!(
                "log name {name:?} is empty or holds whitespace"
            )));
        }
        if previous.is_some_and(|p| p >= name) {
            return Err(bad(format!(
                "log name {name:?} is out of order or repeated"
            )));
        }
        previous = Some(name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NoteSigner, leaf_hash};

    fn list() -> LogList {
        LogList {
            origin: "example.org/ledger tenant logs".into(),
            seq: 7,
            time_ms: 1_700_000_000_000,
            logs: vec![
                LogListEntry {
                    name: "acme".into(),
                    size: 12,
                    root: leaf_hash(b"a"),
                },
                LogListEntry {
                    name: "globex/eu".into(),
                    size: 0,
                    root: leaf_hash(b"b"),
                },
            ],
        }
    }

    #[test]
    fn a_signed_list_round_trips() {
        let signer = NoteSigner::generate("k").unwrap();
        let note = signer.sign_note(&list().body().unwrap()).unwrap();
        let text = signer.verifier().verify_note(&note).unwrap();
        let parsed = LogList::parse(text).unwrap();
        assert_eq!(parsed, list());
        assert_eq!(parsed.get("globex/eu").unwrap().size, 0);
        assert!(parsed.get("initech").is_none());
        // A list is never a valid checkpoint body.
        assert!(signer.verifier().verify_checkpoint(&note).is_err());
    }

    #[test]
    fn malformed_lists_are_refused() {
        let mut unsorted = list();
        unsorted.logs.reverse();
        assert!(unsorted.body().is_err());
        let body = list().body().unwrap();
        for broken in [
            body.replace("\n7\n", "\n07\n"),
            body.replace(" acme", " ac me"),
            body.replace("12 ", "x "),
            body.trim_end().to_owned(),
            format!("{body}\n"),
        ] {
            assert!(LogList::parse(&broken).is_err(), "{broken:?}");
        }
    }
}
