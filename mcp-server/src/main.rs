//! `meshos`: the Mesh OS binary — MCP server (stdio and streamable HTTP), REST ingest, metrics,
//! and the operator CLI. This crate is the only one that knows about transports; the logic it
//! serves lives in `meshos-service` (and the capability crates beneath it).

mod auth;
mod body_budget;
mod config;
mod conn_limits;
mod diagnose_cli;
mod evals_cli;
mod gateway_cli;
mod http;
mod incidents_cli;
mod jsonrpc;
mod limits;
mod mcp;
mod policy_cli;
mod rest;
mod sessions;
mod stdio;
mod witness;

// The transport-free parsers live in the library (src/lib.rs); `crate::checked` and
// `crate::event_batch` name them here as before.
use meshos_mcp_server::{checked, event_batch};

use meshos_demo as demo;
use meshos_service::{Mesh, TrustSetup, audit};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use meshos_evidence::{NoteSigner, NoteVerifier};
use meshos_policy::Bundle;
use meshos_store::{Store, redact_url};
use meshos_trust::TrustParams;
use meshos_trust::drift::DriftConfig;
use meshos_types::{Role, validate_id};
use rmcp::ServiceExt;

use meshos_service::bundle_source::{PolicyBundle, ReloadOutcome};
use meshos_service::webhook::WebhookSender;

use crate::config::{CommonArgs, Settings};

#[derive(Parser)]
#[command(
    name = "meshos",
    version,
    about = "Mesh OS: governance and self-healing for fleets of AI agents"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over streamable HTTP (/mcp) plus REST ingest, /healthz and /metrics.
    Serve {
        /// Listen address [default: 127.0.0.1:7700].
        #[arg(long, env = "MESHOS_BIND")]
        bind: Option<String>,
        /// Extra Host header values accepted on /mcp (DNS-rebinding protection); loopback names
        /// are always accepted. Repeatable.
        #[arg(
            long = "allowed-host",
            env = "MESHOS_ALLOWED_HOSTS",
            value_delimiter = ','
        )]
        allowed_hosts: Vec<String>,
        /// Run the healing loop in this server (one replica at a time holds the leader lease):
        /// incidents from drift, SLA breaches, violation bursts and failed evals, playbooks,
        /// approvals, verification.
        #[arg(long, env = "MESHOS_HEALER")]
        healer: bool,
        /// Also serve /metrics on this address, every series and no token (for a scraper on a
        /// private network); on the main address /metrics needs an operator, admin or auditor
        /// token and shows only that tenant's labelled series. [config: [metrics] bind]
        #[arg(long, env = "MESHOS_METRICS_BIND")]
        metrics_bind: Option<String>,
        /// Export each live agent's trust score as its own series, labelled with tenant and
        /// agent (off by default: clients choose agent ids). [config: [metrics] agent_labels]
        #[arg(long, env = "MESHOS_METRICS_AGENT_LABELS")]
        metrics_agent_labels: bool,
        /// Also serve the MCP governance gateway at /gateway/mcp, fronting the upstream MCP
        /// servers this TOML file lists (see README § Gateway).
        #[arg(long, env = "MESHOS_GATEWAY_CONFIG")]
        gateway_config: Option<std::path::PathBuf>,
    },
    /// Speak MCP over stdin/stdout (for Claude Desktop, Claude Code and other local clients).
    Mcp {
        /// Bearer token to act as.
        #[arg(long, env = "MESHOS_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Manage bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Work with policy bundles offline: check one request, run policy tests, scan text.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Verify the evidence ledger.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// A C2SP tlog-witness that cosigns this deployment's checkpoints, and its key.
    Witness {
        #[command(subcommand)]
        command: witness::WitnessCommand,
    },
    /// The MCP governance gateway: on stdio, and its pins, clients, approvals and scan.
    Gateway {
        #[command(subcommand)]
        command: gateway_cli::GatewayCommand,
    },
    /// Evals: run a suite and print its scored report, list, show, compare runs, pin a
    /// baseline, schedule suites on cron.
    Evals {
        #[command(subcommand)]
        command: evals_cli::EvalsCommand,
    },
    /// Healing incidents: list, show (with the timeline), approve or deny a plan, release controls.
    Incidents {
        #[command(subcommand)]
        command: incidents_cli::IncidentsCommand,
    },
    /// A simulated fleet (20+ agents) against `meshos serve --healer` through REST, with the
    /// faults the playbook library covers injected one after another; prints every incident's
    /// timeline (or, with --json, the run's figures).
    Demo(demo::DemoArgs),
    /// Pseudonyms issued by redaction.
    Pseudonym {
        #[command(subcommand)]
        command: PseudonymCommand,
    },
    /// Print the fleet's metric dependency graph (the file format `diagnose --graph` reads) built
    /// from a topology file (`{"entities":["kind:name"…],"depends_on":[[dependent,dependency]…]}`)
    /// and/or the calls observed in a tenant's stored events. Cycles from mutual calls go to stderr.
    Topology {
        /// Configured entities and dependencies.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// Add the relations observed in this tenant's events.
        #[arg(long)]
        tenant: Option<String>,
        /// Only events from the last N minutes (default: all).
        #[arg(long)]
        since_minutes: Option<u64>,
    },
    /// Rank root-cause candidates of an anomaly: a dependency graph (JSON
    /// `{"nodes":[…],"edges":[[cause,effect],…]}`) and metrics (CSV: `timestamp` in unix seconds,
    /// one column per node). Prints `{"ranking":[{"node","score","evidence"}…],"method","seconds"}`.
    Diagnose {
        #[arg(long)]
        graph: std::path::PathBuf,
        #[arg(long)]
        metrics: std::path::PathBuf,
        /// Unix seconds when the anomaly began; found by change-point detection when absent.
        #[arg(long)]
        anomaly_start: Option<i64>,
        /// `ensemble`, `circa`, `baro` or `pagerank`.
        #[arg(long, default_value = "ensemble")]
        method: String,
        /// How many candidates to print.
        #[arg(long, default_value_t = 5)]
        top: usize,
    },
}

#[derive(Subcommand)]
enum PseudonymCommand {
    /// Reveal the value behind a pseudonym (`psn_…`). Needs the data directory's ledger key and
    /// database; the reveal is appended to the evidence ledger (as `cli:<user>`, role admin,
    /// with your reason) before the value is printed.
    Reveal {
        pseudonym: String,
        #[arg(long)]
        tenant: String,
        /// Why the value is needed (10-1000 characters; audited).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (alone) on stdout. It is stored only as a hash.
    Create {
        #[arg(long)]
        tenant: String,
        /// agent, operator, auditor or admin.
        #[arg(long)]
        role: String,
        /// For role agent: the agent id the token acts as.
        #[arg(long)]
        agent: Option<String>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Evaluate one request (flags or --json) and print the decision as JSON. Stores nothing.
    Check {
        /// The whole request as JSON ({"agent_id","action","content",…}), or - for stdin.
        #[arg(long, conflicts_with_all = ["agent", "action"])]
        json: Option<String>,
        #[arg(long, required_unless_present = "json")]
        agent: Option<String>,
        #[arg(long, required_unless_present = "json")]
        action: Option<String>,
        #[arg(long)]
        content: Option<String>,
        /// Read the content from this file instead.
        #[arg(long, conflicts_with = "content")]
        content_file: Option<std::path::PathBuf>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        tool: Option<String>,
        #[arg(long)]
        region: Option<String>,
        /// Tenant to evaluate for [default: default].
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Run the YAML policy tests (*.tests.yaml in DIR and DIR/tests) against the bundle in DIR.
    Test { dir: std::path::PathBuf },
    /// Ask a running server to re-read its --policy-dir bundle now. Prints the outcome as JSON;
    /// exit 1 if the bundle was rejected (its errors are printed; the last good one serves).
    Reload {
        /// Server base URL [default: http://<bind address>].
        #[arg(long)]
        url: Option<String>,
        /// Operator or admin token.
        #[arg(long, env = "MESHOS_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Write DIR/bundle.sha256, the manifest every load checks (a file cut short, lost or added
    /// is then refused). Run it after each deliberate change to the bundle.
    Manifest {
        /// The bundle directory.
        dir: std::path::PathBuf,
    },
    /// Scan JSON lines {"id","text"} for sensitive content; writes one JSON line per input.
    Scan {
        /// Input file, or - for stdin.
        file: std::path::PathBuf,
    },
    /// Prove what is wrong with the bundle in DIR (cedar-policy-symcc + the cvc5 solver).
    ///
    /// Validates the bundle, then on every path a request can take (global, tenant folder,
    /// region, team) proves:
    ///   never-matches (error): no request the schema admits satisfies the policy's scope and
    ///     conditions on any path it is on, or it is on no reachable path;
    ///   shadowed-permit (error): a global/tenant permit whose every match is forbidden;
    ///   unreachable-obligation (error): a region/team obligation permit that never takes
    ///     effect (every request it matches is forbidden, or granted by no global/tenant permit);
    ///   conflicting-obligations (error): two permits with the same @obligation but different
    ///     @approver (require_approval) that both take effect on one request (a witness is shown);
    ///   redundant (warning): another policy on all its paths matches whatever it matches and
    ///     does at least as much (same effect; grants if it grants; same annotations).
    /// Forbids that narrow a permit are intended and not reported.
    ///
    /// Exit status: 0 no errors (warnings allowed), 1 errors found, 2 the bundle does not load
    /// or validate (its errors are printed), 3 the analysis could not run (e.g. no cvc5:
    /// `apt-get install cvc5`).
    #[command(verbatim_doc_comment)]
    Lint {
        /// The bundle directory.
        dir: std::path::PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// The cvc5 binary [default: cvc5 on PATH, else /usr/bin/cvc5].
        #[arg(long, env = "CVC5")]
        cvc5: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Re-derive every leaf from the stored records, rebuild the Merkle trees and check every
    /// signed checkpoint (and its consistency with the one before) and every signed tenant log
    /// list. Exits 1 naming the first record, checkpoint or list that does not match, a tenant
    /// log a list names that is gone or shorter, or an unsigned tail beyond the limits below.
    Verify {
        /// Only this tenant (repeatable); default all, including tenants only a list names.
        #[arg(long)]
        tenant: Vec<String>,
        /// Verify signatures with this verifier key instead of the data directory's key.
        #[arg(long)]
        verifier_key: Option<String>,
        /// Fail when a tenant has more leaves than this after its newest signature (0: every
        /// leaf must be signed, right for a store whose server stopped cleanly); default no
        /// count limit.
        #[arg(long)]
        max_unsigned_leaves: Option<u64>,
        /// Fail when a tenant's unsigned leaves were appended over more than this many seconds:
        /// the server signs every second, so only a kill leaves a short unsigned tail.
        #[arg(long, default_value_t = 10)]
        max_unsigned_seconds: u64,
        /// Require cosignatures by this witness (its cosigner verifier key, `meshos witness key
        /// show`), repeatable: every stored cosignature by it must verify, and each tenant's
        /// log must be covered by a checkpoint it cosigned but for a short uncosigned tail.
        #[arg(long = "witness-key")]
        witness_keys: Vec<String>,
        /// How many of the --witness-key witnesses must cosign a checkpoint [default: all].
        #[arg(long, requires = "witness_keys")]
        witnesses_required: Option<usize>,
        /// With --witness-key: fail when a tenant has more leaves than this after its newest
        /// cosigned checkpoint; default no count limit.
        #[arg(long, requires = "witness_keys")]
        max_uncosigned_leaves: Option<u64>,
        /// With --witness-key: fail when a tenant's uncosigned leaves were appended over more
        /// than this many seconds (witnesses cosign within about a second when reachable).
        #[arg(long, default_value_t = 30)]
        max_uncosigned_seconds: u64,
        /// Also ask each configured witness (--witness / [[witnesses]]) what it holds for every
        /// tenant, by submitting the newest stored checkpoint as the log would: fails when a
        /// witness has cosigned more than the store holds or another history (a rollback or a
        /// fork, even one left idle). Writes nothing to the store.
        #[arg(long)]
        ask_witnesses: bool,
    },
    /// Print the verifier key of the data directory's ledger key (what `audit verify
    /// --verifier-key` and `witness serve --log-key` take).
    VerifierKey,
}

/// How long in-flight requests get to finish after SIGTERM/Ctrl-C.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
const KEY_FILE: &str = "ledger.key";
const KEY_NAME: &str = "meshos-ledger";

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr: stdout carries the MCP protocol (stdio) or a command's output.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if settings.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "cannot create data directory {}",
                settings.data_dir.display()
            )
        })?;
    }
    Store::connect(&settings.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open database {}",
                redact_url(&settings.database_url)
            )
        })
}

/// Loads the ledger signing key from the data directory, creating it on first use.
fn load_or_create_signer(data_dir: &Path) -> anyhow::Result<NoteSigner> {
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read ledger key {}", path.display()))?;
        return NoteSigner::from_signer_key(text.trim())
            .with_context(|| format!("ledger key {} is not a valid signer key", path.display()));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let signer = NoteSigner::generate(KEY_NAME)?;
    write_private(&path, &format!("{}\n", signer.signer_key()))?;
    tracing::info!(path = %path.display(), verifier_key = %signer.verifier_key(), "created ledger signing key");
    Ok(signer)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

async fn build_mesh(settings: &Settings) -> anyhow::Result<Mesh> {
    let store = open_store(settings).await?;
    let signer = load_or_create_signer(&settings.data_dir)?;
    let bundle = match &settings.policy_dir {
        Some(dir) => PolicyBundle::from_dir(dir.clone())
            .with_context(|| format!("policy bundle {} was rejected", dir.display()))?,
        None => PolicyBundle::fixed(Bundle::embedded_default()?),
    };
    let mut builder = Mesh::builder(store, signer);
    if let Some(dir) = &settings.evals_dir {
        builder = builder.evals_dir(dir.clone());
    }
    Ok(builder
        .witnesses(settings.witnesses.clone())
        .bundle(bundle)
        .ledger_origin(settings.ledger_origin.clone())
        .limits(settings.limits.service)
        .agent_metrics(settings.metrics_agent_labels)
        .trust(TrustSetup {
            params: TrustParams {
                sla_threshold: settings.trust.sla.default_threshold(),
                ..TrustParams::default()
            },
            drift: DriftConfig::default(),
            sla: settings.trust.sla.clone(),
            webhooks: settings.trust.webhooks.clone(),
            sender: WebhookSender::new(settings.trust.delivery)?,
        })
        .build()?)
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn serve(
    settings: &Settings,
    bind: Option<String>,
    extra_hosts: Vec<String>,
    healer: bool,
    gateway_config: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let addr = settings.bind_addr(bind.as_deref())?;
    // A bad gateway file stops the server before it listens, not at the first call.
    let gateway_config = gateway_config
        .map(|path| meshos_gateway::GatewayConfig::load(&path))
        .transpose()?;
    let mesh = Arc::new(build_mesh(settings).await?);
    let mut allowed_hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !addr.ip().is_unspecified() {
        allowed_hosts.push(addr.ip().to_string());
    }
    allowed_hosts.extend(settings.allowed_hosts.clone().unwrap_or_default());
    allowed_hosts.extend(extra_hosts);

    spawn_trust_flusher(&mesh);
    spawn_upkeep(&mesh);

    // Cancelling this ends open MCP streams (SSE GETs of older protocol versions), which would
    // otherwise keep graceful shutdown waiting for clients that never hang up.
    let shutdown = tokio_util::sync::CancellationToken::new();
    spawn_bundle_watch(mesh.clone());
    // Eval schedules fire on the replica holding their lease, healer or not.
    tokio::spawn(meshos_service::eval_scheduler::run(
        mesh.clone(),
        Duration::from_secs(1),
        shutdown.child_token(),
    ));
    if healer {
        let h = meshos_service::healer_host::build(
            mesh.clone(),
            WebhookSender::new(settings.trust.delivery)?,
            settings.trust.webhooks.clone(),
        )?;
        tokio::spawn(meshos_service::healer_host::run(
            Arc::new(tokio::sync::Mutex::new(h)),
            mesh.clone(),
            Duration::from_secs(1),
            shutdown.child_token(),
        ));
    }
    let gateway = match &gateway_config {
        Some(config) => {
            let g = meshos_gateway::Gateway::new(mesh.clone(), config);
            g.start(shutdown.child_token()).await;
            Some(g)
        }
        None => None,
    };
    let console = meshos_console::Console::new(
        mesh.clone(),
        Arc::new(http::ConsoleTokens::new(mesh.clone())),
    )?;
    let app = http::router(
        mesh.clone(),
        allowed_hosts,
        shutdown.child_token(),
        settings.limits,
        gateway,
        console,
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let listener = conn_limits::GuardedListener::new(listener, settings.limits.connections);
    if let Some(metrics_bind) = &settings.metrics_bind {
        serve_metrics(mesh.clone(), metrics_bind, settings.limits.connections).await?;
    }
    tracing::info!(%addr, database = %redact_url(&settings.database_url), bundle = %mesh.bundle().current().version(), "meshos serving");
    let on_signal = shutdown.clone();
    let server = conn_limits::serve(listener, app, async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        on_signal.cancel();
    });
    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => result?,
        _ = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the grace period; closing them"),
    }
    mesh.shut_down().await;
    Ok(())
}

/// Serves `/metrics` (every series, no token) on the separate metrics address until the process
/// ends.
async fn serve_metrics(
    mesh: Arc<Mesh>,
    bind: &str,
    limits: conn_limits::ConnectionLimits,
) -> anyhow::Result<()> {
    let addr: std::net::SocketAddr = bind.parse().with_context(|| {
        format!("metrics address {bind:?} is not HOST:PORT, e.g. 127.0.0.1:9464")
    })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for /metrics"))?;
    let listener = conn_limits::GuardedListener::new(listener, limits);
    tracing::info!(%addr, "metrics served without a token");
    tokio::spawn(conn_limits::serve(
        listener,
        http::metrics_router(mesh),
        std::future::pending(),
    ));
    Ok(())
}

/// Signs checkpoints and expires budget reservations once a second, for as long as the process
/// lives (`serve` and `mcp` alike: records a stdio server appends are signed too), and submits
/// new checkpoints to the configured witnesses in tasks of their own.
pub(crate) fn spawn_upkeep(mesh: &Arc<Mesh>) {
    mesh.spawn_witness_submissions();
    let upkeep = mesh.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            upkeep.housekeeping().await;
        }
    });
}

/// Runs the live trust runtime's side effects (history, signals, alerts, webhooks,
/// notifications) for as long as the process lives.
pub(crate) fn spawn_trust_flusher(mesh: &Arc<Mesh>) {
    tokio::spawn(mesh.live().clone().run_flusher());
}

/// `POST {url}/v1/policy/reload` with a bearer token; the status and the JSON body.
async fn post_reload(url: &str, token: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    use http_body_util::{BodyExt, Empty};
    let uri: hyper::Uri = format!("{}/v1/policy/reload", url.trim_end_matches('/'))
        .parse()
        .with_context(|| {
            format!("--url {url:?} is not a URL; expected e.g. http://127.0.0.1:7700")
        })?;
    if uri.scheme_str() != Some("http") {
        bail!("--url {url:?}: only http:// is supported (put TLS in front with a proxy)");
    }
    let host = uri.host().context("--url has no host")?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .with_context(|| format!("cannot connect to {host}:{port}; is `meshos serve` running?"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::post(uri)
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(
            hyper::header::AUTHORIZATION,
            format!("Bearer {}", token.trim()),
        )
        .body(Empty::<axum::body::Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::json!({"error": String::from_utf8_lossy(&body)}));
    Ok((status, json))
}

/// Re-reads a `--policy-dir` bundle every 2 s and on SIGHUP; see `bundle_source`.
fn spawn_bundle_watch(mesh: Arc<Mesh>) {
    if mesh.bundle().reload() == ReloadOutcome::NotWatched {
        return;
    }
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            #[cfg(unix)]
            {
                let hangup = async {
                    match hup.as_mut() {
                        Some(s) => {
                            s.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! { _ = tick.tick() => {}, _ = hangup => {} }
            }
            #[cfg(not(unix))]
            tick.tick().await;
            match mesh.bundle().reload() {
                ReloadOutcome::Reloaded { from, to } => {
                    tracing::info!(%from, %to, "policy bundle reloaded")
                }
                ReloadOutcome::Rejected { version, error } => {
                    tracing::error!(%version, %error, "policy bundle rejected; the last good bundle keeps serving")
                }
                ReloadOutcome::NotWatched
                | ReloadOutcome::Unchanged
                | ReloadOutcome::StillRejected { .. } => {}
            }
        }
    });
}

/// The principal of a command run against the store directly: an admin of `tenant`, named
/// after the OS user (whoever holds the database holds the deployment).
pub(crate) fn cli_admin(tenant: &str) -> meshos_types::Principal {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    meshos_types::Principal {
        token_id: format!("cli:{user}"),
        tenant: tenant.to_string(),
        role: Role::Admin,
        agent_id: None,
    }
}

async fn serve_stdio(settings: &Settings, token: Option<String>) -> anyhow::Result<()> {
    let Some(token) = token else {
        bail!(
            "meshos mcp needs a token: set MESHOS_TOKEN or pass --token (create one with `meshos token create`)"
        );
    };
    let mesh = Arc::new(build_mesh(settings).await?);
    let principal = auth::authenticate(mesh.store(), token.trim())
        .await?
        .context("the token given to meshos mcp is not valid for this database")?;
    tracing::info!(tenant = %principal.tenant, role = %principal.role, "meshos mcp on stdio");
    spawn_bundle_watch(mesh.clone());
    spawn_trust_flusher(&mesh);
    spawn_upkeep(&mesh);
    let service = mcp::MeshMcp::new(mesh.clone(), Some(principal))
        .serve(stdio::StdioTransport::new(
            tokio::io::stdin(),
            tokio::io::stdout(),
            settings.limits.bodies.mcp_bytes,
        ))
        .await
        .context("MCP handshake on stdio failed")?;
    service.waiting().await?;
    mesh.shut_down().await;
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    let settings = Settings::resolve(&cli.common)?;
    init_logging(&settings);
    match cli.command {
        Command::Serve {
            bind,
            allowed_hosts,
            healer,
            metrics_bind,
            metrics_agent_labels,
            gateway_config,
        } => {
            let mut settings = settings;
            settings.metrics_bind = metrics_bind.or(settings.metrics_bind);
            settings.metrics_agent_labels |= metrics_agent_labels;
            serve(&settings, bind, allowed_hosts, healer, gateway_config)
                .await
                .map(|_| 0)
        }
        Command::Mcp { token } => serve_stdio(&settings, token).await.map(|_| 0),
        Command::Token {
            command:
                TokenCommand::Create {
                    tenant,
                    role,
                    agent,
                },
        } => create_token(&settings, tenant, &role, agent).await,
        Command::Policy { command } => run_policy(&settings, command).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Pseudonym {
            command:
                PseudonymCommand::Reveal {
                    pseudonym,
                    tenant,
                    reason,
                },
        } => reveal_pseudonym(&settings, pseudonym, tenant, reason).await,
        Command::Incidents { command } => incidents(&settings, command).await,
        Command::Evals { command } => {
            let mesh = build_mesh(&settings).await?;
            evals_cli::evals_cli(mesh, &settings.data_dir, command).await
        }
        Command::Gateway { command } => {
            let mesh = build_mesh(&settings).await?;
            gateway_cli::gateway_cli(mesh, settings.limits.bodies.mcp_bytes, command).await
        }
        Command::Topology {
            file,
            tenant,
            since_minutes,
        } => topology(&settings, file, tenant, since_minutes).await,
        Command::Diagnose {
            graph,
            metrics,
            anomaly_start,
            method,
            top,
        } => diagnose(&graph, &metrics, anomaly_start, &method, top),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    tenant,
                    verifier_key,
                    max_unsigned_leaves,
                    max_unsigned_seconds,
                    witness_keys,
                    witnesses_required,
                    max_uncosigned_leaves,
                    max_uncosigned_seconds,
                    ask_witnesses,
                },
        } => {
            let tail = audit::TailPolicy {
                max_leaves: max_unsigned_leaves,
                max_seconds: max_unsigned_seconds,
            };
            let witnesses = witness_policy(
                &witness_keys,
                witnesses_required,
                max_uncosigned_leaves,
                max_uncosigned_seconds,
            )?;
            if ask_witnesses && settings.witnesses.is_empty() {
                bail!(
                    "--ask-witnesses: no witness is configured; give --witness \"<url> <key>\" or [[witnesses]] in the config file"
                );
            }
            audit_verify(
                &settings,
                tenant,
                verifier_key,
                tail,
                &witnesses,
                ask_witnesses,
            )
            .await
        }
        Command::Audit {
            command: AuditCommand::VerifierKey,
        } => {
            println!("{}", ledger_verifier(&settings)?.verifier_key());
            Ok(0)
        }
        Command::Witness { command } => witness::run(&settings, command).await,
    }
}

/// `meshos token create`
async fn create_token(
    settings: &Settings,
    tenant: String,
    role: &str,
    agent: Option<String>,
) -> anyhow::Result<i32> {
    let role: Role = role.parse()?;
    validate_id("tenant", &tenant)?;
    let store = open_store(settings).await?;
    let token = auth::create_token(&store, &tenant, role, agent.as_deref()).await?;
    println!("{token}");
    store.close().await;
    Ok(0)
}

/// `meshos pseudonym reveal`: as `cli:<user>` with the admin role.
async fn reveal_pseudonym(
    settings: &Settings,
    pseudonym: String,
    tenant: String,
    reason: String,
) -> anyhow::Result<i32> {
    validate_id("tenant", &tenant)?;
    let path = settings.data_dir.join(KEY_FILE);
    if !path.exists() {
        bail!(
            "no ledger key at {}; pass the server's --data-dir (pseudonyms are sealed with a key derived from it)",
            path.display()
        );
    }
    let signer = load_or_create_signer(&settings.data_dir)?;
    let keys = meshos_service::keys::Keys::from_seed(&signer.seed());
    let store = open_store(settings).await?;
    let principal = cli_admin(&tenant);
    let revealed = meshos_service::reveal_pseudonym(
        &store,
        keys.tenants(),
        &principal,
        meshos_service::PseudonymRevealInput { pseudonym, reason },
    )
    .await;
    store.close().await;
    println!("{}", serde_json::to_string_pretty(&revealed?)?);
    Ok(0)
}

/// `meshos incidents …`
async fn incidents(
    settings: &Settings,
    command: incidents_cli::IncidentsCommand,
) -> anyhow::Result<i32> {
    let store = open_store(settings).await?;
    let version = Bundle::embedded_default()
        .map(|b| b.version().to_string())
        .unwrap_or_default();
    let out = incidents_cli::incidents_cli(store, version, command).await?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}

/// `meshos topology`
async fn topology(
    settings: &Settings,
    file: Option<PathBuf>,
    tenant: Option<String>,
    since_minutes: Option<u64>,
) -> anyhow::Result<i32> {
    if file.is_none() && tenant.is_none() {
        bail!("give --file, --tenant, or both: there is nothing to build the topology from");
    }
    let relations = match &tenant {
        Some(tenant) => {
            validate_id("tenant", tenant)?;
            let since_ms = since_minutes.map_or(0, |m| {
                meshos_types::now_ms().saturating_sub((m as i64).saturating_mul(60_000))
            });
            open_store(settings)
                .await?
                .call_relations(tenant, since_ms)
                .await?
        }
        None => Vec::new(),
    };
    let (graph, cycles) = diagnose_cli::topology_graph(file.as_deref(), &relations)?;
    for cycle in cycles {
        eprintln!("note: mutual dependency (cycle): {}", cycle.join(" ⇄ "));
    }
    println!("{}", serde_json::to_string_pretty(&graph)?);
    Ok(0)
}

/// `meshos diagnose`
fn diagnose(
    graph: &Path,
    metrics: &Path,
    anomaly_start: Option<i64>,
    method: &str,
    top: usize,
) -> anyhow::Result<i32> {
    let out = diagnose_cli::diagnose(graph, metrics, anomaly_start, method, top)?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}

/// What `audit verify --witness-key …` requires (nothing without a key).
fn witness_policy(
    keys: &[String],
    required: Option<usize>,
    max_leaves: Option<u64>,
    max_seconds: u64,
) -> anyhow::Result<audit::WitnessPolicy> {
    if keys.is_empty() {
        return Ok(audit::WitnessPolicy::default());
    }
    let keys = keys
        .iter()
        .map(|k| {
            meshos_evidence::CosignatureVerifier::parse(k.trim())
                .with_context(|| format!("--witness-key {k:?} is not a witness verifier key"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(audit::WitnessPolicy {
        max_leaves,
        max_seconds,
        ..audit::WitnessPolicy::new(keys, required)
            .map_err(|e| anyhow::anyhow!("--witness-key: {e}"))?
    })
}

/// The data directory's ledger verifier; an error (not a new key) when there is none.
fn ledger_verifier(settings: &Settings) -> anyhow::Result<NoteVerifier> {
    let path = settings.data_dir.join(KEY_FILE);
    if !path.exists() {
        bail!(
            "no ledger key at {}; pass --data-dir or --verifier-key",
            path.display()
        );
    }
    Ok(load_or_create_signer(&settings.data_dir)?.verifier())
}

/// `meshos audit verify`
async fn audit_verify(
    settings: &Settings,
    tenant: Vec<String>,
    verifier_key: Option<String>,
    tail: audit::TailPolicy,
    witnesses: &audit::WitnessPolicy,
    ask_witnesses: bool,
) -> anyhow::Result<i32> {
    let verifier = match verifier_key {
        Some(k) => NoteVerifier::parse(&k).context("--verifier-key is not a valid verifier key")?,
        None => ledger_verifier(settings)?,
    };
    let store = open_store(settings).await?;
    let mut report = audit::verify_with_witnesses(
        &store,
        &verifier,
        &settings.ledger_origin,
        &tenant,
        tail,
        witnesses,
    )
    .await?;
    let mut asked = String::new();
    if ask_witnesses && report.failure.is_none() {
        match audit::ask_witnesses(&store, &settings.witnesses, &tenant).await? {
            Ok(n) => asked = format!(", {n} witness views consistent with the store"),
            Err(why) => report.failure = Some(why),
        }
    }
    store.close().await;
    // Warnings go to stderr so that stdout stays one OK or FAIL line.
    for warning in &report.warnings {
        eprintln!("WARN: {warning}");
    }
    match report.failure {
        None => {
            let cosigned = if witnesses.witnesses.is_empty() {
                String::new()
            } else {
                format!(", {} witness cosignatures verified", report.cosignatures)
            };
            println!(
                "OK: {} tenant ledger(s), {} records re-derived, {} signed checkpoints verified, {} signed tenant log lists verified{cosigned}{asked}",
                report.tenants, report.leaves, report.checkpoints, report.log_lists
            );
            Ok(0)
        }
        Some(failure) => {
            println!("FAIL: {failure}");
            Ok(1)
        }
    }
}

async fn run_policy(settings: &Settings, command: PolicyCommand) -> anyhow::Result<i32> {
    match command {
        PolicyCommand::Reload { url, token } => policy_reload(settings, url, &token).await,
        PolicyCommand::Lint { dir, json, cvc5 } => {
            Ok(policy_cli::lint(&dir, json, cvc5.as_deref()).await)
        }
        PolicyCommand::Check {
            json,
            agent,
            action,
            content,
            content_file,
            model,
            tool,
            region,
            tenant,
        } => {
            let input = match json {
                Some(j) => policy_cli::read_request_json(&j)?,
                None => policy_cli::request_from_flags(
                    agent,
                    action,
                    content,
                    content_file.as_deref(),
                    model,
                    tool,
                    region,
                )?,
            };
            policy_check(settings, &tenant, input)
        }
        PolicyCommand::Test { dir } => policy_test(&dir),
        PolicyCommand::Scan { file } => policy_scan(&file),
        PolicyCommand::Manifest { dir } => policy_manifest(&dir),
    }
}

/// `meshos policy manifest DIR`: writes the manifest, then loads the bundle with it to show
/// the bundle is valid as written.
fn policy_manifest(dir: &Path) -> anyhow::Result<i32> {
    let files: Vec<_> = meshos_policy::read_bundle_files(dir)?
        .into_iter()
        .filter(|f| f.name != meshos_policy::MANIFEST_FILE)
        .collect();
    let path = dir.join(meshos_policy::MANIFEST_FILE);
    std::fs::write(&path, meshos_policy::manifest_text(&files))
        .with_context(|| format!("cannot write {}", path.display()))?;
    let bundle = Bundle::load_dir(dir).with_context(|| {
        format!(
            "{} was written, but the bundle does not load",
            path.display()
        )
    })?;
    println!(
        "{}: {} files, bundle {}",
        path.display(),
        files.len(),
        bundle.version()
    );
    Ok(0)
}

/// `meshos policy reload`: asks a running server to reload its bundle.
async fn policy_reload(
    settings: &Settings,
    url: Option<String>,
    token: &str,
) -> anyhow::Result<i32> {
    let url = match url {
        Some(u) => u,
        None => format!("http://{}", settings.bind_addr(None)?),
    };
    let (status, body) = post_reload(&url, token).await?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    match status {
        200 => Ok(0),
        422 => Ok(1),
        other => bail!(
            "{url}/v1/policy/reload answered HTTP {other}: {}",
            body.get("error").and_then(|e| e.as_str()).unwrap_or("")
        ),
    }
}

/// `meshos policy check`, offline.
fn policy_check(
    settings: &Settings,
    tenant: &str,
    input: meshos_service::PolicyCheckInput,
) -> anyhow::Result<i32> {
    let bundle = policy_cli::load_bundle(settings.policy_dir.as_deref())?;
    let out = policy_cli::check(
        &bundle,
        tenant,
        input,
        settings.limits.service.max_content_bytes,
    )?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}

/// `meshos policy test`
fn policy_test(dir: &Path) -> anyhow::Result<i32> {
    let results = policy_cli::run_tests(dir)?;
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    for r in &results {
        match &r.failure {
            None => println!("PASS {}: {}", r.file, r.name),
            Some(why) => println!("FAIL {}: {}\n     {why}", r.file, r.name),
        }
    }
    println!(
        "policy tests: {} passed, {failed} failed",
        results.len() - failed
    );
    Ok(if failed == 0 { 0 } else { 1 })
}

/// `meshos policy scan`
fn policy_scan(file: &Path) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let bad = if file.as_os_str() == "-" {
        policy_cli::scan(std::io::stdin().lock(), stdout.lock(), stderr.lock())?
    } else {
        let f =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        policy_cli::scan(std::io::BufReader::new(f), stdout.lock(), stderr.lock())?
    };
    if bad > 0 {
        eprintln!("meshos: {bad} line(s) could not be read; every other line was scanned");
        return Ok(1);
    }
    Ok(0)
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("meshos: error: {e:#}");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Each subcommand's help describes that subcommand (`topology` once showed `diagnose`'s).
    #[test]
    fn every_subcommand_describes_itself() {
        let cli = Cli::command();
        let about = |name: &str| {
            cli.find_subcommand(name)
                .and_then(|c| c.get_about())
                .map(|a| a.to_string())
                .unwrap_or_default()
        };
        assert!(
            about("topology").starts_with("Print the fleet's metric dependency graph"),
            "{}",
            about("topology")
        );
        assert!(
            about("diagnose").starts_with("Rank root-cause candidates"),
            "{}",
            about("diagnose")
        );
        assert!(
            about("incidents").contains("release"),
            "{}",
            about("incidents")
        );
    }
}
