//! Re-identification of a pseudonym: only for an operator or admin with a reason, recorded on the ledger before the value is revealed.

use meshos_policy::is_pseudonym_id;
use meshos_store::Store;
use meshos_types::{Principal, ReidentificationRecord, Role, new_id, now_ms, rfc3339_ms};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mesh::{Mesh, MeshError, invalid};
use crate::vault::TenantKeys;

/// An operator's request to see the value behind a pseudonym.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PseudonymRevealInput {
    /// The pseudonym, e.g. `psn_3f9a0c4d2b1e8f7a6c5d` (redacted content shows it as
    /// `[EMAIL:psn_…]`).
    pub pseudonym: String,
    /// Why the original value is needed (10-1000 characters); kept in the evidence ledger.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PseudonymRevealOutput {
    pub pseudonym: String,
    /// Entity kind, e.g. `EMAIL`.
    pub entity: String,
    /// The original value.
    pub value: String,
    /// The ledger record of this re-identification.
    pub reidentification_id: String,
    pub ledger_index: u64,
    pub revealed_at: String,
}

// ---- operations ------------------------------------------------------------------------

/// Re-identifies a pseudonym for an operator or admin. The re-identification is written to
/// the evidence ledger before the value is opened, so no value is ever revealed unaudited.
/// Shared by the `pseudonym_reveal` tool and `meshos pseudonym reveal`.
pub async fn reveal_pseudonym(
    store: &Store,
    keys: &TenantKeys,
    principal: &Principal,
    input: PseudonymRevealInput,
) -> Result<PseudonymRevealOutput, MeshError> {
    if !matches!(principal.role, Role::Operator | Role::Admin) {
        return Err(MeshError::Forbidden(format!(
            "role {} cannot re-identify pseudonyms; expected an operator or admin token",
            principal.role
        )));
    }
    if !is_pseudonym_id(&input.pseudonym) {
        return Err(invalid(
            "pseudonym",
            format!(
                "{:?} is not a pseudonym; expected `psn_` followed by 20 lowercase hex digits",
                input.pseudonym
            ),
        ));
    }
    let reason = input.reason.trim();
    if !(10..=1000).contains(&reason.chars().count()) {
        return Err(invalid(
            "reason",
            "expected 10-1000 characters saying why the value is needed (it is audited)",
        ));
    }
    let sealed = store
        .pseudonym(&principal.tenant, &input.pseudonym)
        .await?
        .ok_or_else(|| {
            MeshError::NotFound(format!(
                "no pseudonym {:?} in this tenant; expected one issued by a redaction here",
                input.pseudonym
            ))
        })?;
    let record = ReidentificationRecord {
        id: new_id("rid"),
        tenant: principal.tenant.clone(),
        pseudonym: sealed.pseudonym.clone(),
        entity: sealed.entity.clone(),
        requested_by: principal.token_id.clone(),
        requested_by_role: principal.role,
        reason: reason.to_string(),
        created_at_ms: now_ms(),
    };
    let ledger_index = store.append_reidentification(&record).await?;
    let value = keys
        .open(&principal.tenant, &sealed.pseudonym, &sealed.sealed)
        .map_err(|e| MeshError::Internal(format!("pseudonym {}: {e}", sealed.pseudonym)))?;
    Ok(PseudonymRevealOutput {
        pseudonym: sealed.pseudonym,
        entity: sealed.entity,
        value,
        reidentification_id: record.id,
        ledger_index,
        revealed_at: rfc3339_ms(record.created_at_ms),
    })
}

impl Mesh {
    /// Records an operator's approve/refuse of a `require_approval` decision, once.
    pub async fn pseudonym_reveal(
        &self,
        principal: &Principal,
        input: PseudonymRevealInput,
    ) -> Result<PseudonymRevealOutput, MeshError> {
        let out = reveal_pseudonym(&self.store, self.keys.tenants(), principal, input).await?;
        self.metrics.reidentifications.inc();
        Ok(out)
    }
}
