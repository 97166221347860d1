//! Authentication (JWT) and authorization (role and stream scope).
//!
//! Tokens carry `sub`, `role`, `streamId` and `exp`. Development tokens are HS256 with the
//! `TTLC_JWT_SECRET` environment secret (minted by `ttlc token`, see [`mint_token`]); production
//! verifies RS256 or ES256 tokens with a configured public key, so the API never holds a key that
//! can mint. Browsers' EventSource cannot send headers, so the token is also accepted as the
//! `access_token` query parameter or cookie.
//!
//! Roles nest within a stream: STREAMER ⊇ MODERATOR ⊇ VIEWER. OPERATOR is platform-wide: every
//! stream, plus the endpoints no stream role may use (global analytics, taps, all channels).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use poem::{FromRequest, Request, RequestBody};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "UPPERCASE")]
#[oai(rename_all = "UPPERCASE")]
pub enum Role {
    /// Reads history and aggregates of one stream.
    Viewer,
    /// A viewer who also reads live feeds, users, notes and rules, and writes notes.
    Moderator,
    /// The stream's owner: everything a moderator can, plus rule writes, replays and channels.
    Streamer,
    /// Platform operator: every stream and the platform-wide endpoints.
    Operator,
}

impl Role {
    fn rank(self) -> u8 {
        match self {
            Role::Viewer => 1,
            Role::Moderator => 2,
            Role::Streamer => 3,
            Role::Operator => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "VIEWER",
            Role::Moderator => "MODERATOR",
            Role::Streamer => "STREAMER",
            Role::Operator => "OPERATOR",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, AuthError> {
        match s.to_ascii_uppercase().as_str() {
            "VIEWER" => Ok(Role::Viewer),
            "MODERATOR" => Ok(Role::Moderator),
            "STREAMER" => Ok(Role::Streamer),
            "OPERATOR" | "OPS" => Ok(Role::Operator),
            _ => Err(AuthError::UnknownRole(s.to_owned())),
        }
    }
}

/// The claims of a ttlc token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    /// Who: used for per-user rate and connection limits and as the author of notes and rules.
    pub sub: String,
    pub role: Role,
    /// The stream this token is scoped to; required for every role but OPERATOR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    #[serde(default)]
    pub iat: u64,
}

impl Claims {
    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }

    /// The stream a non-operator is confined to; `None` for operators (every stream).
    pub fn scope(&self) -> Option<&str> {
        if self.is_operator() { None } else { self.stream_id.as_deref() }
    }

    /// At least `min` on `stream` (operators pass everywhere).
    pub fn require(&self, min: Role, stream: &str) -> Result<(), ApiError> {
        self.require_role(min)?;
        if self.is_operator() || self.stream_id.as_deref() == Some(stream) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this token is scoped to another stream".into()))
        }
    }

    /// At least `min`, whatever the stream (list endpoints then filter by [`Claims::scope`]).
    pub fn require_role(&self, min: Role) -> Result<(), ApiError> {
        if self.role.rank() >= min.rank() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {} role; the token has {}",
                min.as_str(),
                self.role.as_str()
            )))
        }
    }

    /// Platform-wide endpoints.
    pub fn require_operator(&self) -> Result<(), ApiError> {
        self.require_role(Role::Operator)
    }
}

/// Problems minting tokens or loading verification keys.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unknown role {0:?}: expected STREAMER, MODERATOR, VIEWER or OPERATOR")]
    UnknownRole(String),
    #[error("a {0} token needs a stream id (--stream)")]
    StreamRequired(&'static str),
    #[error("the JWT secret is empty: set TTLC_JWT_SECRET")]
    MissingSecret,
    #[error("cannot read the JWT public key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("unsupported JWT algorithm {0:?}: expected RS256 or ES256")]
    Algorithm(String),
    #[error("cannot encode the token: {0}")]
    Encode(String),
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Mints an HS256 development token for `role` on `stream` valid for `ttl`. The subject is
/// `dev-<role>-<stream>`, so tokens minted for the same role and stream count as one user for
/// rate and connection limits. `stream` may only be `None` for OPERATOR.
pub fn mint_token(
    secret: &str,
    role: Role,
    stream: Option<&str>,
    ttl: Duration,
) -> Result<String, AuthError> {
    if stream.is_none() && role != Role::Operator {
        return Err(AuthError::StreamRequired(role.as_str()));
    }
    let sub = format!("dev-{}-{}", role.as_str().to_ascii_lowercase(), stream.unwrap_or("all"));
    let now = now_secs();
    let claims = Claims {
        sub,
        role,
        stream_id: stream.map(str::to_owned),
        exp: now + ttl.as_secs().max(1),
        iat: now,
    };
    mint_claims(secret, &claims)
}

/// Signs arbitrary claims with HS256 (tests and tools that need a specific subject or expiry).
pub fn mint_claims(secret: &str, claims: &Claims) -> Result<String, AuthError> {
    if secret.is_empty() {
        return Err(AuthError::MissingSecret);
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| AuthError::Encode(e.to_string()))
}

/// Verifies tokens with the configured key.
pub(crate) struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("algorithms", &self.validation.algorithms).finish()
    }
}

impl Verifier {
    /// A public key when one is configured (production), else the HS256 development secret.
    pub(crate) fn from_config(config: &ttlc_core::config::Config) -> Result<Self, AuthError> {
        let http = &config.http;
        let (key, algorithm) = if http.jwt_public_key_path.is_empty() {
            let secret = config.secrets.jwt_secret.as_ref().ok_or(AuthError::MissingSecret)?;
            (DecodingKey::from_secret(secret.expose().as_bytes()), Algorithm::HS256)
        } else {
            let path = &http.jwt_public_key_path;
            let key_error = |reason: String| AuthError::Key { path: path.clone(), reason };
            let pem = std::fs::read(path).map_err(|e| key_error(e.to_string()))?;
            match http.jwt_algorithm.to_ascii_uppercase().as_str() {
                "RS256" => (
                    DecodingKey::from_rsa_pem(&pem).map_err(|e| key_error(e.to_string()))?,
                    Algorithm::RS256,
                ),
                "ES256" => (
                    DecodingKey::from_ec_pem(&pem).map_err(|e| key_error(e.to_string()))?,
                    Algorithm::ES256,
                ),
                other => return Err(AuthError::Algorithm(other.to_owned())),
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Verifier { key, validation })
    }

    pub(crate) fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => {
                    ApiError::Unauthorized("the token has expired".into())
                }
                _ => ApiError::Unauthorized(format!("invalid token: {e}")),
            },
        )?;
        let claims = data.claims;
        if claims.stream_id.as_deref().is_none_or(str::is_empty) && claims.role != Role::Operator {
            return Err(ApiError::Unauthorized("the token has no streamId claim".into()));
        }
        Ok(claims)
    }
}

/// The token of a request: `Authorization: Bearer`, else the `access_token` query parameter,
/// else the `access_token` cookie.
fn token_of(req: &Request) -> Option<String> {
    if let Some(value) = req.headers().get(poem::http::header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    if let Some(query) = req.uri().query() {
        let found = url_pairs(query).find(|(k, _)| k == "access_token").map(|(_, v)| v);
        if found.is_some() {
            return found;
        }
    }
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == "access_token")
        .map(|(_, v)| v.to_owned())
}

fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        Some((percent_decode(k), percent_decode(v)))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An authenticated caller. Extracting it verifies the token and charges the per-user rate limit.
#[derive(Debug, Clone)]
pub(crate) struct Auth(pub(crate) Claims);

impl<'a> FromRequest<'a> for Auth {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = req
            .data::<Arc<AppState>>()
            .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
        let token = token_of(req).ok_or_else(|| {
            ApiError::Unauthorized(
                "a bearer token is required (Authorization header, access_token query parameter \
                 or cookie)"
                    .into(),
            )
        })?;
        let claims = state.verifier.verify(&token)?;
        state.user_limiter.check(&claims.sub).map_err(|retry_after| ApiError::RateLimited {
            message: "too many requests for this user".into(),
            retry_after,
        })?;
        Ok(Auth(claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(role: Role, stream: Option<&str>) -> Claims {
        Claims { sub: "u".into(), role, stream_id: stream.map(Into::into), exp: 0, iat: 0 }
    }

    #[test]
    fn roles_nest_within_their_stream() {
        let moderator = claims(Role::Moderator, Some("A"));
        assert!(moderator.require(Role::Viewer, "A").is_ok());
        assert!(moderator.require(Role::Moderator, "A").is_ok());
        assert!(moderator.require(Role::Streamer, "A").is_err());
        assert!(moderator.require(Role::Viewer, "B").is_err());
        assert!(moderator.require_operator().is_err());
        let operator = claims(Role::Operator, None);
        assert!(operator.require(Role::Streamer, "B").is_ok());
        assert_eq!(operator.scope(), None);
    }

    #[test]
    fn tokens_come_from_header_query_or_cookie() {
        let req = Request::builder().uri_str("/x?a=1&access_token=abc%2Ed").finish();
        assert_eq!(token_of(&req).as_deref(), Some("abc.d"));
        let req = Request::builder().header("cookie", "x=1; access_token=tok").finish();
        assert_eq!(token_of(&req).as_deref(), Some("tok"));
        let req = Request::builder()
            .header("authorization", "Bearer t1")
            .uri_str("/?access_token=t2")
            .finish();
        assert_eq!(token_of(&req).as_deref(), Some("t1"));
        let req = Request::builder().header("authorization", "Basic t1").finish();
        assert_eq!(token_of(&req), None);
    }

    #[test]
    fn minting_requires_a_stream_except_for_operators() {
        assert!(matches!(
            mint_token("s", Role::Viewer, None, Duration::from_secs(60)),
            Err(AuthError::StreamRequired(_))
        ));
        assert!(mint_token("s", Role::Operator, None, Duration::from_secs(60)).is_ok());
        assert!(matches!(
            mint_token("", Role::Operator, None, Duration::from_secs(60)),
            Err(AuthError::MissingSecret)
        ));
    }
}
