//! What `meshos gateway` must not lose: the pins of upstream tool definitions (each on the
//! ledger) and the registry of clients it has seen.

use sqlx::Row;
use sqlx::any::AnyRow;

use meshos_types::{LedgerRecord, ToolPinRecord};

use crate::{Store, StoreError, corrupt, insert_leaf, map_duplicate, next_ledger_index};

/// A pin record as stored, with where it sits on the ledger and the definition it pinned.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredToolPin {
    pub record: ToolPinRecord,
    pub ledger_index: u64,
    /// The canonical JSON the digest was taken over (absent for a removal).
    pub definition: Option<String>,
}

/// A client of the gateway: an agent (by its token) running a program.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredGatewayClient {
    pub tenant: String,
    pub agent_id: String,
    pub client_name: String,
    pub client_version: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub calls: u64,
    pub tools_used: Vec<String>,
    /// The decision that admitted it (or holds it for an operator).
    pub decision_id: Option<String>,
}

/// Activity to add to a client's row: calls since the last flush and the tools they used.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayClientActivity {
    pub tenant: String,
    pub agent_id: String,
    pub client_name: String,
    pub last_seen_ms: i64,
    pub calls: u64,
    pub tools_used: Vec<String>,
}

/// Distinct tools remembered per client.
const MAX_TOOLS_USED: usize = 256;

macro_rules! pin_columns {
    () => {
        "id, tenant, server, tool, digest, change, status, findings, decision_id, \
         created_at_ms, ledger_index, definition"
    };
}

macro_rules! client_columns {
    () => {
        "tenant, agent_id, client_name, client_version, first_seen_ms, last_seen_ms, calls, \
         tools_used, decision_id"
    };
}

fn pin_from_row(r: &AnyRow) -> Result<StoredToolPin, StoreError> {
    let findings: String = r.try_get("findings")?;
    let index: i64 = r.try_get("ledger_index")?;
    Ok(StoredToolPin {
        record: ToolPinRecord {
            id: r.try_get("id")?,
            tenant: r.try_get("tenant")?,
            server: r.try_get("server")?,
            tool: r.try_get("tool")?,
            digest: r.try_get("digest")?,
            change: r.try_get("change")?,
            status: r.try_get("status")?,
            findings: serde_json::from_str(&findings)
                .map_err(|e| corrupt("tool_pins.findings", e))?,
            decision_id: r.try_get("decision_id")?,
            created_at_ms: r.try_get("created_at_ms")?,
        },
        ledger_index: u64::try_from(index).map_err(|e| corrupt("tool_pins.ledger_index", e))?,
        definition: r.try_get("definition")?,
    })
}

fn client_from_row(r: &AnyRow) -> Result<StoredGatewayClient, StoreError> {
    let calls: i64 = r.try_get("calls")?;
    let tools: String = r.try_get("tools_used")?;
    Ok(StoredGatewayClient {
        tenant: r.try_get("tenant")?,
        agent_id: r.try_get("agent_id")?,
        client_name: r.try_get("client_name")?,
        client_version: r.try_get("client_version")?,
        first_seen_ms: r.try_get("first_seen_ms")?,
        last_seen_ms: r.try_get("last_seen_ms")?,
        calls: u64::try_from(calls).map_err(|e| corrupt("gateway_clients.calls", e))?,
        tools_used: serde_json::from_str(&tools)
            .map_err(|e| corrupt("gateway_clients.tools_used", e))?,
        decision_id: r.try_get("decision_id")?,
    })
}

impl Store {
    /// Stores a pin record and appends it to the tenant's ledger, in one transaction.
    /// Returns its ledger index.
    pub async fn append_tool_pin(
        &self,
        pin: &ToolPinRecord,
        definition: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let index = next_ledger_index(&mut tx, &pin.tenant).await?;
        let inserted = sqlx::query(concat!(
            "INSERT INTO tool_pins (",
            pin_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&pin.id)
        .bind(&pin.tenant)
        .bind(&pin.server)
        .bind(&pin.tool)
        .bind(&pin.digest)
        .bind(&pin.change)
        .bind(&pin.status)
        .bind(pin.findings.to_string())
        .bind(&pin.decision_id)
        .bind(pin.created_at_ms)
        .bind(i64::try_from(index).map_err(|e| corrupt("tool_pins.ledger_index", e))?)
        .bind(definition)
        .execute(&mut *tx)
        .await;
        map_duplicate(inserted, &pin.id)?;
        // The leaf is built from the row as stored (findings read back as JSON), so that
        // audit's re-derivation hashes the same bytes.
        let row = sqlx::query(concat!(
            "SELECT ",
            pin_columns!(),
            " FROM tool_pins WHERE tenant = $1 AND id = $2"
        ))
        .bind(&pin.tenant)
        .bind(&pin.id)
        .fetch_one(&mut *tx)
        .await?;
        let stored = pin_from_row(&row)?;
        let record = LedgerRecord::ToolPin(stored.record);
        insert_leaf(&mut tx, &pin.tenant, index, &record, pin.created_at_ms).await?;
        tx.commit().await?;
        Ok(index)
    }

    /// One pin record, for audit re-derivation.
    pub(crate) async fn tool_pin(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ToolPinRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            pin_columns!(),
            " FROM tool_pins WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| pin_from_row(&r).map(|p| p.record)).transpose()
    }

    /// Every tool's newest pin record in the tenant, by server and tool.
    pub async fn tool_pins(&self, tenant: &str) -> Result<Vec<StoredToolPin>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            pin_columns!(),
            " FROM tool_pins p WHERE tenant = $1 AND ledger_index = \
             (SELECT MAX(q.ledger_index) FROM tool_pins q \
              WHERE q.tenant = p.tenant AND q.server = p.server AND q.tool = p.tool) \
             ORDER BY server, tool"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(pin_from_row).collect()
    }

    /// A tool's pin records, oldest first.
    pub async fn tool_pin_history(
        &self,
        tenant: &str,
        server: &str,
        tool: &str,
    ) -> Result<Vec<StoredToolPin>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            pin_columns!(),
            " FROM tool_pins WHERE tenant = $1 AND server = $2 AND tool = $3 \
             ORDER BY ledger_index"
        ))
        .bind(tenant)
        .bind(server)
        .bind(tool)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(pin_from_row).collect()
    }

    /// The client, registering it first if it is new and its agent has fewer than
    /// `max_per_agent` clients. Returns it and whether it was new; `None` when it is new and the
    /// agent already has that many (each new client costs a decision and a row, so one agent
    /// token must not be able to make them without end).
    pub async fn gateway_client_seen(
        &self,
        tenant: &str,
        agent_id: &str,
        client_name: &str,
        client_version: &str,
        now_ms: i64,
        max_per_agent: u32,
    ) -> Result<Option<(StoredGatewayClient, bool)>, StoreError> {
        let inserted = sqlx::query(concat!(
            "INSERT INTO gateway_clients (",
            client_columns!(),
            ") SELECT $1, $2, $3, $4, $5, $5, 0, '[]', NULL \
             WHERE (SELECT COUNT(*) FROM gateway_clients WHERE tenant = $1 AND agent_id = $2) < $6 \
             ON CONFLICT (tenant, agent_id, client_name) DO NOTHING"
        ))
        .bind(tenant)
        .bind(agent_id)
        .bind(client_name)
        .bind(client_version)
        .bind(now_ms)
        .bind(i64::from(max_per_agent))
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM gateway_clients WHERE tenant = $1 AND agent_id = $2 AND client_name = $3"
        ))
        .bind(tenant)
        .bind(agent_id)
        .bind(client_name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((client_from_row(&r)?, inserted.rows_affected() == 1)))
            .transpose()
    }

    /// Records the decision that admits (or holds) a client.
    pub async fn set_gateway_client_decision(
        &self,
        tenant: &str,
        agent_id: &str,
        client_name: &str,
        decision_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE gateway_clients SET decision_id = $1 \
             WHERE tenant = $2 AND agent_id = $3 AND client_name = $4",
        )
        .bind(decision_id)
        .bind(tenant)
        .bind(agent_id)
        .bind(client_name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Adds calls and tools to clients' rows (the gateway flushes what it counted in memory).
    pub async fn add_gateway_client_activity(
        &self,
        activity: &[GatewayClientActivity],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for a in activity {
            let row = sqlx::query(
                "SELECT tools_used FROM gateway_clients \
                 WHERE tenant = $1 AND agent_id = $2 AND client_name = $3",
            )
            .bind(&a.tenant)
            .bind(&a.agent_id)
            .bind(&a.client_name)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { continue };
            let text: String = row.try_get("tools_used")?;
            let mut tools: Vec<String> = serde_json::from_str(&text)
                .map_err(|e| corrupt("gateway_clients.tools_used", e))?;
            for t in &a.tools_used {
                if tools.len() < MAX_TOOLS_USED && !tools.contains(t) {
                    tools.push(t.clone());
                }
            }
            tools.sort();
            sqlx::query(
                "UPDATE gateway_clients SET calls = calls + $1, tools_used = $2, \
                 last_seen_ms = CASE WHEN last_seen_ms > $3 THEN last_seen_ms ELSE $3 END \
                 WHERE tenant = $4 AND agent_id = $5 AND client_name = $6",
            )
            .bind(i64::try_from(a.calls).unwrap_or(i64::MAX))
            .bind(serde_json::to_string(&tools).unwrap_or_else(|_| "[]".into()))
            .bind(a.last_seen_ms)
            .bind(&a.tenant)
            .bind(&a.agent_id)
            .bind(&a.client_name)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's clients, most recently seen first.
    pub async fn gateway_clients(
        &self,
        tenant: &str,
    ) -> Result<Vec<StoredGatewayClient>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM gateway_clients WHERE tenant = $1 ORDER BY last_seen_ms DESC, agent_id"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(client_from_row).collect()
    }
}
