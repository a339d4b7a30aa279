//! Per-tenant secrets for redaction and the sealing of pseudonymised values.
//!
//! One root secret (derived from the ledger signing key, so a deployment has one secret to
//! protect) yields independent keys per tenant and purpose: the keyed-hash redaction key, the
//! pseudonym id key and the sealing key. Tenants therefore never share tokens, and a leaked
//! hash key does not open the vault. Sealing is ChaCha20-Poly1305 with a random
//! 96-bit nonce, bound to the tenant and pseudonym as associated data so a sealed value cannot
//! be replayed under another row.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use meshos_policy::RedactionKeys;
use rand::RngCore;
use sha2::Sha256;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("sealed value is not valid base64: {0}")]
    Encoding(String),
    #[error("sealed value is too short to hold a nonce and tag")]
    Truncated,
    #[error(
        "sealed value does not open with this deployment's key (wrong ledger key, another tenant's row, or tampering)"
    )]
    Open,
    #[error("sealing failed")]
    Seal,
}

/// Derives per-tenant keys from one root secret.
#[derive(Clone)]
pub struct TenantKeys {
    root: [u8; 32],
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantKeys(..)")
    }
}

impl TenantKeys {
    /// From the root secret [`crate::keys::Keys`] derives for tenant keys.
    pub(crate) fn from_root(root: [u8; 32]) -> TenantKeys {
        TenantKeys { root }
    }

    fn derive(&self, purpose: &str, tenant: &str) -> [u8; 32] {
        // HMAC accepts any key length; a 32-byte key cannot be rejected.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.root) else {
            return [0; 32];
        };
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(tenant.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The tenant's keys for hash and pseudonym redaction.
    pub fn redaction(&self, tenant: &str) -> RedactionKeys {
        RedactionKeys {
            hash: self.derive("redact-hash", tenant),
            pseudonym: self.derive("pseudonym-id", tenant),
        }
    }

    fn cipher(&self, tenant: &str) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&self.derive("pseudonym-seal", tenant).into())
    }

    /// Seals a pseudonymised value for storage: base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, tenant: &str, pseudonym: &str, value: &str) -> Result<String, VaultError> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = associated_data(tenant, pseudonym);
        let sealed = self
            .cipher(tenant)
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// Opens a sealed value; fails if it was sealed for another tenant or pseudonym.
    pub fn open(&self, tenant: &str, pseudonym: &str, sealed: &str) -> Result<String, VaultError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|e| VaultError::Encoding(e.to_string()))?;
        if bytes.len() < 12 + 16 {
            return Err(VaultError::Truncated);
        }
        let (nonce, body) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| VaultError::Truncated)?;
        let aad = associated_data(tenant, pseudonym);
        let plain = self
            .cipher(tenant)
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Open)?;
        String::from_utf8(plain).map_err(|_| VaultError::Open)
    }
}

fn associated_data(tenant: &str, pseudonym: &str) -> Vec<u8> {
    let mut aad = b"meshos/pseudonym/v1\0".to_vec();
    aad.extend_from_slice(tenant.as_bytes());
    aad.push(0);
    aad.extend_from_slice(pseudonym.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_tenant_and_pseudonym() {
        let keys = crate::keys::Keys::from_seed(&[5; 32]).tenants().clone();
        let sealed = keys
            .seal("acme", "psn_1", "jane@example.com")
            .expect("seal");
        assert!(!sealed.contains("jane"));
        assert_eq!(
            keys.open("acme", "psn_1", &sealed).expect("open"),
            "jane@example.com"
        );
        assert!(matches!(
            keys.open("globex", "psn_1", &sealed),
            Err(VaultError::Open)
        ));
        assert!(matches!(
            keys.open("acme", "psn_2", &sealed),
            Err(VaultError::Open)
        ));
        let other = crate::keys::Keys::from_seed(&[6; 32]).tenants().clone();
        assert!(matches!(
            other.open("acme", "psn_1", &sealed),
            Err(VaultError::Open)
        ));
        assert!(matches!(
            keys.open("acme", "psn_1", "AAAA"),
            Err(VaultError::Truncated)
        ));
    }

    #[test]
    fn tenants_get_different_redaction_keys() {
        let keys = crate::keys::Keys::from_seed(&[5; 32]).tenants().clone();
        let (a, b) = (keys.redaction("acme"), keys.redaction("globex"));
        assert_ne!(a.hash, b.hash);
        assert_ne!(a.pseudonym, b.pseudonym);
        assert_ne!(a.hash, a.pseudonym);
    }
}
