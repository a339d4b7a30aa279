//! The pseudonym vault and the re-identification trail.
//!
//! The store keeps sealed values only (sealing is the caller's job: the store holds no keys).
//! A re-identification is a ledger record like a decision, so revealing a pseudonym leaves the
//! same tamper-evident trace as any other governed action.

use meshos_types::{LedgerRecord, ReidentificationRecord, Role};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::group_commit::PseudonymRow;
use crate::{Store, StoreError, corrupt, insert_leaf, map_duplicate, next_ledger_index};

/// A pseudonym to keep: its id, entity kind and sealed original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPseudonym {
    pub pseudonym: String,
    pub entity: String,
    pub sealed: String,
}

const REIDENTIFICATION_SELECT_BY_ID: &str = concat!(
    "SELECT id, tenant, pseudonym, entity, requested_by, requested_by_role, reason, created_at_ms, ",
    "ledger_index FROM reidentifications WHERE tenant = $1 AND id = $2"
);

impl Store {
    /// Keeps sealed pseudonyms, in one transaction. A pseudonym already stored is left as it
    /// is: it is a keyed hash of the value, so the row already holds the same value.
    pub async fn put_pseudonyms(
        &self,
        tenant: &str,
        items: &[SealedPseudonym],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        // Through the group-commit writer: on the policy-check path these share a transaction
        // (and its fsync) with the decisions being appended at the same time.
        let rows = items
            .iter()
            .map(|item| PseudonymRow::new(tenant, item, at_ms))
            .collect();
        self.writer
            .submit(crate::group_commit::Append {
                pseudonyms: rows,
                ..Default::default()
            })
            .await
            .map(|_| ())
    }

    /// The sealed original behind a pseudonym of this tenant.
    pub async fn pseudonym(
        &self,
        tenant: &str,
        pseudonym: &str,
    ) -> Result<Option<SealedPseudonym>, StoreError> {
        let row = sqlx::query(
            "SELECT pseudonym, entity, sealed FROM pseudonyms WHERE tenant = $1 AND pseudonym = $2",
        )
        .bind(tenant)
        .bind(pseudonym)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SealedPseudonym {
                pseudonym: r.try_get("pseudonym")?,
                entity: r.try_get("entity")?,
                sealed: r.try_get("sealed")?,
            })
        })
        .transpose()
    }

    /// Records a re-identification and appends its ledger leaf in one transaction.
    pub async fn append_reidentification(
        &self,
        r: &ReidentificationRecord,
    ) -> Result<u64, StoreError> {
        let record = LedgerRecord::Reidentification(r.clone());
        let mut tx = self.pool.begin().await?;
        let index = next_ledger_index(&mut tx, &r.tenant).await?;
        let inserted = sqlx::query(
            "INSERT INTO reidentifications (id, tenant, pseudonym, entity, requested_by, \
             requested_by_role, reason, created_at_ms, ledger_index) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&r.id)
        .bind(&r.tenant)
        .bind(&r.pseudonym)
        .bind(&r.entity)
        .bind(&r.requested_by)
        .bind(r.requested_by_role.as_str())
        .bind(&r.reason)
        .bind(r.created_at_ms)
        .bind(index as i64)
        .execute(&mut *tx)
        .await;
        map_duplicate(inserted, &r.id)?;
        insert_leaf(&mut tx, &r.tenant, index, &record, r.created_at_ms).await?;
        tx.commit().await?;
        Ok(index)
    }

    pub async fn reidentification(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<(ReidentificationRecord, u64)>, StoreError> {
        let row = sqlx::query(REIDENTIFICATION_SELECT_BY_ID)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| reidentification_from_row(&r)).transpose()
    }
}

fn reidentification_from_row(r: &AnyRow) -> Result<(ReidentificationRecord, u64), StoreError> {
    let role: String = r.try_get("requested_by_role")?;
    let record = ReidentificationRecord {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        pseudonym: r.try_get("pseudonym")?,
        entity: r.try_get("entity")?,
        requested_by: r.try_get("requested_by")?,
        requested_by_role: role
            .parse::<Role>()
            .map_err(|e| corrupt("reidentifications.requested_by_role", e))?,
        reason: r.try_get("reason")?,
        created_at_ms: r.try_get("created_at_ms")?,
    };
    let index: i64 = r.try_get("ledger_index")?;
    Ok((record, index as u64))
}
