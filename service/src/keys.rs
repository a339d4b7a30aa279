//! Every key of a deployment, derived in one place from the ledger signer's seed, so a
//! deployment has one secret to protect. Each purpose has its own label, which keeps the keys
//! independent: a leaked content-HMAC key opens no vault, and tenants never share a key.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::vault::TenantKeys;

/// The keys derived from one seed.
#[derive(Clone)]
pub struct Keys {
    content_hmac: [u8; 32],
    tenants: TenantKeys,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    pub fn from_seed(seed: &[u8]) -> Keys {
        Keys {
            content_hmac: Sha256::new()
                .chain_update(b"meshos/content-hmac/v1")
                .chain_update(seed)
                .finalize()
                .into(),
            tenants: TenantKeys::from_root(
                Sha256::new()
                    .chain_update(b"meshos/tenant-keys/v1")
                    .chain_update(seed)
                    .finalize()
                    .into(),
            ),
        }
    }

    /// Per-tenant redaction and vault keys.
    pub fn tenants(&self) -> &TenantKeys {
        &self.tenants
    }

    /// Keyed hash of submitted content: lets an auditor confirm what was checked without the
    /// ledger ever holding the text itself.
    pub fn content_hmac(&self, content: &str) -> String {
        // HMAC accepts keys of any length; a 32-byte key cannot be rejected.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.content_hmac) else {
            return String::new();
        };
        mac.update(content.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_one_seed_are_independent_and_stable() {
        let a = Keys::from_seed(&[1; 32]);
        let b = Keys::from_seed(&[2; 32]);
        assert_eq!(
            a.content_hmac("x"),
            Keys::from_seed(&[1; 32]).content_hmac("x")
        );
        assert_ne!(a.content_hmac("x"), b.content_hmac("x"));
        assert_ne!(a.content_hmac, a.tenants.redaction("t").hash);
    }
}
