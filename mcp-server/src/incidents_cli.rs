//! `meshos incidents …`: the operator's incident commands, run against the store directly.

use serde_json::{Value, json};

/// `meshos incidents …`: list, show, approve, deny against the store, as `cli:<user>` (admin:
/// whoever holds the database holds the deployment).
pub async fn incidents_cli(
    store: meshos_store::Store,
    policy_version: String,
    command: IncidentsCommand,
) -> anyhow::Result<Value> {
    Ok(match command {
        IncidentsCommand::List {
            tenant,
            state,
            limit,
            agent,
        } => {
            let states = meshos_service::incidents::listed_states(&state);
            let fetch = if agent.is_some() { 5_000 } else { limit };
            let rows = store.incidents(Some(&tenant), &states, fetch).await?;
            json!(
                rows.iter()
                    .filter(|i| agent
                        .as_deref()
                        .is_none_or(|a| meshos_service::incidents::affects(i, a)))
                    .take(limit as usize)
                    .map(meshos_service::incidents::summary)
                    .collect::<Vec<_>>()
            )
        }
        IncidentsCommand::Show { tenant, id } => {
            json!(meshos_healer::incident_view(&store, &tenant, &id).await?)
        }
        IncidentsCommand::Approve(args) => decide_cli(store, args, true).await?,
        IncidentsCommand::Deny(args) => decide_cli(store, args, false).await?,
        IncidentsCommand::Release { tenant, id, note } => {
            use anyhow::Context;
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            let view = meshos_service::incidents::release_on_store(
                store,
                policy_version,
                &tenant,
                &id,
                &format!("cli:{user}"),
                meshos_types::Role::Admin,
                note.as_deref(),
            )
            .await
            .context("the release was refused")?;
            json!(view)
        }
    })
}

async fn decide_cli(
    store: meshos_store::Store,
    args: DecideArgs,
    approve: bool,
) -> anyhow::Result<Value> {
    use anyhow::Context;
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let decision = meshos_healer::Decision {
        approve,
        digest: args.digest,
        actor: format!("cli:{user}"),
        role: meshos_types::Role::Admin,
        note: args.note,
    };
    let view = meshos_healer::decide(
        &store,
        &args.tenant,
        &args.id,
        &decision,
        meshos_types::now_ms(),
    )
    .await
    .context("the decision was refused")?;
    Ok(json!(view))
}

/// `meshos incidents …`
#[derive(Debug, clap::Subcommand)]
pub enum IncidentsCommand {
    /// The tenant's incidents, newest first.
    List {
        #[arg(long)]
        tenant: String,
        /// Only these states (repeatable), e.g. `awaiting_approval` (default: all but
        /// `observed`; `--state observed` lists the observations).
        #[arg(long)]
        state: Vec<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only incidents and observations that affect this agent.
        #[arg(long)]
        agent: Option<String>,
    },
    /// One incident with its timeline (every transition, with its ledger index).
    Show {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Approve the plan awaiting approval; `--digest` must be the plan digest `show` printed.
    Approve(DecideArgs),
    /// Deny the plan awaiting approval; the incident escalates.
    Deny(DecideArgs),
    /// Release every control the incident set now (quarantine, cap, revocation, pin, avoided
    /// region), without waiting for the healer's canary release; recorded on the ledger.
    Release {
        #[arg(long)]
        tenant: String,
        id: String,
        /// Why the controls can go.
        #[arg(long)]
        note: Option<String>,
    },
}

/// Which plan of which incident an approval or denial answers.
#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    #[arg(long)]
    tenant: String,
    id: String,
    #[arg(long)]
    digest: String,
    #[arg(long)]
    note: Option<String>,
}
