//! Bearer tokens: generated once, shown once, stored only as a SHA-256 digest.

use base64::Engine;
use meshos_store::{Store, StoreError};
use meshos_types::{Principal, Role, new_id, now_ms, validate_id};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const TOKEN_PREFIX: &str = "msh_";

/// Hex SHA-256 of a token: what the store keeps and looks up.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a token for a principal and returns the secret (the only time it exists in clear).
pub async fn create_token(
    store: &Store,
    tenant: &str,
    role: Role,
    agent_id: Option<&str>,
) -> Result<String, TokenError> {
    validate_id("tenant", tenant).map_err(|e| TokenError::Invalid(e.to_string()))?;
    match (role, agent_id) {
        (Role::Agent, None) => {
            return Err(TokenError::Invalid(
                "--agent is required for role agent: an agent token acts for one agent id".into(),
            ));
        }
        (Role::Agent, Some(a)) => {
            validate_id("agent", a).map_err(|e| TokenError::Invalid(e.to_string()))?
        }
        (_, Some(_)) => {
            return Err(TokenError::Invalid(format!(
                "--agent applies only to role agent, not {role}"
            )));
        }
        (_, None) => {}
    }
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    store
        .insert_token(
            &new_id("tok"),
            &token_digest(&token),
            tenant,
            role,
            agent_id,
            now_ms(),
        )
        .await?;
    Ok(token)
}

/// The principal for a presented token, if it is valid.
pub async fn authenticate(store: &Store, token: &str) -> Result<Option<Principal>, StoreError> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    store.principal_by_secret_hash(&token_digest(token)).await
}

/// Remembers recently verified tokens for a short time, so HTTP requests do not each need a
/// database round trip and a database outage surfaces as tool errors on established clients
/// rather than as authentication failures.
///
/// Bounds: an entry is served for at most `ttl` after the lookup that found it, so a token
/// deleted from the store (there is no revocation command yet; when it arrives, this is its
/// latency) stops working within `ttl`. Only tokens the store knows are kept, so inventing
/// tokens cannot grow the cache, and at `CACHE_CAPACITY` entries it starts over. Keys are the
/// raw SHA-256 of the token, never the token itself.
pub struct PrincipalCache {
    ttl: std::time::Duration,
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], (Principal, std::time::Instant)>>,
}

/// Upper bound on cached tokens; the cache is cleared when it is reached.
const CACHE_CAPACITY: usize = 10_000;

impl PrincipalCache {
    pub fn new(ttl: std::time::Duration) -> PrincipalCache {
        PrincipalCache {
            ttl,
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    pub async fn authenticate(
        &self,
        store: &Store,
        token: &str,
    ) -> Result<Option<Principal>, StoreError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        // The digest as bytes: a hit costs one hash and no allocation but the principal's.
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Ok(entries) = self.entries.lock()
            && let Some((principal, at)) = entries.get(&digest)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(principal.clone()));
        }
        let found = store.principal_by_secret_hash(&hex::encode(digest)).await?;
        if let (Some(p), Ok(mut entries)) = (&found, self.entries.lock()) {
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(digest, (p.clone(), std::time::Instant::now()));
        }
        Ok(found)
    }
}
