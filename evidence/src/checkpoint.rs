//! C2SP `tlog-checkpoint` bodies: the text a log signs to commit to a tree
//! size and root (<https://c2sp.org/tlog-checkpoint>).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::EvidenceError;
use crate::merkle::Hash;

/// A log's commitment to its state: origin (the log's identity), tree size
/// and RFC 6962 root hash.
///
/// Extension lines are accepted by [`Checkpoint::parse`] but not kept: this
/// log writes none, and nothing here gives them a meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint body: `"<origin>\n<size>\n<base64 root>\n"`.
    ///
    /// An origin that is empty or holds a newline or other control character
    /// gives a body that [`Checkpoint::parse`] rejects;
    /// [`crate::NoteSigner::sign_checkpoint`] refuses to sign such a body.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parse a checkpoint body (the text of a signed note, signatures already
    /// stripped). Extra non-empty extension lines after the root are allowed.
    pub fn parse(body: &str) -> Result<Checkpoint, EvidenceError> {
        let bad = |why: String| EvidenceError::MalformedCheckpoint(why);
        let Some(content) = body.strip_suffix('\n') else {
            return Err(bad("body does not end with a newline".into()));
        };
        let mut lines = content.split('\n');
        let origin = lines.next().unwrap_or_default();
        check_origin(origin)?;
        let Some(size_line) = lines.next() else {
            return Err(bad("missing tree size line".into()));
        };
        let size = parse_size(size_line)?;
        let Some(root_line) = lines.next() else {
            return Err(bad("missing root hash line".into()));
        };
        let root_bytes = B64.decode(root_line).map_err(|e| {
            bad(format!(
                "root hash {root_line:?} is not standard base64: {e}"
            ))
        })?;
        let root: Hash = root_bytes.as_slice().try_into().map_err(|_| {
            bad(format!(
                "root hash is {} bytes, expected 32 (SHA-256)",
                root_bytes.len()
            ))
        })?;
        for (n, ext) in lines.enumerate() {
            if ext.is_empty() {
                return Err(bad(format!("extension line {} is empty", n + 1)));
            }
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

pub(crate) fn check_origin(origin: &str) -> Result<(), EvidenceError> {
    if origin.is_empty() {
        return Err(EvidenceError::MalformedCheckpoint(
            "origin line is empty".into(),
        ));
    }
    if origin.chars().any(char::is_control) {
        return Err(EvidenceError::MalformedCheckpoint(format!(
            "origin {origin:?} contains a control character"
        )));
    }
    Ok(())
}

fn parse_size(line: &str) -> Result<u64, EvidenceError> {
    let bad = |why: &str| EvidenceError::MalformedCheckpoint(format!("tree size {line:?} {why}"));
    // The spec wants plain ASCII decimal; u64::from_str alone would also take
    // a leading '+', and leading zeros would give two bodies for one size.
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("is not a decimal number"));
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(bad("has leading zeros"));
    }
    line.parse::<u64>()
        .map_err(|_| bad("does not fit in 64 bits"))
}
