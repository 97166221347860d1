//! Pseudonyms for inactive users: HMAC-SHA256 under a secret key (`TTLC_PSEUDONYM_SECRET`).
//!
//! A keyed hash rather than a plain one because TikTok ids and handles are few enough to
//! enumerate: SHA-256 of a user id could be reversed by hashing every candidate, HMAC without the
//! key cannot. The same key gives the same pseudonym every time, so pseudonymized rows of a user
//! stay linked to each other (and an operator holding the key can find a user's row again, as
//! GDPR erasure does); rotating the key breaks that link for good.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::RetentionError;

/// Shortest accepted key: the HMAC-SHA256 output size.
pub const MIN_KEY_BYTES: usize = 32;

/// Prefix of every pseudonym, so a pseudonymized row is recognizable at a glance.
const PREFIX: &str = "p_";

/// Computes the pseudonyms. `Debug` never shows the key.
#[derive(Clone)]
pub struct Pseudonymizer {
    /// Keyed once; every pseudonym starts from a clone of this state.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(***)")
    }
}

impl Pseudonymizer {
    /// Refuses keys shorter than [`MIN_KEY_BYTES`].
    pub fn new(key: &[u8]) -> Result<Self, RetentionError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(RetentionError::WeakKey(key.len()));
        }
        let mac =
            Hmac::<Sha256>::new_from_slice(key).map_err(|_| RetentionError::WeakKey(key.len()))?;
        Ok(Pseudonymizer { mac })
    }

    /// The pseudonym replacing a TikTok user id: `p_` and 64 hex digits.
    pub fn user_id(&self, user_id: &str) -> String {
        self.mac(b"user_id", user_id)
    }

    /// The pseudonym replacing a TikTok @uniqueId. A different domain than [`Self::user_id`], so
    /// an id and a handle that happen to be equal strings get unrelated pseudonyms.
    pub fn unique_id(&self, unique_id: &str) -> String {
        self.mac(b"unique_id", unique_id)
    }

    fn mac(&self, domain: &[u8], value: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(domain);
        // A separator that cannot occur in the domain, so (domain, value) pairs never collide.
        mac.update(&[0]);
        mac.update(value.as_bytes());
        format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn short_keys_are_refused() {
        assert!(matches!(Pseudonymizer::new(b"too short"), Err(RetentionError::WeakKey(9))));
    }

    #[test]
    fn pseudonyms_are_stable_keyed_and_domain_separated() -> Result<(), RetentionError> {
        let p = Pseudonymizer::new(KEY)?;
        assert_eq!(p.user_id("7001"), p.user_id("7001"));
        assert_ne!(p.user_id("7001"), p.user_id("7002"));
        assert_ne!(p.user_id("alice"), p.unique_id("alice"));
        let other = Pseudonymizer::new(b"another key, also 32 bytes long!")?;
        assert_ne!(p.user_id("7001"), other.user_id("7001"));
        let pseudonym = p.user_id("7001");
        assert!(pseudonym.starts_with("p_") && pseudonym.len() == 66, "{pseudonym}");
        assert!(!format!("{p:?}").contains("0123"));
        Ok(())
    }
}
