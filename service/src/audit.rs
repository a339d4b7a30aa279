//! `meshos audit verify`: re-derives every ledger leaf from the stored records, rebuilds each
//! tenant's Merkle tree and checks every signed checkpoint against it.

use meshos_evidence::{NoteVerifier, tree_root};
use meshos_store::{Store, StoreError};

#[derive(Debug, Default)]
pub struct AuditReport {
    pub tenants: usize,
    pub leaves: u64,
    pub checkpoints: usize,
    /// The first problem found, naming the record or checkpoint.
    pub failure: Option<String>,
}

/// Verifies the ledgers of `tenants` (every tenant when empty); stops at the first mismatch.
pub async fn verify(
    store: &Store,
    verifier: &NoteVerifier,
    origin_prefix: &str,
    tenants: &[String],
) -> Result<AuditReport, StoreError> {
    let tenants = if tenants.is_empty() {
        store.ledger_tenants().await?
    } else {
        tenants.to_vec()
    };
    let mut report = AuditReport::default();
    for tenant in &tenants {
        report.tenants += 1;
        if let Some(failure) =
            verify_tenant(store, verifier, origin_prefix, tenant, &mut report).await?
        {
            report.failure = Some(failure);
            return Ok(report);
        }
    }
    Ok(report)
}

async fn verify_tenant(
    store: &Store,
    verifier: &NoteVerifier,
    origin_prefix: &str,
    tenant: &str,
    report: &mut AuditReport,
) -> Result<Option<String>, StoreError> {
    let size = store.ledger_size(tenant).await?;
    let entries = store.ledger_entries(tenant, 0, size).await?;
    if entries.len() as u64 != size {
        return Ok(Some(format!(
            "tenant {tenant}: ledger head says {size} leaves but {} are stored",
            entries.len()
        )));
    }
    let mut leaves = Vec::with_capacity(entries.len());
    for (expected, entry) in entries.iter().enumerate() {
        if entry.index != expected as u64 {
            return Ok(Some(format!(
                "tenant {tenant}: ledger index {expected} is missing"
            )));
        }
        let what = format!(
            "tenant {tenant}, ledger index {}: {} {}",
            entry.index, entry.record_type, entry.record_id
        );
        let record = match store.ledger_record(tenant, entry).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Some(format!("{what} is missing from the store"))),
            Err(StoreError::Corrupt { what: col, detail }) => {
                return Ok(Some(format!(
                    "{what} cannot be read back ({col}: {detail})"
                )));
            }
            Err(e) => return Err(e),
        };
        let derived = meshos_evidence::leaf_hash(&record.canonical_bytes());
        if derived != entry.leaf_hash {
            return Ok(Some(format!(
                "{what} does not match its ledger leaf: the record was changed after it was logged"
            )));
        }
        leaves.push(entry.leaf_hash);
        report.leaves += 1;
    }

    let origin = format!("{origin_prefix}/{tenant}");
    for stored in store.checkpoints(tenant).await? {
        let label = format!("tenant {tenant}: checkpoint of size {}", stored.size);
        let cp = match verifier.verify_checkpoint(&stored.note) {
            Ok(cp) => cp,
            Err(e) => return Ok(Some(format!("{label} has no valid signature: {e}"))),
        };
        if cp.origin != origin {
            return Ok(Some(format!(
                "{label} names origin {:?}, expected {origin:?}",
                cp.origin
            )));
        }
        if cp.size != stored.size || cp.size > size {
            return Ok(Some(format!(
                "{label} commits to {} leaves but the ledger has {size}",
                cp.size
            )));
        }
        if tree_root(&leaves[..cp.size as usize]) != cp.root {
            return Ok(Some(format!(
                "{label}: the ledger's leaves no longer hash to the signed root (a leaf hash was altered or reordered)"
            )));
        }
        report.checkpoints += 1;
    }
    Ok(None)
}
