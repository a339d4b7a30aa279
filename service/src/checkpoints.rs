//! Signed checkpoints of each tenant's ledger, and the signed list of every tenant log: both
//! refreshed every second by `serve`, the checkpoints incrementally from the last frontier.
//!
//! The signer never signs a history that contradicts one it signed before: a log shorter than
//! its newest checkpoint or its entry in the newest tenant log list, or whose leaves no longer
//! hash to a root signed for them, gets no new checkpoint, and a list that would drop or
//! shrink a tenant is not signed. Otherwise a restart over a rewritten store would launder the
//! rewrite with fresh signatures. Nothing here deletes a checkpoint or a list.

use meshos_evidence::{Checkpoint, Frontier, Hash, LogList, LogListEntry, hash_to_hex, tree_root};
use meshos_store::{StoredCheckpoint, StoredLogList};
use meshos_types::now_ms;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mesh::{Mesh, MeshError};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CheckpointOutput {
    /// C2SP tlog-checkpoint signed with Ed25519 in the signed-note format.
    pub text: String,
    /// Log origin (first line of the checkpoint).
    pub origin: String,
    /// Number of leaves the checkpoint commits to.
    pub size: u64,
    /// Merkle root (hex).
    pub root_hash: String,
    /// Verifier key of the signer (Go `sumdb/note` format).
    pub verifier_key: String,
    /// Witness cosignatures of this checkpoint (C2SP tlog-cosignature v1 signature lines), by
    /// the witnesses this server is configured with, each verified over `text`: append them
    /// to `text` for the cosigned note. Empty until a witness has cosigned this checkpoint
    /// (within about a second of its signing), or when no witness is configured.
    #[serde(default)]
    pub cosignatures: Vec<String>,
}

/// The origin line of a deployment's tenant log lists: `<prefix> tenant logs`. A tenant's
/// checkpoint origin is `<prefix>/<tenant>`, so the two can never be the same text.
pub fn log_list_origin(origin_prefix: &str) -> String {
    format!("{origin_prefix} tenant logs")
}

fn tampered(why: String) -> MeshError {
    MeshError::Internal(format!(
        "{why}; refusing to sign (run `meshos audit verify`)"
    ))
}

impl Mesh {
    pub fn origin_for(&self, tenant: &str) -> String {
        format!("{}/{}", self.ledger_origin, tenant)
    }

    /// The signed checkpoint for exactly these leaves, signing and storing it if it is new.
    /// A stored one is returned only if its signed root is the root of `leaves`.
    pub async fn checkpoint_for(
        &self,
        tenant: &str,
        leaves: &[meshos_evidence::Hash],
    ) -> Result<StoredCheckpoint, MeshError> {
        let root = tree_root(leaves);
        let stored = self
            .checkpoint_at(tenant, leaves.len() as u64, || root)
            .await?;
        let signed = self.open_checkpoint(&stored)?;
        if signed.root != root {
            return Err(MeshError::Internal(format!(
                "tenant {tenant}: the ledger's {} leaves no longer hash to the root signed for them (run `meshos audit verify`)",
                leaves.len()
            )));
        }
        Ok(stored)
    }

    /// The signed checkpoint for the tenant's log at `size` (the stored one if it exists);
    /// `root` is only computed when a new one must be signed.
    pub(crate) async fn checkpoint_at(
        &self,
        tenant: &str,
        size: u64,
        root: impl FnOnce() -> meshos_evidence::Hash,
    ) -> Result<StoredCheckpoint, MeshError> {
        if let Some(latest) = self.store.latest_checkpoint(tenant).await? {
            if latest.size == size {
                return Ok(latest);
            }
            // A newer checkpoint is normal (the tick, or another server, signed after our
            // caller read the size); a ledger shorter than a signed checkpoint is not.
            if latest.size > size {
                let now = self.store.ledger_size(tenant).await?;
                if now < latest.size {
                    return Err(tampered(format!(
                        "tenant {tenant}: the ledger has {now} leaves but a checkpoint for {} was signed",
                        latest.size
                    )));
                }
            }
        }
        let cp = Checkpoint {
            origin: self.origin_for(tenant),
            size,
            root: root(),
        };
        let note = self
            .signer
            .sign_checkpoint(&cp)
            .map_err(|e| MeshError::Internal(format!("signing checkpoint: {e}")))?;
        let stored = StoredCheckpoint {
            tenant: tenant.to_string(),
            size,
            root: cp.root,
            note,
            created_at_ms: now_ms(),
        };
        self.store.save_checkpoint(&stored).await?;
        Ok(stored)
    }

    /// The checkpoint a stored note signs, checked against this deployment's key and the
    /// tenant's origin: what is served comes from here, never from the unsigned columns.
    fn open_checkpoint(&self, stored: &StoredCheckpoint) -> Result<Checkpoint, MeshError> {
        let tenant = &stored.tenant;
        let cp = self
            .signer
            .verifier()
            .verify_checkpoint(&stored.note)
            .map_err(|e| {
                MeshError::Internal(format!(
                    "tenant {tenant}: the stored checkpoint of size {} does not verify: {e}",
                    stored.size
                ))
            })?;
        if cp.origin != self.origin_for(tenant) || cp.size != stored.size {
            return Err(MeshError::Internal(format!(
                "tenant {tenant}: the stored checkpoint of size {} signs {:?} at size {}",
                stored.size, cp.origin, cp.size
            )));
        }
        Ok(cp)
    }

    /// Signs a checkpoint for every tenant whose log grew since its last one, then a new
    /// tenant log list if any log grew or appeared. A tenant whose log contradicts what was
    /// signed for it gets nothing and holds back the list; the others are still signed.
    pub async fn refresh_checkpoints(&self) -> Result<usize, MeshError> {
        let previous = self.latest_log_list().await?;
        let mut tenants = self.store.ledger_tenants().await?;
        // Byte order, the list's order, whatever the database's collation.
        tenants.sort();
        let mut signed = 0;
        let mut first_error = None;
        let mut latest = Vec::with_capacity(tenants.len());
        for tenant in tenants {
            let anchor = previous.as_ref().and_then(|l| l.get(&tenant)).cloned();
            match self.refresh_tenant(&tenant, anchor.as_ref()).await {
                Ok((cp, new)) => {
                    signed += usize::from(new);
                    latest.push(cp);
                }
                Err(e) => {
                    tracing::error!(tenant, error = %e, "tenant checkpoint not signed");
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        self.refresh_log_list(previous, &latest).await?;
        Ok(signed)
    }

    /// The tenant's newest checkpoint, signing one first if the log grew; `true` when new.
    async fn refresh_tenant(
        &self,
        tenant: &str,
        anchor: Option<&LogListEntry>,
    ) -> Result<(StoredCheckpoint, bool), MeshError> {
        // Signed state first, then the size: the log only grows, so a size read after a
        // signature is never below it unless the log was cut back.
        let latest = self.store.latest_checkpoint(tenant).await?;
        let size = self.store.ledger_size(tenant).await?;
        if let Some(a) = anchor
            && a.size > size
        {
            return Err(tampered(format!(
                "tenant {tenant}: the ledger has {size} leaves but the signed tenant log list names {}",
                a.size
            )));
        }
        if let Some(latest) = &latest
            && latest.size == size
        {
            return Ok((latest.clone(), false));
        }
        let mut frontier = self
            .frontiers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
            .unwrap_or_default();
        if frontier.size() > size {
            // The log cannot shrink; a frontier ahead of it means it was replaced
            // (restored database): start over from its leaves.
            frontier = Frontier::new();
        }
        // Roots signed earlier for sizes this pass hashes through: the leaves must still
        // give them (a frontier kept in memory already passed them).
        let mut anchors: Vec<(u64, Hash)> = Vec::new();
        if let Some(a) = anchor {
            anchors.push((a.size, a.root));
        }
        if let Some(cp) = &latest {
            anchors.push((cp.size, self.open_checkpoint(cp)?.root));
        }
        anchors.retain(|(s, _)| *s > frontier.size() && *s <= size);
        let new_leaves = self
            .store
            .ledger_leaf_hashes_between(tenant, frontier.size(), size)
            .await?;
        for leaf in new_leaves {
            frontier.push(leaf);
            for (at, root) in &anchors {
                if frontier.size() == *at && frontier.root() != *root {
                    return Err(tampered(format!(
                        "tenant {tenant}: the ledger's first {at} leaves no longer hash to the root signed for them"
                    )));
                }
            }
        }
        if frontier.size() != size {
            return Err(MeshError::Internal(format!(
                "tenant {tenant}: the ledger has {size} leaves but {} could be read",
                frontier.size()
            )));
        }
        let root = frontier.root();
        let cp = self.checkpoint_at(tenant, size, || root).await?;
        self.frontiers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_string(), frontier);
        Ok((cp, true))
    }

    /// The newest stored tenant log list, verified.
    async fn latest_log_list(&self) -> Result<Option<LogList>, MeshError> {
        let stored = self.store.latest_log_list().await?;
        let seen = *self.log_list_seq.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(seen) = seen
            && stored.as_ref().is_none_or(|s| s.seq < seen)
        {
            return Err(tampered(format!(
                "signed tenant log list #{seen} is gone from the store"
            )));
        }
        let Some(stored) = stored else {
            return Ok(None);
        };
        let list = self
            .signer
            .verifier()
            .verify_note(&stored.note)
            .map_err(|e| e.to_string())
            .and_then(|text| LogList::parse(text).map_err(|e| e.to_string()))
            .map_err(|e| tampered(format!("the newest tenant log list does not verify: {e}")))?;
        if list.origin != log_list_origin(&self.ledger_origin) || list.seq != stored.seq {
            return Err(tampered(format!(
                "the tenant log list stored as #{} signs {:?} #{}",
                stored.seq, list.origin, list.seq
            )));
        }
        self.remember_log_list(list.seq);
        Ok(Some(list))
    }

    fn remember_log_list(&self, seq: u64) {
        let mut seen = self.log_list_seq.lock().unwrap_or_else(|p| p.into_inner());
        *seen = Some(seen.map_or(seq, |s| s.max(seq)));
    }

    /// Signs and stores a new list when a log grew or appeared since `previous`. Every log
    /// `previous` names must still be there, at least as long.
    async fn refresh_log_list(
        &self,
        previous: Option<LogList>,
        latest: &[StoredCheckpoint],
    ) -> Result<(), MeshError> {
        // Most ticks change nothing: compare the columns first and verify the notes (one
        // signature check per tenant) only when they differ from the newest list.
        if let Some(prev) = &previous
            && prev.logs.len() == latest.len()
            && prev
                .logs
                .iter()
                .zip(latest)
                .all(|(l, cp)| l.name == cp.tenant && l.size == cp.size && l.root == cp.root)
        {
            return Ok(());
        }
        let mut logs = Vec::with_capacity(latest.len());
        for stored in latest {
            // The signed values, not the columns beside them.
            let cp = self.open_checkpoint(stored)?;
            logs.push(LogListEntry {
                name: stored.tenant.clone(),
                size: cp.size,
                root: cp.root,
            });
        }
        if let Some(prev) = &previous {
            if prev.logs == logs {
                return Ok(());
            }
            for old in &prev.logs {
                match logs.binary_search_by(|l| l.name.cmp(&old.name)) {
                    Err(_) => {
                        return Err(tampered(format!(
                            "tenant {}: its log is named by signed tenant log list #{} but no longer exists",
                            old.name, prev.seq
                        )));
                    }
                    Ok(i) if logs[i].size < old.size => {
                        return Err(tampered(format!(
                            "tenant {}: its log has {} leaves but signed tenant log list #{} names {}",
                            old.name, logs[i].size, prev.seq, old.size
                        )));
                    }
                    Ok(_) => {}
                }
            }
        }
        let now = now_ms();
        let list = LogList {
            origin: log_list_origin(&self.ledger_origin),
            seq: previous.map_or(0, |p| p.seq + 1),
            time_ms: u64::try_from(now).unwrap_or(0),
            logs,
        };
        let note = list
            .body()
            .and_then(|body| self.signer.sign_note(&body))
            .map_err(|e| MeshError::Internal(format!("signing the tenant log list: {e}")))?;
        // `false`: another server on this store wrote this sequence number first; the next
        // tick reads its list and continues from there.
        if self
            .store
            .save_log_list(&StoredLogList {
                seq: list.seq,
                note,
                created_at_ms: now,
            })
            .await?
        {
            self.remember_log_list(list.seq);
        }
        Ok(())
    }

    /// What clients are served about a checkpoint, every field taken from the verified note
    /// (and the cosignatures that verify over it).
    pub async fn checkpoint_output(
        &self,
        stored: &StoredCheckpoint,
    ) -> Result<CheckpointOutput, MeshError> {
        let cp = self.open_checkpoint(stored)?;
        Ok(CheckpointOutput {
            text: stored.note.clone(),
            origin: cp.origin,
            size: cp.size,
            root_hash: hash_to_hex(&cp.root),
            verifier_key: self.signer.verifier_key(),
            cosignatures: self.verified_cosignatures(stored).await?,
        })
    }
}
