//! Every error the API returns, and the one place that turns errors into `{error, message}` JSON.
//!
//! Handlers return [`ApiError`]; poem and poem-openapi produce their own errors for unknown routes,
//! wrong methods and unparsable parameters or bodies. [`into_json_response`] maps all of them to
//! the same shape and status table, so a client never sees poem's plain-text defaults or, outside
//! development mode, an internal error's details.

use poem::error::{
    MethodNotAllowedError, NotFoundError, ParseJsonError, ParsePathError, ParseQueryError,
    ResponseError,
};
use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};

/// The body of every error response.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `not_found`, `rate_limited`.
    pub error: String,
    /// A sentence for humans. Never contains a stack trace outside development mode.
    pub message: String,
}

/// An error a handler returns; its variant decides the status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a request that is syntactically wrong in a way 422 does not describe.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no token, or one that is invalid or expired.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a valid token whose role or stream does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the resource does not exist (or is not visible to the caller).
    #[error("{0}")]
    NotFound(String),
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 422: a well-formed request whose parameters or body are invalid.
    #[error("{0}")]
    Invalid(String),
    /// 429: a rate or connection limit was hit; retry after `retry_after` seconds.
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    /// 501: the feature needs a component this process was started without.
    #[error("{0}")]
    NotConfigured(String),
    /// 503: a dependency is down; retry after `retry_after` seconds.
    #[error("{what} is unavailable; retry later")]
    Unavailable { what: &'static str, retry_after: u64 },
    /// 500: a bug or an unexpected failure. The detail goes to the log, and to the client only in
    /// development mode.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Invalid(_) => "invalid_request",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::NotConfigured(_) => "not_configured",
            ApiError::Unavailable { .. } => "service_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after, .. }
            | ApiError::Unavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The response, with internal details only when `dev_mode` is on. A `retry_after` of
    /// [`CONFIGURED_RETRY`] becomes `default_retry` (the configured `http.retry_after_secs`).
    pub(crate) fn to_response(&self, dev_mode: bool, default_retry: u64) -> Response {
        let message = match self {
            ApiError::Internal(_) if !dev_mode => "internal error".to_owned(),
            other => other.to_string(),
        };
        let mut response = json_error(self.status(), self.code(), message);
        if let Some(secs) = self.retry_after() {
            let secs = if secs == CONFIGURED_RETRY { default_retry } else { secs };
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotConfigured(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_response(&self) -> Response {
        self.to_response(false, FALLBACK_RETRY)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.to_response(false, FALLBACK_RETRY)
    }
}

/// `retry_after` value meaning "the configured default": errors converted from other crates'
/// errors do not know the configuration; the response layer fills it in.
pub const CONFIGURED_RETRY: u64 = 0;

/// Used only where no configuration is at hand.
const FALLBACK_RETRY: u64 = 5;

/// Documents the error statuses in the OpenAPI document, all with [`ErrorBody`].
impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        const STATUSES: [(u16, &str); 9] = [
            (400, "Malformed request"),
            (401, "Missing, invalid or expired token"),
            (403, "The token's role or stream does not allow this"),
            (404, "Not found"),
            (413, "Body too large"),
            (422, "Invalid parameters or body"),
            (429, "Rate or connection limit reached; see Retry-After"),
            (500, "Internal error"),
            (503, "A dependency is down; see Retry-After"),
        ];
        MetaResponses {
            responses: STATUSES
                .iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: ErrorBody::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        ErrorBody::register(registry);
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> Self {
        // tokio-postgres keeps its error kinds private; its messages for I/O, connect and closed
        // connections are stable and are the only way to tell an outage from a bad row.
        let text = error.to_string();
        let outage = error.is_closed()
            || text.starts_with("error connecting")
            || text.starts_with("error communicating")
            || text.starts_with("connection closed")
            || text.starts_with("timeout");
        if outage {
            tracing::warn!(%error, "PostgreSQL is unreachable.");
            ApiError::Unavailable { what: "PostgreSQL", retry_after: CONFIGURED_RETRY }
        } else {
            tracing::error!(%error, "A PostgreSQL query failed.");
            ApiError::Internal(format!("PostgreSQL: {error}"))
        }
    }
}

impl From<clickhouse::error::Error> for ApiError {
    fn from(error: clickhouse::error::Error) -> Self {
        match error {
            clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut => {
                tracing::warn!(%error, "ClickHouse is unreachable.");
                ApiError::Unavailable { what: "ClickHouse", retry_after: CONFIGURED_RETRY }
            }
            // Unknown database (81) or table (60): the analytics store is not migrated yet, which
            // is an outage of the dependency rather than a bug in the request.
            clickhouse::error::Error::BadResponse(text)
                if text.contains("Code: 81") || text.contains("Code: 60") =>
            {
                tracing::warn!(error = %text, "ClickHouse has no events table yet.");
                ApiError::Unavailable { what: "ClickHouse", retry_after: CONFIGURED_RETRY }
            }
            other => {
                tracing::error!(error = %other, "A ClickHouse query failed.");
                ApiError::Internal(format!("ClickHouse: {other}"))
            }
        }
    }
}

fn json_error(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody { error: code.to_owned(), message };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    Response::builder().status(status).content_type("application/json; charset=utf-8").body(bytes)
}

/// Maps any error reaching the top of the app to `{error, message}` with the right status.
///
/// poem-openapi reports unparsable parameters and bodies as 400; they are well-formed HTTP with
/// invalid content, which this API reports as 422 (the contract).
pub(crate) fn into_json_response(err: poem::Error, dev_mode: bool, default_retry: u64) -> Response {
    if let Some(api) = err.downcast_ref::<ApiError>() {
        return api.to_response(dev_mode, default_retry);
    }
    if err.is::<NotFoundError>() {
        return json_error(StatusCode::NOT_FOUND, "not_found", "no such route".into());
    }
    if err.is::<MethodNotAllowedError>() {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method".into(),
        );
    }
    let status = err.status();
    let parse_error = err.is::<poem_openapi::error::ParseParamError>()
        || err.is::<poem_openapi::error::ParseRequestPayloadError>()
        || err.is::<poem_openapi::error::ParseMultipartError>()
        || err.is::<ParseJsonError>()
        || err.is::<ParsePathError>()
        || err.is::<ParseQueryError>();
    if parse_error {
        return json_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", err.to_string());
    }
    let (status, code) = match status {
        StatusCode::BAD_REQUEST => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        StatusCode::UNAUTHORIZED => (status, "unauthorized"),
        StatusCode::FORBIDDEN => (status, "forbidden"),
        StatusCode::NOT_FOUND => (status, "not_found"),
        StatusCode::METHOD_NOT_ALLOWED => (status, "method_not_allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => (status, "payload_too_large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (status, "unsupported_media_type"),
        StatusCode::LENGTH_REQUIRED => (status, "length_required"),
        s if s.is_server_error() => {
            tracing::error!(error = %err, status = s.as_u16(), "Request failed.");
            let message = if dev_mode { err.to_string() } else { "internal error".into() };
            return json_error(s, "internal", message);
        }
        s => (s, "request_error"),
    };
    json_error(status, code, err.to_string())
}

/// Result type of API handlers.
pub(crate) type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = response.into_body().into_bytes().await.expect("body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[tokio::test]
    async fn internal_details_only_in_development_mode() {
        let error = ApiError::Internal("secret stack detail".into());
        let production = body_of(error.to_response(false, 5)).await;
        assert_eq!(production["message"], "internal error");
        let development = body_of(error.to_response(true, 5)).await;
        assert!(development["message"].as_str().is_some_and(|m| m.contains("secret stack detail")));
        let wrapped =
            into_json_response(poem::Error::from(ApiError::Internal("x".into())), false, 5);
        assert_eq!(wrapped.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body_of(wrapped).await["message"], "internal error");
    }

    #[test]
    fn configured_retry_after_is_filled_in() {
        let error = ApiError::Unavailable { what: "PostgreSQL", retry_after: CONFIGURED_RETRY };
        let response = error.to_response(false, 17);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()),
            Some("17")
        );
        let error = ApiError::RateLimited { message: "slow down".into(), retry_after: 3 };
        let response = error.to_response(false, 17);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()),
            Some("3")
        );
    }

    #[test]
    fn poem_errors_map_to_the_table() {
        let not_found = into_json_response(NotFoundError.into(), false, 5);
        assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
        let method = into_json_response(MethodNotAllowedError.into(), false, 5);
        assert_eq!(method.status(), StatusCode::METHOD_NOT_ALLOWED);
        let bad = poem::Error::from_string("bad input", StatusCode::BAD_REQUEST);
        assert_eq!(into_json_response(bad, false, 5).status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
