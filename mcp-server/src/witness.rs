//! `meshos witness`: a C2SP tlog-witness (<https://c2sp.org/tlog-witness>) for the tenant logs
//! of a Mesh OS deployment, and its key.
//!
//! `POST /add-checkpoint` takes `old <size>`, a consistency proof and a checkpoint signed by a
//! trusted log key (`--log-key`) whose origin is `<ledger origin>/<tenant>`, checks it with
//! [`AddCheckpoint::check`] against the checkpoint it last cosigned for that origin, writes the
//! new one to its state directory (one file per origin, written to a temporary file, synced,
//! renamed and the directory synced) and only then answers with its cosignature line. One
//! request is checked and persisted at a time, so two concurrent submissions cannot roll the
//! stored size back. Bodies are read up to 64 KiB (413 past that) on a listener with at most
//! 256 connections, each closed when it has not sent a request's headers within 10 s or is
//! idle 60 s.
//!
//! The log side (the `--witness` setting, `[[witnesses]]` in the config file) is resolved here
//! too, into the service's [`WitnessEndpoint`]s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Subcommand;
use meshos_evidence::{
    AddCheckpoint, Checkpoint, CosignatureSigner, NoteVerifier, WitnessError, note_text,
};
use meshos_service::WitnessEndpoint;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::conn_limits::{self, ConnectionLimits, GuardedListener};

/// Largest `add-checkpoint` body read: 63 proof lines and a checkpoint with up to 100
/// signature lines fit many times over.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
const DEFAULT_BIND: &str = "127.0.0.1:7780";
const KEY_FILE: &str = "witness.key";
const STATE_DIR: &str = "witness-state";
const LIMITS: ConnectionLimits = ConnectionLimits {
    max_connections: 256,
    header_timeout: Duration::from_secs(10),
    idle_timeout: Duration::from_secs(60),
};

#[derive(Subcommand)]
pub enum WitnessCommand {
    /// Run a C2SP tlog-witness for this deployment's tenant logs.
    ///
    /// `POST /add-checkpoint` cosigns a checkpoint signed by a --log-key whose origin is
    /// `<ledger origin>/<tenant>`
    /// (the global --ledger-origin, default meshos.local/ledger) once it is consistent with the
    /// last one it cosigned for that origin. Answers 400 malformed, 403 not signed by a log key,
    /// 404 unknown origin, 409 `old` is not the size it holds (body: that size), 413 body over
    /// 64 KiB, 422 the consistency proof fails.
    Serve {
        /// Listen address [default: 127.0.0.1:7780].
        #[arg(long, env = "MESHOS_WITNESS_BIND")]
        bind: Option<String>,
        /// The witness's signer key [default: <data dir>/witness.key]; make one with
        /// `meshos witness key generate`.
        #[arg(long, env = "MESHOS_WITNESS_KEY_FILE")]
        key_file: Option<PathBuf>,
        /// Where the last cosigned checkpoint of each log is kept [default: <data dir>/witness-state].
        #[arg(long, env = "MESHOS_WITNESS_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// Verifier key of the log's signer (`meshos audit verifier-key` on the log's data
        /// directory prints it). Repeatable (a key rotation); at least one.
        #[arg(
            long = "log-key",
            env = "MESHOS_WITNESS_LOG_KEYS",
            value_delimiter = ',',
            required = true
        )]
        log_keys: Vec<String>,
    },
    /// Witness keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a witness key (Ed25519, cosignature/v1) in a new file (mode 0600; an existing
    /// file is never overwritten) and print its verifier key on stdout: give that to the log
    /// (`--witness "<url> <key>"`) and to auditors (`audit verify --witness-key`).
    Generate {
        /// The witness's name, by convention a schema-less URL, e.g. witness.example.com/w1.
        #[arg(long)]
        name: String,
        /// [default: <data dir>/witness.key]
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Print the verifier key of an existing witness key.
    Show {
        /// [default: <data dir>/witness.key]
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
}

/// `meshos witness …`
pub async fn run(settings: &Settings, command: WitnessCommand) -> anyhow::Result<i32> {
    let default_key = || settings.data_dir.join(KEY_FILE);
    match command {
        WitnessCommand::Key {
            command: KeyCommand::Generate { name, key_file },
        } => {
            let path = key_file.unwrap_or_else(default_key);
            let signer = CosignatureSigner::generate(&name)
                .with_context(|| format!("--name {name:?} cannot name a witness key"))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            crate::write_private(&path, &format!("{}\n", signer.signer_key()))?;
            eprintln!("witness key written to {}", path.display());
            println!("{}", signer.verifier_key());
            Ok(0)
        }
        WitnessCommand::Key {
            command: KeyCommand::Show { key_file },
        } => {
            let signer = load_key(&key_file.unwrap_or_else(default_key))?;
            println!("{}", signer.verifier_key());
            Ok(0)
        }
        WitnessCommand::Serve {
            bind,
            key_file,
            state_dir,
            log_keys,
        } => {
            let signer = load_key(&key_file.unwrap_or_else(default_key))?;
            let logs = log_keys
                .iter()
                .map(|k| {
                    NoteVerifier::parse(k.trim())
                        .with_context(|| format!("--log-key {k:?} is not a log verifier key"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let addr: SocketAddr = bind
                .as_deref()
                .unwrap_or(DEFAULT_BIND)
                .parse()
                .context("--bind is not HOST:PORT, e.g. 127.0.0.1:7780")?;
            let state_dir = state_dir.unwrap_or_else(|| settings.data_dir.join(STATE_DIR));
            let witness = Witness::open(signer, logs, settings.ledger_origin.clone(), state_dir)?;
            serve(witness, addr).await?;
            Ok(0)
        }
    }
}

fn load_key(path: &Path) -> anyhow::Result<CosignatureSigner> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the witness key {} (make one with `meshos witness key generate`)",
            path.display()
        )
    })?;
    CosignatureSigner::from_signer_key(text.trim())
        .with_context(|| format!("{} is not a witness signer key", path.display()))
}

/// The witness: its key, the logs it trusts, and the checkpoint it last cosigned per origin.
pub struct Witness {
    signer: CosignatureSigner,
    logs: Vec<NoteVerifier>,
    /// Origins it witnesses are `<prefix>/<tenant>`.
    origin_prefix: String,
    dir: PathBuf,
    /// Held from the check to the end of the write: the check and the update are one step.
    latest: tokio::sync::Mutex<HashMap<String, Checkpoint>>,
    /// When a contradiction was last logged, per origin (at most one warning a minute each).
    warned: std::sync::Mutex<HashMap<String, std::time::Instant>>,
}

impl Witness {
    /// Opens (creating) the state directory and reads every origin's last cosigned checkpoint.
    pub fn open(
        signer: CosignatureSigner,
        logs: Vec<NoteVerifier>,
        origin_prefix: String,
        dir: PathBuf,
    ) -> anyhow::Result<Witness> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        let mut latest = HashMap::new();
        for entry in std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read the state directory {}", dir.display()))?
        {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "note") {
                continue; // a temporary file a crash left behind, or not ours
            }
            let cp = read_state(&path)?;
            latest.insert(cp.origin.clone(), cp);
        }
        Ok(Witness {
            signer,
            logs,
            origin_prefix,
            dir,
            latest: tokio::sync::Mutex::new(latest),
            warned: Default::default(),
        })
    }

    fn knows(&self, origin: &str) -> bool {
        origin
            .strip_prefix(&self.origin_prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|tenant| meshos_types::validate_id("tenant", tenant).is_ok())
    }

    /// The whole `add-checkpoint` exchange: the cosignature line, or the refusal.
    pub async fn add_checkpoint(&self, body: &[u8]) -> Result<String, Refusal> {
        let body = std::str::from_utf8(body)
            .map_err(|_| WitnessError::Malformed("the body is not UTF-8".into()))?;
        let request = AddCheckpoint::parse(body)?;
        let claimed = request.claimed()?;
        if !self.knows(&claimed.origin) {
            return Err(WitnessError::UnknownOrigin(claimed.origin).into());
        }
        let mut latest = self.latest.lock().await;
        let held = latest.get(&claimed.origin);
        let checkpoint = match request.check(&self.logs, held) {
            Ok(cp) => cp,
            Err(e) => {
                match &e {
                    WitnessError::BadProof(_) | WitnessError::RootMismatch { .. }
                        if self.first_warning_in_a_minute(&claimed.origin) =>
                    {
                        // Signed by the log and contradicting what it signed before: evidence
                        // of a fork or a rollback, worth keeping in the log.
                        tracing::warn!(origin = %claimed.origin, held = held.map_or(0, |h| h.size), size = claimed.size, error = %e, note = ?request.note, "a log-signed checkpoint contradicts what this witness cosigned");
                    }
                    _ => tracing::debug!(origin = %claimed.origin, error = %e, "refused"),
                }
                return Err(e.into());
            }
        };
        if held != Some(&checkpoint) {
            let path = self.state_path(&checkpoint.origin);
            let note = request.note.clone();
            tokio::task::spawn_blocking(move || write_state(&path, &note))
                .await
                .map_err(|e| Refusal::Internal(e.to_string()))?
                .map_err(|e| Refusal::Internal(format!("{e:#}")))?;
            latest.insert(checkpoint.origin.clone(), checkpoint);
        }
        drop(latest);
        let text = note_text(&request.note).map_err(|e| Refusal::Internal(e.to_string()))?;
        self.signer
            .cosign(text, unix_seconds())
            .map_err(|e| Refusal::Internal(e.to_string()))
    }

    fn first_warning_in_a_minute(&self, origin: &str) -> bool {
        let now = std::time::Instant::now();
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        match warned.get(origin) {
            Some(at) if now.duration_since(*at) < Duration::from_secs(60) => false,
            _ => {
                warned.insert(origin.to_string(), now);
                true
            }
        }
    }

    fn state_path(&self, origin: &str) -> PathBuf {
        self.dir
            .join(format!("{}.note", hex::encode(Sha256::digest(origin))))
    }
}

/// Why `add-checkpoint` did not cosign.
#[derive(Debug)]
pub enum Refusal {
    Witness(WitnessError),
    /// The state could not be written: nothing was cosigned.
    Internal(String),
}

impl From<WitnessError> for Refusal {
    fn from(e: WitnessError) -> Self {
        Refusal::Witness(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Witness(e) => {
                let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
                match e.latest_size() {
                    Some(size) => (
                        status,
                        [(header::CONTENT_TYPE, "text/x.tlog.size")],
                        format!("{size}\n"),
                    )
                        .into_response(),
                    None => (status, format!("{e}\n")).into_response(),
                }
            }
            Refusal::Internal(why) => {
                tracing::error!(error = %why, "witness state not written; nothing cosigned");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the witness could not store its state\n",
                )
                    .into_response()
            }
        }
    }
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A state file: the signed checkpoint note last cosigned for one origin, named by the
/// SHA-256 of the origin.
fn read_state(path: &Path) -> anyhow::Result<Checkpoint> {
    let note = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read witness state {}", path.display()))?;
    let cp = note_text(&note)
        .map_err(anyhow::Error::from)
        .and_then(|text| Checkpoint::parse(text).map_err(anyhow::Error::from))
        .with_context(|| format!("witness state {} is not a checkpoint note", path.display()))?;
    let expected = format!("{}.note", hex::encode(Sha256::digest(&cp.origin)));
    if path.file_name().is_none_or(|n| n != expected.as_str()) {
        bail!(
            "witness state {} holds origin {:?}, whose file is {expected}",
            path.display(),
            cp.origin
        );
    }
    Ok(cp)
}

/// Replaces a state file so that a crash leaves the old one or the new one, never a mix, and
/// the new one is on disk before the witness answers.
fn write_state(path: &Path, note: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(note.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    match witness.add_checkpoint(&body).await {
        Ok(line) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], line).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// `POST /add-checkpoint` (bodies over 64 KiB: 413) and `GET /healthz`.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route(
            "/add-checkpoint",
            post(add_checkpoint).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(witness)
}

async fn serve(witness: Witness, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(
        %addr,
        verifier_key = %witness.signer.verifier_key(),
        origins = %format!("{}/<tenant>", witness.origin_prefix),
        log_keys = witness.logs.len(),
        logs_held = witness.latest.lock().await.len(),
        "meshos witness serving"
    );
    let app = router(Arc::new(witness));
    conn_limits::serve(
        GuardedListener::new(listener, LIMITS),
        app,
        crate::shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// One `[[witnesses]]` entry of the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessFileConfig {
    /// The witness's submission prefix (`/add-checkpoint` is appended).
    pub url: String,
    /// Its cosigner verifier key (`meshos witness key show`).
    pub key: String,
}

/// The witnesses a server submits its checkpoints to: the config file's, then each
/// `--witness "<url> <key>"`. The same witness key twice is an error.
pub fn resolve_endpoints(
    flags: &[String],
    file: Vec<WitnessFileConfig>,
) -> anyhow::Result<Vec<WitnessEndpoint>> {
    let mut out: Vec<WitnessEndpoint> = Vec::new();
    let mut add = |what: String, url: &str, key: &str| -> anyhow::Result<()> {
        let endpoint = WitnessEndpoint::new(url.trim(), key.trim())
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        if out.iter().any(|w| w.label() == endpoint.label()) {
            bail!(
                "{what}: witness key {} is configured twice",
                endpoint.label()
            );
        }
        out.push(endpoint);
        Ok(())
    };
    for (i, w) in file.into_iter().enumerate() {
        add(format!("[[witnesses]] #{}", i + 1), &w.url, &w.key)?;
    }
    for flag in flags {
        let what = format!("--witness {flag:?} (MESHOS_WITNESSES)");
        let Some((url, key)) = flag.trim().split_once(char::is_whitespace) else {
            bail!("{what}: expected \"<url> <witness verifier key>\"");
        };
        add(what, url, key)?;
    }
    Ok(out)
}

#[cfg(test)]
#[path = "witness_tests.rs"]
mod tests;
