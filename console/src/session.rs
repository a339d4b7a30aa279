//! Console sessions: a token is exchanged once for a random session id, carried only in an
//! HttpOnly, SameSite=Strict cookie; every write also carries the session's CSRF token.
//!
//! Sessions live in this process's memory (a replica behind a load balancer needs sticky
//! sessions, or the operator signs in again). They end after 30 idle minutes, 12 hours in all,
//! or on sign-out; at most `MAX_SESSIONS` are held, the least recently used going first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use meshos_types::{Principal, Role};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const COOKIE_NAME: &str = "meshos_session";
const IDLE: Duration = Duration::from_secs(30 * 60);
const ABSOLUTE: Duration = Duration::from_secs(12 * 3600);
/// Sessions held at once; each is a few hundred bytes.
pub const MAX_SESSIONS: usize = 10_000;
/// Sessions one token may hold: signing in again and again with one token replaces its own
/// oldest session instead of pushing other users' sessions out.
pub const MAX_SESSIONS_PER_TOKEN: usize = 16;

/// A signed-in operator, admin or auditor.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// Sent back in every form and checked on every write.
    pub csrf: String,
}

impl Session {
    /// Whether this session may change anything (approve, deny, sign policy decisions).
    pub fn may_act(&self) -> bool {
        matches!(self.principal.role, Role::Operator | Role::Admin)
    }

    /// Whether a presented CSRF token is this session's (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

struct Entry {
    session: Session,
    created: Instant,
    last_used: Instant,
}

/// Keyed by the SHA-256 of the session id, so the ids themselves are nowhere in memory.
pub struct Sessions {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    capacity: usize,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions::with_capacity(MAX_SESSIONS)
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Holds at most `capacity` sessions (at least 1).
    pub fn with_capacity(capacity: usize) -> Sessions {
        Sessions {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Starts a session for `principal`; returns its id (the cookie's value).
    pub fn start(&self, principal: Principal) -> String {
        let id = random_hex();
        let now = Instant::now();
        let mut entries = self.lock();
        entries.retain(|_, e| fresh(e, now));
        let own: Vec<([u8; 32], Instant)> = entries
            .iter()
            .filter(|(_, e)| e.session.principal.token_id == principal.token_id)
            .map(|(k, e)| (*k, e.last_used))
            .collect();
        if own.len() >= MAX_SESSIONS_PER_TOKEN
            && let Some((oldest, _)) = own.iter().min_by_key(|(_, used)| *used)
        {
            entries.remove(oldest);
        }
        if entries.len() >= self.capacity
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
        {
            entries.remove(&oldest);
        }
        entries.insert(
            key(&id),
            Entry {
                session: Session {
                    principal,
                    csrf: random_hex(),
                },
                created: now,
                last_used: now,
            },
        );
        id
    }

    /// The live session with this id, its idle clock restarted.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut entries = self.lock();
        let k = key(id);
        match entries.get_mut(&k) {
            Some(e) if fresh(e, now) => {
                e.last_used = now;
                Some(e.session.clone())
            }
            Some(_) => {
                entries.remove(&k);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, id: &str) {
        self.lock().remove(&key(id));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn fresh(e: &Entry, now: Instant) -> bool {
    now.duration_since(e.last_used) < IDLE && now.duration_since(e.created) < ABSOLUTE
}

/// The session id in a `Cookie` header, if any.
pub fn session_id_from_cookies(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE_NAME && !value.is_empty()).then_some(value)
    })
}

/// The `Set-Cookie` value that carries a new session.
pub fn session_cookie(id: &str) -> String {
    format!(
        "{COOKIE_NAME}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}",
        ABSOLUTE.as_secs()
    )
}

/// The `Set-Cookie` value that removes it.
pub fn cleared_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator() -> Principal {
        Principal {
            token_id: "tok_1".into(),
            tenant: "acme".into(),
            role: Role::Operator,
            agent_id: None,
        }
    }

    #[test]
    fn a_session_is_found_by_its_id_only_and_ends_on_sign_out() {
        let sessions = Sessions::default();
        let id = sessions.start(operator());
        let s = sessions.get(&id).expect("session");
        assert_eq!(s.principal.tenant, "acme");
        assert!(sessions.get(&format!("{id}0")).is_none());
        assert!(s.csrf_matches(&s.csrf.clone()));
        assert!(!s.csrf_matches(""));
        assert!(!s.csrf_matches(&"0".repeat(64)));
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn sessions_are_bounded() {
        let sessions = Sessions::with_capacity(3);
        let first = sessions.start(operator());
        for _ in 0..3 {
            sessions.start(operator());
        }
        assert_eq!(sessions.len(), 3);
        assert!(
            sessions.get(&first).is_none(),
            "the least recently used went first"
        );
    }

    #[test]
    fn one_token_signing_in_again_and_again_replaces_only_its_own_sessions() {
        let sessions = Sessions::with_capacity(MAX_SESSIONS_PER_TOKEN + 1);
        let bystander = sessions.start(Principal {
            token_id: "tok_other".into(),
            ..operator()
        });
        let first = sessions.start(operator());
        for _ in 0..3 * MAX_SESSIONS_PER_TOKEN {
            sessions.start(operator());
        }
        assert!(
            sessions.get(&bystander).is_some(),
            "another user's session was pushed out"
        );
        assert!(sessions.get(&first).is_none());
        assert_eq!(sessions.len(), MAX_SESSIONS_PER_TOKEN + 1);
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let c = session_cookie("abc");
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/ui"));
        assert_eq!(
            session_id_from_cookies("a=b; meshos_session=abc; c=d"),
            Some("abc")
        );
        assert_eq!(session_id_from_cookies("meshos_session="), None);
    }
}
