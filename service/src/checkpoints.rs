//! Signed checkpoints of each tenant's ledger: refreshed every second by `serve`, incrementally from the last frontier.

use meshos_evidence::{Checkpoint, Frontier, hash_to_hex, tree_root};
use meshos_store::StoredCheckpoint;
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
}

impl Mesh {
    pub fn origin_for(&self, tenant: &str) -> String {
        format!("{}/{}", self.ledger_origin, tenant)
    }

    /// The signed checkpoint for exactly these leaves, signing and storing it if it is new.
    pub async fn checkpoint_for(
        &self,
        tenant: &str,
        leaves: &[meshos_evidence::Hash],
    ) -> Result<StoredCheckpoint, MeshError> {
        self.checkpoint_at(tenant, leaves.len() as u64, || tree_root(leaves))
            .await
    }

    /// The signed checkpoint for the tenant's log at `size` (the stored one if it exists);
    /// `root` is only computed when a new one must be signed.
    pub(crate) async fn checkpoint_at(
        &self,
        tenant: &str,
        size: u64,
        root: impl FnOnce() -> meshos_evidence::Hash,
    ) -> Result<StoredCheckpoint, MeshError> {
        if let Some(latest) = self.store.latest_checkpoint(tenant).await?
            && latest.size == size
        {
            return Ok(latest);
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

    /// Signs a checkpoint for every tenant whose log grew since its last one.
    pub async fn refresh_checkpoints(&self) -> Result<usize, MeshError> {
        let mut signed = 0;
        for tenant in self.store.ledger_tenants().await? {
            let size = self.store.ledger_size(&tenant).await?;
            let latest = self.store.latest_checkpoint(&tenant).await?.map(|c| c.size);
            if latest == Some(size) {
                continue;
            }
            let mut frontier = self
                .frontiers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&tenant)
                .cloned()
                .unwrap_or_default();
            if frontier.size() > size {
                // The log cannot shrink; a frontier ahead of it means it was replaced
                // (restored database): start over from its leaves.
                frontier = Frontier::new();
            }
            let new_leaves = self
                .store
                .ledger_leaf_hashes_between(&tenant, frontier.size(), size)
                .await?;
            for leaf in new_leaves {
                frontier.push(leaf);
            }
            if frontier.size() != size {
                return Err(MeshError::Internal(format!(
                    "tenant {tenant}: the ledger has {size} leaves but {} could be read",
                    frontier.size()
                )));
            }
            let root = frontier.root();
            self.checkpoint_at(&tenant, size, || root).await?;
            self.frontiers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(tenant, frontier);
            signed += 1;
        }
        Ok(signed)
    }

    pub fn checkpoint_output(&self, cp: &StoredCheckpoint) -> CheckpointOutput {
        CheckpointOutput {
            text: cp.note.clone(),
            origin: self.origin_for(&cp.tenant),
            size: cp.size,
            root_hash: hash_to_hex(&cp.root),
            verifier_key: self.signer.verifier_key(),
        }
    }
}
