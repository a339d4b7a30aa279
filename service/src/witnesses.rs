//! Cosigning by witnesses (C2SP `tlog-witness`): every second, each tenant's newest signed
//! checkpoint goes to every configured witness (`POST <url>/add-checkpoint`) with the RFC 6962
//! consistency proof from the size that witness last cosigned, and the cosignature it answers
//! with is verified with the witness's key and stored beside the checkpoint
//! (`checkpoint_cosignatures`, append-only).
//!
//! Nothing waits on a witness: each one has its own task, apart from checkpoint signing, so a
//! witness that is down, slow or refusing costs a warning (at most one per 30 s per witness and
//! kind of failure), a `meshos_witness_submissions_total{witness,outcome}` count and a retry on
//! the next tick. A witness that answers 409 with another size than the one this process
//! thought it held (a store restored from a backup, another server on the store) is followed to
//! that size; one that holds a larger tree than the log, or another root at the same size,
//! means the log was rolled back or forked: that is logged as an error and counted as a
//! `conflict`, never worked around.
//!
//! What is proven to a witness comes from the stored leaves, with the tree frontier at the
//! size it last cosigned kept in memory (built from the leaves once per tenant after a
//! restart), so each submission reads only the leaves appended since.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshos_evidence::{
    AddCheckpoint, Cosignature, CosignatureVerifier, Frontier, add_signatures, parse_size_body,
};
use meshos_store::{Store, StoreError, StoredCheckpoint, StoredCosignature};
use meshos_types::now_ms;

use crate::mesh::{Mesh, MeshError};

/// One request to a witness, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A witness answers with a few signature lines; a longer answer is not read past this.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// How much of a refusal's body a warning quotes.
const QUOTED_BYTES: usize = 300;
/// At most one warning per witness and kind of failure (`SubmitError::kind`) this often (every failure is counted
/// in the metrics).
const WARN_EVERY: Duration = Duration::from_secs(30);
/// How long shutdown waits for a last round of cosignatures.
const SHUTDOWN_ROUND: Duration = Duration::from_secs(5);

/// A witness the log submits its checkpoints to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessEndpoint {
    /// The witness's submission prefix; requests go to `<url>/add-checkpoint`.
    pub url: reqwest::Url,
    /// The witness's cosignature key: answers that do not verify with it are not stored.
    pub verifier: CosignatureVerifier,
}

impl WitnessEndpoint {
    /// A witness at `url` (http or https) whose cosignatures verify with the cosigner key
    /// `vkey` (`<name>+<hex8>+<base64(0x04 || key)>`). The error says which part is wrong.
    pub fn new(url: &str, vkey: &str) -> Result<WitnessEndpoint, String> {
        let verifier = CosignatureVerifier::parse(vkey)
            .map_err(|e| format!("witness key {vkey:?} is not a cosigner verifier key: {e}"))?;
        let url: reqwest::Url = url.parse().map_err(|e| {
            format!(
                "witness URL {url:?} is not a URL ({e}); expected e.g. http://witness.example:7780"
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "witness URL scheme {:?} is not supported; expected http or https",
                url.scheme()
            ));
        }
        if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
            return Err(
                "a witness URL is its submission prefix: no query or fragment, `/add-checkpoint` is appended to its path"
                    .into(),
            );
        }
        Ok(WitnessEndpoint { url, verifier })
    }

    /// `<key name>+<hex key id>`, how stored cosignatures, logs and metrics name the witness.
    pub fn label(&self) -> String {
        self.verifier.key_label()
    }

    fn add_checkpoint_url(&self) -> reqwest::Url {
        let mut url = self.url.clone();
        let path = format!("{}/add-checkpoint", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url
    }
}

/// What this process knows a witness holds for one tenant's log.
#[derive(Debug, Clone)]
struct Cursor {
    /// The tree at the size the witness holds (its `size()`).
    frontier: Frontier,
    /// A cosignature by the witness at that size is stored.
    cosigned: bool,
}

#[derive(Debug, Default)]
struct Round {
    /// Per outcome: when it was last logged, and how many since were not.
    warned: HashMap<&'static str, (Instant, u64)>,
}

/// The witnesses of a [`Mesh`] and what is known about each between rounds.
pub(crate) struct Witnesses {
    endpoints: Vec<WitnessEndpoint>,
    client: reqwest::Client,
    /// (witness index, tenant) → cursor.
    cursors: std::sync::Mutex<HashMap<(usize, String), Cursor>>,
    /// One round at a time per witness (its task, shutdown's last round).
    rounds: Vec<tokio::sync::Mutex<Round>>,
}

impl Witnesses {
    pub(crate) fn new(endpoints: Vec<WitnessEndpoint>) -> Result<Witnesses, MeshError> {
        let client =
            http_client().map_err(|e| MeshError::Internal(format!("witness HTTP client: {e}")))?;
        Ok(Witnesses {
            rounds: endpoints.iter().map(|_| Default::default()).collect(),
            endpoints,
            client,
            cursors: Default::default(),
        })
    }
}

fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// Why one checkpoint was not cosigned by one witness.
#[derive(Debug, thiserror::Error)]
enum SubmitError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The witness holds a history this log contradicts: (`rollback`, `fork`, `proof` or
    /// `cut-back`, what happened).
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("refused with HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("answered without a valid cosignature by its key: {0}")]
    Invalid(String),
    #[error("{0}")]
    Local(String),
}

impl SubmitError {
    fn outcome(&self) -> &'static str {
        match self {
            SubmitError::Unreachable(_) => "unreachable",
            SubmitError::Conflict(..) => "conflict",
            SubmitError::Refused { .. } => "refused",
            SubmitError::Invalid(_) => "invalid",
            SubmitError::Local(_) => "error",
        }
    }

    /// What warnings are rate-limited by: the outcome, and for a conflict which one, so that a
    /// rollback reported a moment ago does not hide the rejected proof that follows it.
    fn kind(&self) -> &'static str {
        match self {
            SubmitError::Conflict(kind, _) => kind,
            other => other.outcome(),
        }
    }
}

impl From<StoreError> for SubmitError {
    fn from(e: StoreError) -> Self {
        SubmitError::Local(e.to_string())
    }
}

impl Round {
    fn warn(&mut self, witness: &str, tenant: &str, error: &SubmitError) {
        let now = Instant::now();
        if let Some((at, suppressed)) = self.warned.get_mut(error.kind())
            && now.duration_since(*at) < WARN_EVERY
        {
            *suppressed += 1;
            tracing::debug!(witness, tenant, %error, "checkpoint not cosigned");
            return;
        }
        let suppressed = self
            .warned
            .insert(error.kind(), (now, 0))
            .map_or(0, |(_, n)| n);
        if matches!(error, SubmitError::Conflict(..)) {
            tracing::error!(witness, tenant, %error, suppressed, "the witness refuses this log's history; run `meshos audit verify`");
        } else {
            tracing::warn!(witness, tenant, %error, suppressed, "checkpoint not cosigned; retrying every second");
        }
    }
}

impl Mesh {
    /// The witnesses checkpoints are submitted to.
    pub fn witness_endpoints(&self) -> &[WitnessEndpoint] {
        &self.witnesses.endpoints
    }

    /// Starts one task per witness that submits new checkpoints once a second, for as long as
    /// the process lives.
    pub fn spawn_witness_submissions(self: &Arc<Self>) {
        for i in 0..self.witnesses.endpoints.len() {
            let mesh = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    mesh.submit_to_witness(i).await;
                }
            });
        }
    }

    /// One round for every witness, one after another; the number of cosignatures stored.
    pub async fn submit_to_witnesses(&self) -> usize {
        let mut stored = 0;
        for i in 0..self.witnesses.endpoints.len() {
            stored += self.submit_to_witness(i).await;
        }
        stored
    }

    /// Shutdown's last round, bounded in time: the checkpoint signed on the way out gets its
    /// cosignatures if the witnesses answer promptly.
    pub(crate) async fn last_witness_round(&self) {
        if self.witnesses.endpoints.is_empty() {
            return;
        }
        if tokio::time::timeout(SHUTDOWN_ROUND, self.submit_to_witnesses())
            .await
            .is_err()
        {
            tracing::warn!(
                "witnesses did not cosign the last checkpoints within {SHUTDOWN_ROUND:?}"
            );
        }
    }

    /// One round for witness `i`: every tenant whose newest checkpoint it has not cosigned.
    /// Returns the number of cosignatures stored; failures are logged and counted, not
    /// returned (the next round retries). An unreachable witness ends the round.
    pub async fn submit_to_witness(&self, i: usize) -> usize {
        let Some(endpoint) = self.witnesses.endpoints.get(i) else {
            return 0;
        };
        let mut round = self.witnesses.rounds[i].lock().await;
        let label = endpoint.label();
        let tenants = match self.store.ledger_tenants().await {
            Ok(t) => t,
            Err(e) => {
                round.warn(&label, "*", &SubmitError::from(e));
                return 0;
            }
        };
        let mut stored = 0;
        for tenant in tenants {
            match self.submit_one(i, endpoint, &tenant).await {
                Ok(false) => {}
                Ok(true) => {
                    stored += 1;
                    self.metrics.record_witness(&label, "cosigned");
                }
                Err(e) => {
                    self.metrics.record_witness(&label, e.outcome());
                    round.warn(&label, &tenant, &e);
                    if matches!(e, SubmitError::Unreachable(_)) {
                        break;
                    }
                }
            }
        }
        stored
    }

    /// Submits the tenant's newest checkpoint to the witness unless it already cosigned it;
    /// `true` when a new cosignature was stored.
    async fn submit_one(
        &self,
        i: usize,
        endpoint: &WitnessEndpoint,
        tenant: &str,
    ) -> Result<bool, SubmitError> {
        let Some(latest) = self.store.latest_checkpoint(tenant).await? else {
            return Ok(false);
        };
        let mut cursor = self.witness_cursor(i, endpoint, tenant).await?;
        let exchanged = exchange(
            &self.witnesses.client,
            &self.store,
            endpoint,
            tenant,
            &latest,
            &mut cursor,
        )
        .await;
        self.set_cursor(i, tenant, cursor);
        let Some(cosignature) = exchanged? else {
            return Ok(false);
        };
        let saved = self
            .store
            .save_cosignature(&StoredCosignature {
                tenant: tenant.to_string(),
                size: latest.size,
                witness: endpoint.label(),
                signature: cosignature.line,
                created_at_ms: now_ms(),
            })
            .await;
        if let Err(e) = saved {
            // Read what is stored again next round rather than believe it cosigned.
            self.lock_cursors().remove(&(i, tenant.to_string()));
            return Err(e.into());
        }
        Ok(true)
    }

    /// What the witness holds for the tenant: remembered, or read back from the newest stored
    /// cosignature by it (the tree at that size rebuilt from the leaves).
    async fn witness_cursor(
        &self,
        i: usize,
        endpoint: &WitnessEndpoint,
        tenant: &str,
    ) -> Result<Cursor, SubmitError> {
        let key = (i, tenant.to_string());
        if let Some(c) = self.lock_cursors().get(&key) {
            return Ok(c.clone());
        }
        let held = self
            .store
            .latest_cosignature(tenant, &endpoint.label())
            .await?
            .map(|c| c.size);
        Ok(Cursor {
            frontier: frontier_at(&self.store, tenant, held.unwrap_or(0)).await?,
            cosigned: held.is_some(),
        })
    }

    fn lock_cursors(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, String), Cursor>> {
        self.witnesses
            .cursors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn set_cursor(&self, i: usize, tenant: &str, cursor: Cursor) {
        self.lock_cursors().insert((i, tenant.to_string()), cursor);
    }

    /// The cosignatures stored for a checkpoint that verify, over its note, with the key of a
    /// configured witness; what is served beside the checkpoint. Any other row is left out
    /// (and one that names a configured witness but does not verify is logged).
    pub(crate) async fn verified_cosignatures(
        &self,
        stored: &StoredCheckpoint,
    ) -> Result<Vec<String>, MeshError> {
        if self.witnesses.endpoints.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for row in self
            .store
            .cosignatures_at(&stored.tenant, stored.size)
            .await?
        {
            let Some(endpoint) = self
                .witnesses
                .endpoints
                .iter()
                .find(|w| w.label() == row.witness)
            else {
                continue;
            };
            match verify_answer(endpoint, stored, &format!("{}\n", row.signature)) {
                Ok(c) if c.line == row.signature => out.push(row.signature),
                Ok(_) => {
                    tracing::warn!(tenant = %stored.tenant, size = stored.size, witness = %row.witness, "a stored cosignature row holds more than its line; not served")
                }
                Err(e) => {
                    tracing::warn!(tenant = %stored.tenant, size = stored.size, witness = %row.witness, error = %e, "a stored cosignature does not verify; not served (run `meshos audit verify --witness-key`)")
                }
            }
        }
        Ok(out)
    }
}

/// One `add-checkpoint` exchange for the tenant's checkpoint `latest`, from what `cursor` says
/// the witness holds: the witness's verified cosignature, with `cursor` moved to `latest`; or
/// `None` when the witness already cosigned it, or answered 409 twice (the next round retries).
/// A 409 naming a size the log can prove from moves `cursor` there and tries once more; one
/// naming a larger tree (a rollback) or the same size (another root: a fork), and a 422, are
/// conflicts.
async fn exchange(
    client: &reqwest::Client,
    store: &Store,
    endpoint: &WitnessEndpoint,
    tenant: &str,
    latest: &StoredCheckpoint,
    cursor: &mut Cursor,
) -> Result<Option<Cosignature>, SubmitError> {
    for _ in 0..2 {
        let held = cursor.frontier.size();
        if cursor.cosigned && held == latest.size {
            return Ok(None);
        }
        if held > latest.size {
            return Err(rolled_back(tenant, held, latest.size));
        }
        let appended = store
            .ledger_leaf_hashes_between(tenant, held, latest.size)
            .await?;
        let proof = cursor
            .frontier
            .consistency_proof(&appended)
            .map_err(|e| SubmitError::Local(e.to_string()))?;
        let body = AddCheckpoint {
            old_size: held,
            proof,
            note: latest.note.clone(),
        }
        .body();
        let (status, answer) = post(client, endpoint, body).await?;
        match status {
            200 => {
                let cosignature = verify_answer(endpoint, latest, &answer)?;
                for leaf in appended {
                    cursor.frontier.push(leaf);
                }
                cursor.cosigned = true;
                return Ok(Some(cosignature));
            }
            409 => {
                let Some(size) = parse_size_body(&answer) else {
                    return Err(refused(status, &answer));
                };
                if size == held {
                    return Err(SubmitError::Conflict(
                        "fork",
                        format!(
                            "tenant {tenant}: the witness holds another root at size {size}: this log's history differs from what it cosigned (a fork)"
                        ),
                    ));
                }
                if size > latest.size {
                    return Err(rolled_back(tenant, size, latest.size));
                }
                // It knows the log at another size (a store restored from a backup, another
                // server on the store, an auditor asking from 0): prove from there.
                *cursor = Cursor {
                    frontier: frontier_at(store, tenant, size).await?,
                    cosigned: false,
                };
            }
            422 => {
                return Err(SubmitError::Conflict(
                    "proof",
                    format!(
                        "tenant {tenant}: the witness refuses the consistency proof from size {held} to {} (HTTP 422: {}): this log's history differs from what it cosigned (a rollback or a fork)",
                        latest.size,
                        answer.trim().chars().take(QUOTED_BYTES).collect::<String>()
                    ),
                ));
            }
            _ => return Err(refused(status, &answer)),
        }
    }
    Ok(None)
}

/// What an auditor learns from a witness about one tenant's log, without writing anything: the
/// tenant's newest stored checkpoint is submitted as the log would, from size 0, and the
/// witness's 409 says which size it holds; the log then proves consistency from there. `Ok`
/// (the witness's new cosignature) means the witness's view is a prefix of this store's log;
/// `Ok(None)` that the tenant has no checkpoint. A witness holding a larger tree (the store was
/// rolled back), another root at a size, or a history the stored leaves do not extend, and one
/// that cannot be asked, are errors saying so. Submitting moves the witness forward along this
/// store's own consistent history, as the log's next round would.
pub async fn ask_witness(
    store: &Store,
    endpoint: &WitnessEndpoint,
    tenant: &str,
) -> Result<Option<Cosignature>, String> {
    let Some(latest) = store
        .latest_checkpoint(tenant)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let client = http_client().map_err(|e| e.to_string())?;
    let mut cursor = Cursor {
        frontier: Frontier::new(),
        cosigned: false,
    };
    match exchange(&client, store, endpoint, tenant, &latest, &mut cursor).await {
        Ok(Some(cosignature)) => Ok(Some(cosignature)),
        Ok(None) => Err(format!(
            "tenant {tenant}: witness {} answered 409 twice; ask again",
            endpoint.label()
        )),
        Err(e) => Err(format!("witness {}: {e}", endpoint.label())),
    }
}

/// The tree of the tenant's first `size` leaves, as a frontier to prove consistency from.
async fn frontier_at(store: &Store, tenant: &str, size: u64) -> Result<Frontier, SubmitError> {
    let mut frontier = Frontier::new();
    for leaf in store.ledger_leaf_hashes(tenant, size).await? {
        frontier.push(leaf);
    }
    if frontier.size() != size {
        return Err(SubmitError::Conflict(
            "cut-back",
            format!(
                "tenant {tenant}: the witness holds size {size} but the ledger has {} leaves: the log was cut back",
                frontier.size()
            ),
        ));
    }
    Ok(frontier)
}

/// POSTs an add-checkpoint body; the status and the answer (at most 64 KiB of it).
async fn post(
    client: &reqwest::Client,
    endpoint: &WitnessEndpoint,
    body: String,
) -> Result<(u16, String), SubmitError> {
    let unreachable = |e: reqwest::Error| SubmitError::Unreachable(crate::webhook::error_chain(&e));
    let mut response = client
        .post(endpoint.add_checkpoint_url())
        .body(body)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    let mut answer = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(SubmitError::Invalid(format!(
                "HTTP {status} with an answer longer than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        answer.extend_from_slice(&chunk);
    }
    match String::from_utf8(answer) {
        Ok(text) => Ok((status, text)),
        Err(e) if status == 200 => Err(SubmitError::Invalid(format!(
            "the answer is not UTF-8 ({e})"
        ))),
        Err(e) => Ok((status, String::from_utf8_lossy(e.as_bytes()).into_owned())),
    }
}

/// The witness's cosignature among the lines it answered, verified over the checkpoint's note.
fn verify_answer(
    endpoint: &WitnessEndpoint,
    checkpoint: &StoredCheckpoint,
    answer: &str,
) -> Result<Cosignature, SubmitError> {
    add_signatures(&checkpoint.note, answer)
        .and_then(|cosigned| endpoint.verifier.verify(&cosigned))
        .map_err(|e| SubmitError::Invalid(e.to_string()))
}

fn refused(status: u16, answer: &str) -> SubmitError {
    let mut body: String = answer.trim().chars().take(QUOTED_BYTES).collect();
    if body.is_empty() {
        body = "(no body)".into();
    }
    SubmitError::Refused { status, body }
}

fn rolled_back(tenant: &str, held: u64, newest: u64) -> SubmitError {
    SubmitError::Conflict(
        "rollback",
        format!(
            "tenant {tenant}: the witness has cosigned size {held} but this log's newest checkpoint has size {newest}: the log was rolled back"
        ),
    )
}

#[cfg(test)]
#[path = "witnesses_tests.rs"]
mod tests;
