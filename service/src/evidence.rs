//! `evidence_fetch`: a stored record with its inclusion proof against the tenant's newest signed checkpoint.

use meshos_evidence::InclusionProof;
use meshos_types::{LedgerRecord, Principal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::checkpoints::CheckpointOutput;
use crate::mesh::{Mesh, MeshError, check_id, invalid};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceFetchInput {
    /// Fetch the evidence of one policy decision.
    #[serde(default)]
    pub decision_id: Option<String>,
    /// Fetch the evidence of one recorded event.
    #[serde(default)]
    pub event_id: Option<String>,
    /// Fetch the most recent decisions and events of an agent.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// With `agent_id`: how many records (1-200, default 20).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EvidenceRecord {
    /// Position in the tenant's ledger.
    pub ledger_index: u64,
    /// `decision` or `event`.
    pub record_type: String,
    pub record_id: String,
    /// RFC 6962 leaf hash (hex) of the record's canonical bytes.
    pub leaf_hash: String,
    /// The record as stored.
    pub record: serde_json::Value,
    /// Audit path from the leaf to the checkpoint's root.
    pub inclusion_proof: InclusionProof,
    /// The exact bytes the leaf hashes (`LedgerRecord::canonical_bytes`), for callers in this
    /// process that verify the leaf themselves (the console's pages); not serialised.
    #[serde(skip)]
    #[schemars(skip)]
    pub canonical_bytes: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EvidenceFetchOutput {
    pub records: Vec<EvidenceRecord>,
    pub checkpoint: CheckpointOutput,
}

pub(crate) fn record_json(record: &LedgerRecord) -> serde_json::Value {
    serde_json::to_value(record).unwrap_or(serde_json::Value::Null)
}

impl Mesh {
    pub async fn evidence_fetch(
        &self,
        principal: &Principal,
        input: EvidenceFetchInput,
    ) -> Result<EvidenceFetchOutput, MeshError> {
        let tenant = &principal.tenant;
        let selectors = [&input.decision_id, &input.event_id, &input.agent_id]
            .iter()
            .filter(|s| s.is_some())
            .count();
        if selectors != 1 {
            return Err(invalid(
                "decision_id|event_id|agent_id",
                "expected exactly one of decision_id, event_id or agent_id",
            ));
        }
        let mut records: Vec<(LedgerRecord, u64)> = Vec::new();
        if let Some(id) = &input.decision_id {
            check_id("decision_id", id)?;
            let (d, idx) = self.store.decision(tenant, id).await?.ok_or_else(|| {
                MeshError::NotFound(format!(
                    "no decision with decision_id {id:?} in this tenant"
                ))
            })?;
            principal
                .may_read_agent(&d.agent_id)
                .map_err(|e| MeshError::Forbidden(e.to_string()))?;
            let approval = self.store.approval_for_decision(tenant, &d.id).await?;
            records.push((LedgerRecord::Decision(d), idx));
            if let Some((a, i)) = approval {
                records.push((LedgerRecord::Approval(a), i));
            }
        } else if let Some(id) = &input.event_id {
            check_id("event_id", id)?;
            let (e, idx) = self.store.event(tenant, id).await?.ok_or_else(|| {
                MeshError::NotFound(format!("no event with event_id {id:?} in this tenant"))
            })?;
            principal
                .may_read_agent(&e.agent_id)
                .map_err(|e| MeshError::Forbidden(e.to_string()))?;
            records.push((LedgerRecord::Event(e), idx));
        } else if let Some(agent) = &input.agent_id {
            check_id("agent_id", agent)?;
            principal
                .may_read_agent(agent)
                .map_err(|e| MeshError::Forbidden(e.to_string()))?;
            let limit = input.limit.unwrap_or(20);
            if !(1..=200).contains(&limit) {
                return Err(invalid("limit", format!("{limit}; expected 1-200")));
            }
            if !self.store.agent_known(tenant, agent).await? {
                return Err(MeshError::NotFound(format!(
                    "unknown agent_id {agent:?}: no events or decisions in this tenant"
                )));
            }
            for (d, i) in self.store.recent_decisions(tenant, agent, limit).await? {
                records.push((LedgerRecord::Decision(d), i));
            }
            for (e, i) in self.store.recent_events(tenant, agent, limit).await? {
                records.push((LedgerRecord::Event(e), i));
            }
            records.sort_by_key(|r| std::cmp::Reverse(r.1));
            records.truncate(limit as usize);
        }

        self.prove(tenant, records).await
    }

    /// The record at one position of the principal's tenant ledger, with its proof: what the
    /// console's evidence page verifies in the browser. Any record type; agents may not ask.
    pub async fn evidence_at(
        &self,
        principal: &Principal,
        index: u64,
    ) -> Result<EvidenceFetchOutput, MeshError> {
        if principal.role == meshos_types::Role::Agent {
            return Err(MeshError::Forbidden(
                "an agent token cannot browse the ledger; expected an operator, admin or auditor token"
                    .into(),
            ));
        }
        let tenant = &principal.tenant;
        let missing =
            || MeshError::NotFound(format!("no ledger record at index {index} in this tenant"));
        let entry = self
            .store
            .ledger_entries(tenant, index, index.saturating_add(1))
            .await?
            .into_iter()
            .next()
            .ok_or_else(missing)?;
        let record = self
            .store
            .ledger_record(tenant, &entry)
            .await?
            .ok_or_else(missing)?;
        self.prove(tenant, vec![(record, index)]).await
    }

    /// Inclusion proofs of `records` (with their ledger indexes) against the tenant's newest
    /// signed checkpoint.
    async fn prove(
        &self,
        tenant: &str,
        records: Vec<(LedgerRecord, u64)>,
    ) -> Result<EvidenceFetchOutput, MeshError> {
        // The records were committed before we read the size, so the checkpoint covers them.
        let size = self.store.ledger_size(tenant).await?;
        let leaves = self.store.ledger_leaf_hashes(tenant, size).await?;
        let checkpoint = self.checkpoint_for(tenant, &leaves).await?;
        let mut out = Vec::with_capacity(records.len());
        for (record, index) in records {
            let proof = InclusionProof::build(&leaves, index).map_err(|e| {
                MeshError::Internal(format!("inclusion proof for index {index}: {e}"))
            })?;
            out.push(EvidenceRecord {
                ledger_index: index,
                record_type: record.kind().to_string(),
                record_id: record.id().to_string(),
                leaf_hash: proof.leaf_hash.clone(),
                record: record_json(&record),
                inclusion_proof: proof,
                canonical_bytes: record.canonical_bytes(),
            });
        }
        Ok(EvidenceFetchOutput {
            records: out,
            checkpoint: self.checkpoint_output(&checkpoint).await?,
        })
    }
}
