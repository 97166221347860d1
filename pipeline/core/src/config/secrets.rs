//! Secrets come from the environment only, and never show up in `Debug` output or logs.

use std::fmt;

/// A secret value; `Debug` prints `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Every secret ttlc reads, by environment variable.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// `TTLC_JWT_SECRET`: HS256 key for development tokens.
    pub jwt_secret: Option<Secret>,
    /// `TTLC_SIGN_API_KEY`: the sign server's API key (`x-api-key`).
    pub sign_api_key: Option<Secret>,
    /// `TTLC_WEBHOOK_SECRET`: HMAC key for webhook signatures.
    pub webhook_secret: Option<Secret>,
    /// `TTLC_PSEUDONYM_SECRET`: HMAC key (≥ 32 bytes) for pseudonymizing inactive users.
    pub pseudonym_secret: Option<Secret>,
}

impl Secrets {
    pub(crate) fn from_env(env: &impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| env(name).filter(|v| !v.is_empty()).map(Secret);
        Secrets {
            jwt_secret: get("TTLC_JWT_SECRET"),
            sign_api_key: get("TTLC_SIGN_API_KEY"),
            webhook_secret: get("TTLC_WEBHOOK_SECRET"),
            pseudonym_secret: get("TTLC_PSEUDONYM_SECRET"),
        }
    }
}
