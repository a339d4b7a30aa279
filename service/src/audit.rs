//! `meshos audit verify`: re-derives every ledger leaf from the stored records, rebuilds each
//! tenant's Merkle tree and checks every signed checkpoint and every signed tenant log list
//! against it.
//!
//! What passes is a store whose every leaf is either covered by a signature or part of a short
//! unsigned tail (see [`TailPolicy`]), where:
//! - every checkpoint verifies with the deployment's key, names its tenant's origin, agrees
//!   with the columns stored beside it, hashes to the root of the re-derived leaves at its
//!   size and is RFC 6962-consistent with the checkpoint before it;
//! - every tenant log list verifies, the lists run 0, 1, 2, … without a gap, no list drops or
//!   shrinks a log an earlier one named, and every (tenant, size, root) a list names is still
//!   the root of that tenant's first `size` leaves. So a tenant log that was deleted, or cut
//!   back together with its checkpoints, fails, as does a record forged where a signature or
//!   a list still covers it.
//!
//! With witness keys ([`WitnessPolicy`], `--witness-key`), every stored cosignature by one of
//! them must verify over its checkpoint's note, and each tenant's log must be covered by a
//! checkpoint cosigned by enough of them, but for a short uncosigned tail. A witness only
//! cosigns a checkpoint consistent with the last one it cosigned, and it keeps that state
//! outside the store, so a store rolled back consistently (newest lists, checkpoints and leaves
//! all removed together), which no local check can tell from an earlier honest store, gets no
//! cosignature for what it signs after the rollback: its uncosigned tail grows until the audit
//! fails. A store rolled back and then left alone has no such tail; [`ask_witnesses`] sees it
//! by asking each witness what it holds. Without witnesses that rollback is not seen.

use std::collections::{BTreeMap, BTreeSet};

use meshos_evidence::{
    CosignatureVerifier, Hash, LogList, MerkleTree, NoteVerifier, add_signatures, hash_to_hex,
    verify_consistency,
};
use meshos_store::{LedgerEntry, Store, StoreError};

use crate::checkpoints::log_list_origin;

/// How many leaves after the newest signed tenant log list the audit accepts, and over how
/// long they were appended. The server signs a checkpoint and a list every second, so a log it
/// was writing when it was killed ends in up to about a second of unsigned leaves; a longer
/// unsigned tail means the signatures after it were deleted (or the server could not sign).
/// Unsigned leaves are re-derived like the others but are not evidence yet: the report names
/// them as a warning either way. The timestamps are the ledger's own (unsigned) ones, so this
/// bounds what a crash leaves, not what an attacker who also rewrites times can hide: with
/// `max_leaves: Some(0)` nothing unsigned passes (right for a server that stopped cleanly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailPolicy {
    /// At most this many unsigned leaves per tenant (`None`: no count limit).
    pub max_leaves: Option<u64>,
    /// The unsigned leaves of a tenant were all appended within this many seconds of each
    /// other (by the ledger's timestamps).
    pub max_seconds: u64,
}

impl Default for TailPolicy {
    fn default() -> Self {
        TailPolicy {
            max_leaves: None,
            max_seconds: 10,
        }
    }
}

/// Which witnesses must have cosigned each tenant's log, and how much of it may be
/// uncosigned. The default (no witness keys) requires nothing.
///
/// A checkpoint counts as cosigned when `required` of the `witnesses` cosigned it (distinct
/// keys, each cosignature verified over the checkpoint's note). The leaves after the newest
/// cosigned checkpoint of a tenant are its uncosigned tail: a witness cosigns within about a
/// second of a checkpoint's signing when it is reachable, so a running or killed server leaves
/// a short tail; a longer one means the witnesses were unreachable, refused the log's history
/// (a rollback or a fork), or their cosignatures were deleted. As for [`TailPolicy`], the
/// tail's span is measured with the ledger's own timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessPolicy {
    pub witnesses: Vec<CosignatureVerifier>,
    /// How many of `witnesses` must cosign a checkpoint (at least 1, at most their number).
    pub required: usize,
    /// At most this many uncosigned leaves per tenant (`None`: no count limit).
    pub max_leaves: Option<u64>,
    /// The uncosigned leaves of a tenant were all appended within this many seconds.
    pub max_seconds: u64,
}

impl Default for WitnessPolicy {
    fn default() -> Self {
        WitnessPolicy {
            witnesses: Vec::new(),
            required: 0,
            max_leaves: None,
            max_seconds: 30,
        }
    }
}

impl WitnessPolicy {
    /// `required` of `witnesses` (all of them when `None`), with the default tail limits.
    pub fn new(
        witnesses: Vec<CosignatureVerifier>,
        required: Option<usize>,
    ) -> Result<WitnessPolicy, String> {
        let required = required.unwrap_or(witnesses.len());
        if witnesses.is_empty() {
            return Err("no witness key given".into());
        }
        if required == 0 || required > witnesses.len() {
            return Err(format!(
                "{required} cosignatures required but {} witness key(s) given; expected 1 to {}",
                witnesses.len(),
                witnesses.len()
            ));
        }
        for (i, w) in witnesses.iter().enumerate() {
            if witnesses[..i]
                .iter()
                .any(|v| v.key_label() == w.key_label())
            {
                return Err(format!("witness key {} is given twice", w.verifier_key()));
            }
        }
        Ok(WitnessPolicy {
            witnesses,
            required,
            ..WitnessPolicy::default()
        })
    }
}

#[derive(Debug, Default)]
pub struct AuditReport {
    pub tenants: usize,
    pub leaves: u64,
    pub checkpoints: usize,
    /// Signed tenant log lists verified.
    pub log_lists: usize,
    /// Witness cosignatures verified (by the keys of the [`WitnessPolicy`]).
    pub cosignatures: usize,
    /// What passed but is worth knowing (unsigned tails).
    pub warnings: Vec<String>,
    /// The first problem found, naming the record or checkpoint.
    pub failure: Option<String>,
}

/// Verifies the ledgers of `tenants` (every tenant when empty) with the default tail policy.
pub async fn verify(
    store: &Store,
    verifier: &NoteVerifier,
    origin_prefix: &str,
    tenants: &[String],
) -> Result<AuditReport, StoreError> {
    verify_with(
        store,
        verifier,
        origin_prefix,
        tenants,
        TailPolicy::default(),
    )
    .await
}

/// Verifies the ledgers of `tenants` (every tenant when empty); stops at the first mismatch.
pub async fn verify_with(
    store: &Store,
    verifier: &NoteVerifier,
    origin_prefix: &str,
    tenants: &[String],
    tail: TailPolicy,
) -> Result<AuditReport, StoreError> {
    verify_with_witnesses(
        store,
        verifier,
        origin_prefix,
        tenants,
        tail,
        &WitnessPolicy::default(),
    )
    .await
}

/// [`verify_with`], also requiring the witness cosignatures of `witnesses`.
pub async fn verify_with_witnesses(
    store: &Store,
    verifier: &NoteVerifier,
    origin_prefix: &str,
    tenants: &[String],
    tail: TailPolicy,
    witnesses: &WitnessPolicy,
) -> Result<AuditReport, StoreError> {
    let mut report = AuditReport::default();
    let lists = match verify_log_lists(store, verifier, origin_prefix, &mut report).await? {
        Ok(lists) => lists,
        Err(failure) => {
            report.failure = Some(failure);
            return Ok(report);
        }
    };
    let with_ledger: BTreeSet<String> = store.ledger_tenants().await?.into_iter().collect();
    if lists.count == 0 {
        for tenant in &with_ledger {
            if store.latest_checkpoint(tenant).await?.is_some() {
                report.failure = Some(
                    "no signed tenant log list is stored although checkpoints are: the lists were \
                     deleted, or no `meshos serve` that writes them has run on this store yet \
                     (start it once)"
                        .into(),
                );
                return Ok(report);
            }
        }
    }
    let tenants: Vec<String> = if tenants.is_empty() {
        // A tenant only a list still names is audited too: that is how a deleted log shows.
        with_ledger
            .iter()
            .chain(lists.signed.keys())
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    } else {
        tenants.to_vec()
    };
    for tenant in &tenants {
        report.tenants += 1;
        let signed = lists.signed.get(tenant).map(Vec::as_slice).unwrap_or(&[]);
        if !with_ledger.contains(tenant)
            && let Some(last) = signed.last()
        {
            report.failure = Some(format!(
                "tenant {tenant}: signed tenant log list #{} names its log with {} leaves, but the log is gone (deleted)",
                last.seq, last.size
            ));
            return Ok(report);
        }
        if let Some(failure) = verify_tenant(
            store,
            verifier,
            origin_prefix,
            tenant,
            signed,
            (tail, witnesses),
            &mut report,
        )
        .await?
        {
            report.failure = Some(failure);
            return Ok(report);
        }
    }
    Ok(report)
}

/// One (size, root) a tenant log list signed for a tenant.
#[derive(Debug, Clone)]
struct Listed {
    seq: u64,
    size: u64,
    root: Hash,
}

struct Lists {
    count: usize,
    /// Per tenant, each distinct size any list named, ascending.
    signed: BTreeMap<String, Vec<Listed>>,
}

/// Every stored list: signature, origin, sequence without gaps, no log dropped or shrunk.
async fn verify_log_lists(
    store: &Store,
    verifier: &NoteVerifier,
    origin_prefix: &str,
    report: &mut AuditReport,
) -> Result<Result<Lists, String>, StoreError> {
    let origin = log_list_origin(origin_prefix);
    let mut signed: BTreeMap<String, Vec<Listed>> = BTreeMap::new();
    let mut previous: Option<LogList> = None;
    let stored = store.log_lists().await?;
    let count = stored.len();
    for row in stored {
        let label = format!("tenant log list #{}", row.seq);
        let list = match verifier.verify_note(&row.note).and_then(LogList::parse) {
            Ok(l) => l,
            Err(e) => return Ok(Err(format!("{label} has no valid signature: {e}"))),
        };
        if list.origin != origin || list.seq != row.seq {
            return Ok(Err(format!(
                "{label} signs {:?} #{}, expected {origin:?} #{}",
                list.origin, list.seq, row.seq
            )));
        }
        let expected = previous.as_ref().map_or(0, |p| p.seq + 1);
        if list.seq != expected {
            return Ok(Err(format!(
                "tenant log list #{expected} is missing (the next stored one is #{}): lists were deleted",
                list.seq
            )));
        }
        if let Some(prev) = &previous {
            for old in &prev.logs {
                match list.get(&old.name) {
                    None => {
                        return Ok(Err(format!(
                            "{label} drops tenant {} that list #{} named with {} leaves",
                            old.name, prev.seq, old.size
                        )));
                    }
                    Some(now) if now.size < old.size => {
                        return Ok(Err(format!(
                            "{label} names tenant {} with {} leaves, but list #{} named {}: the log shrank",
                            old.name, now.size, prev.seq, old.size
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        for l in &list.logs {
            let seen = signed.entry(l.name.clone()).or_default();
            match seen.last() {
                Some(last) if last.size == l.size && last.root != l.root => {
                    return Ok(Err(format!(
                        "{label} names tenant {} at size {} with another root than list #{}",
                        l.name, l.size, last.seq
                    )));
                }
                Some(last) if last.size == l.size => {}
                _ => seen.push(Listed {
                    seq: list.seq,
                    size: l.size,
                    root: l.root,
                }),
            }
        }
        report.log_lists += 1;
        previous = Some(list);
    }
    Ok(Ok(Lists { count, signed }))
}

async fn verify_tenant(
    store: &Store,
    verifier: &NoteVerifier,
    origin_prefix: &str,
    tenant: &str,
    listed: &[Listed],
    (tail, witnesses): (TailPolicy, &WitnessPolicy),
    report: &mut AuditReport,
) -> Result<Option<String>, StoreError> {
    let size = store.ledger_size(tenant).await?;
    let entries = store.ledger_entries(tenant, 0, size).await?;
    if entries.len() as u64 != size {
        return Ok(Some(format!(
            "tenant {tenant}: ledger head says {size} leaves but {} are stored",
            entries.len()
        )));
    }
    let mut tree = MerkleTree::new();
    for (expected, entry) in entries.iter().enumerate() {
        if entry.index != expected as u64 {
            return Ok(Some(format!(
                "tenant {tenant}: ledger index {expected} is missing"
            )));
        }
        let what = format!(
            "tenant {tenant}, ledger index {}: {} {}",
            entry.index, entry.record_type, entry.record_id
        );
        let record = match store.ledger_record(tenant, entry).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Some(format!("{what} is missing from the store"))),
            Err(StoreError::Corrupt { what: col, detail }) => {
                return Ok(Some(format!(
                    "{what} cannot be read back ({col}: {detail})"
                )));
            }
            Err(e) => return Err(e),
        };
        let derived = meshos_evidence::leaf_hash(&record.canonical_bytes());
        if derived != entry.leaf_hash {
            return Ok(Some(format!(
                "{what} does not match its ledger leaf: the record was changed after it was logged"
            )));
        }
        tree.push(entry.leaf_hash);
        report.leaves += 1;
    }

    let origin = format!("{origin_prefix}/{tenant}");
    let mut previous: Option<(u64, Hash)> = None;
    // (size, note) of every checkpoint verified, for the cosignatures.
    let mut notes: BTreeMap<u64, String> = BTreeMap::new();
    for stored in store.checkpoints(tenant).await? {
        let label = format!("tenant {tenant}: checkpoint of size {}", stored.size);
        let cp = match verifier.verify_checkpoint(&stored.note) {
            Ok(cp) => cp,
            Err(e) => return Ok(Some(format!("{label} has no valid signature: {e}"))),
        };
        if cp.origin != origin {
            return Ok(Some(format!(
                "{label} names origin {:?}, expected {origin:?}",
                cp.origin
            )));
        }
        if cp.size != stored.size || cp.root != stored.root {
            return Ok(Some(format!(
                "{label}: the stored size/root_hash columns ({}, {}) differ from what its note signs ({}, {})",
                stored.size,
                hash_to_hex(&stored.root),
                cp.size,
                hash_to_hex(&cp.root)
            )));
        }
        if cp.size > size {
            return Ok(Some(format!(
                "{label} commits to {} leaves but the ledger has {size}: the log was cut back",
                cp.size
            )));
        }
        if tree.root(cp.size).ok() != Some(cp.root) {
            return Ok(Some(format!(
                "{label}: the ledger's leaves no longer hash to the signed root (a leaf hash was altered or reordered)"
            )));
        }
        // What an auditor holding only the notes checks: the log between two signatures only
        // grew. Implied by the two roots above, checked the standard way all the same.
        if let Some((old_size, old_root)) = previous {
            let consistent = tree.consistency_proof(old_size, cp.size).and_then(|proof| {
                verify_consistency(old_size, cp.size, &old_root, &cp.root, &proof)
            });
            if let Err(e) = consistent {
                return Ok(Some(format!(
                    "{label} is not consistent with the checkpoint of size {old_size} before it: {e}"
                )));
            }
        }
        previous = Some((cp.size, cp.root));
        report.checkpoints += 1;
        notes.insert(cp.size, stored.note);
    }

    let label = |l: &Listed| {
        format!(
            "tenant {tenant}: signed tenant log list #{} names its log with {} leaves",
            l.seq, l.size
        )
    };
    // The newest (longest) first: it says how much was cut.
    if let Some(l) = listed.last()
        && l.size > size
    {
        return Ok(Some(format!(
            "{} but the ledger has {size}: the log was cut back",
            label(l)
        )));
    }
    for l in listed {
        let label = label(l);
        if tree.root(l.size).ok() != Some(l.root) {
            return Ok(Some(format!(
                "{label}, and the ledger's first {} leaves no longer hash to the root it signs (a leaf was forged or altered)",
                l.size
            )));
        }
    }

    if !witnesses.witnesses.is_empty()
        && let Some(failure) =
            verify_cosignatures(store, tenant, &notes, &entries, witnesses, report).await?
    {
        return Ok(Some(failure));
    }

    // Covered means named by a list: a checkpoint only counts once a list names it, because
    // deleting the newest lists (to hide a deleted tenant) must turn what the other tenants
    // appended since into an unsigned tail, not leave it covered by their own checkpoints.
    let covered = listed.last().map_or(0, |l| l.size);
    if covered < size {
        let unsigned = &entries[covered as usize..];
        let count = unsigned.len() as u64;
        let span_ms = match (unsigned.first(), unsigned.last()) {
            (Some(a), Some(b)) => b.created_at_ms.saturating_sub(a.created_at_ms).max(0),
            _ => 0,
        };
        let what = format!(
            "tenant {tenant}: {count} leaves (indexes {covered}..{size}) appended over {:.1} s are not covered by a signed tenant log list",
            span_ms as f64 / 1000.0
        );
        if let Some(max) = tail.max_leaves
            && count > max
        {
            return Ok(Some(format!(
                "{what}, more than the {max} allowed (--max-unsigned-leaves)"
            )));
        }
        if span_ms > (tail.max_seconds as i64).saturating_mul(1000) {
            return Ok(Some(format!(
                "{what}: more than the {} s a killed signer leaves (--max-unsigned-seconds), so later checkpoints or lists were deleted or never signed",
                tail.max_seconds
            )));
        }
        report
            .warnings
            .push(format!("{what}; they are not evidence yet"));
    }
    Ok(None)
}

/// Asks every witness, for every tenant (or those given), whether the tenant's newest stored
/// checkpoint extends what it cosigned, by submitting it as the log would
/// ([`crate::witnesses::ask_witness`]). Nothing is written to the store. The number of
/// (tenant, witness) pairs found consistent, or the first that is not (a witness holding a
/// larger tree or another history than the store: a rollback or a fork; or one that cannot be
/// asked).
pub async fn ask_witnesses(
    store: &Store,
    witnesses: &[crate::WitnessEndpoint],
    tenants: &[String],
) -> Result<Result<usize, String>, StoreError> {
    let tenants = if tenants.is_empty() {
        store.ledger_tenants().await?
    } else {
        tenants.to_vec()
    };
    let mut consistent = 0;
    for tenant in &tenants {
        for witness in witnesses {
            match crate::witnesses::ask_witness(store, witness, tenant).await {
                Ok(Some(_)) => consistent += 1,
                Ok(None) => {}
                Err(why) => return Ok(Err(why)),
            }
        }
    }
    Ok(Ok(consistent))
}

/// Every stored cosignature by a witness of the policy verifies over its checkpoint's note, and
/// the leaves after the newest checkpoint cosigned by `required` of them form a short tail.
async fn verify_cosignatures(
    store: &Store,
    tenant: &str,
    notes: &BTreeMap<u64, String>,
    entries: &[LedgerEntry],
    policy: &WitnessPolicy,
    report: &mut AuditReport,
) -> Result<Option<String>, StoreError> {
    // Per checkpoint size, which of the policy's witnesses cosigned it.
    let mut cosigned_by: BTreeMap<u64, BTreeSet<usize>> = BTreeMap::new();
    for row in store.cosignatures(tenant).await? {
        let Some(w) = policy
            .witnesses
            .iter()
            .position(|w| w.key_label() == row.witness)
        else {
            continue;
        };
        let witness = &policy.witnesses[w];
        let label = format!(
            "tenant {tenant}: the cosignature of the checkpoint of size {} by witness {}",
            row.size, row.witness
        );
        let Some(note) = notes.get(&row.size) else {
            return Ok(Some(format!(
                "{label} is for a checkpoint that is not stored"
            )));
        };
        let verified = add_signatures(note, &format!("{}\n", row.signature))
            .and_then(|cosigned| witness.verify(&cosigned));
        match verified {
            Ok(c) if c.line == row.signature => {}
            Ok(_) => {
                return Ok(Some(format!("{label} holds more than one signature line")));
            }
            Err(e) => {
                return Ok(Some(format!(
                    "{label} does not verify ({e}): it was forged or altered"
                )));
            }
        }
        cosigned_by.entry(row.size).or_default().insert(w);
        report.cosignatures += 1;
    }

    let size = entries.len() as u64;
    let covered = cosigned_by
        .iter()
        .rev()
        .find(|(_, by)| by.len() >= policy.required)
        .map_or(0, |(size, _)| *size);
    if covered >= size {
        return Ok(None);
    }
    let unsigned = &entries[covered as usize..];
    let count = unsigned.len() as u64;
    let span_ms = match (unsigned.first(), unsigned.last()) {
        (Some(a), Some(b)) => b.created_at_ms.saturating_sub(a.created_at_ms).max(0),
        _ => 0,
    };
    let since = if covered == 0 {
        "no checkpoint is cosigned".to_string()
    } else {
        format!("the newest cosigned checkpoint has size {covered}")
    };
    let newest = match notes.last_key_value() {
        Some((&newest, _)) if newest > covered => {
            let missing: Vec<String> = policy
                .witnesses
                .iter()
                .enumerate()
                .filter(|(i, _)| !cosigned_by.get(&newest).is_some_and(|by| by.contains(i)))
                .map(|(_, w)| w.key_label())
                .collect();
            format!(
                "; the newest checkpoint, of size {newest}, lacks the cosignature of {}",
                missing.join(", ")
            )
        }
        _ => String::new(),
    };
    let what = format!(
        "tenant {tenant}: {count} leaves (indexes {covered}..{size}) appended over {:.1} s are not covered by a checkpoint cosigned by {} of the {} witness key(s) ({since}{newest})",
        span_ms as f64 / 1000.0,
        policy.required,
        policy.witnesses.len(),
    );
    if let Some(max) = policy.max_leaves
        && count > max
    {
        return Ok(Some(format!(
            "{what}, more than the {max} allowed (--max-uncosigned-leaves)"
        )));
    }
    if span_ms > (policy.max_seconds as i64).saturating_mul(1000) {
        return Ok(Some(format!(
            "{what}: more than the {} s allowed (--max-uncosigned-seconds), so the witnesses were unreachable, refused this log's history (a rollback or a fork), or their cosignatures were deleted",
            policy.max_seconds
        )));
    }
    report
        .warnings
        .push(format!("{what}; they are not witnessed yet"));
    Ok(None)
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
