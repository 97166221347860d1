//! The HTTP API (`ttlc api`, SPEC §6): history from PostgreSQL, analytics from ClickHouse, live
//! SSE/WebSocket feeds from the `unified` and `actions` topics, channel and replay control.
//!
//! Built on poem + poem-openapi: the OpenAPI document is served at `/openapi.json` and an
//! interactive UI at `/docs`. Every error is JSON `{error, message}` ([`error`]); auth is a JWT
//! ([`auth`]); live feeds share one tap consumer per topic per process ([`live`]).
//!
//! The embedding binary calls [`serve`] (or [`bind`] then [`ApiServer::run`] when it needs the
//! bound address first) with an [`ApiDeps`] carrying the control edges: [`PgChannels`] for
//! `/channels` (ingest may run in this process or any other) and the replay runner.

pub mod auth;
mod channels_pg;
mod client_ip;
pub mod control;
mod db;
pub mod error;
mod limits;
mod live;
mod metrics;
mod routes;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::endpoint::BoxEndpoint;
use poem::http::Method;
use poem::listener::TcpAcceptor;
use poem::middleware::{CatchPanic, Cors};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::OpenApiService;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;

pub use auth::{AuthError, Claims, Role, mint_claims, mint_token};
pub use channels_pg::PgChannels;
pub use control::{ChannelControl, ChannelInfo, ControlError, ReplayControl};
pub use error::{ApiError, ErrorBody};
pub use state::GroupLag;

use crate::error::into_json_response;
use crate::limits::{ConnectionLimiter, RateLimiter};
use crate::live::hub::{Feed, Hub};
use crate::state::AppState;

/// The edges the API drives but does not own. `None` makes the matching routes answer 501.
#[derive(Debug, Clone, Default)]
pub struct ApiDeps {
    /// Ingest channel control (`/channels`).
    pub channels: Option<Arc<dyn ChannelControl>>,
    /// Session replays (`POST /sessions/{id}/replay`).
    pub replay: Option<Arc<dyn ReplayControl>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
    /// A setting the API cannot work with.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A bound, not yet running API server.
pub struct ApiServer {
    acceptor: TcpAcceptor,
    addr: SocketAddr,
    app: BoxEndpoint<'static, Response>,
    state: Arc<AppState>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// Binds `config.http.addr` (port 0 picks a free port), starts the live feed consumers and builds
/// the app. Nothing is served until [`ApiServer::run`].
pub async fn bind(
    config: &Config,
    deps: ApiDeps,
    shutdown: CancellationToken,
) -> Result<ApiServer, ServeError> {
    let verifier = auth::Verifier::from_config(config)?;
    let trusted_proxies = client_ip::TrustedProxies::parse(&config.http.trusted_proxies)
        .map_err(ServeError::Config)?;
    let listener = tokio::net::TcpListener::bind(&config.http.addr)
        .await
        .map_err(|source| ServeError::Bind { addr: config.http.addr.clone(), source })?;
    let addr = listener.local_addr()?;
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    metrics::init();
    let http = &config.http;
    let (unified, unified_task) =
        Hub::start(&config.kafka, Feed::Unified, http.live_buffer, shutdown.clone());
    let (actions, actions_task) =
        Hub::start(&config.kafka, Feed::Actions, http.live_buffer, shutdown.clone());
    let state = Arc::new(AppState {
        config: config.clone(),
        verifier,
        pg: db::Pg::new(config),
        ch: db::Ch::new(config),
        rules: match ttlc_rules::RuleStore::new(config) {
            Ok(store) => Some(Arc::new(store)),
            Err(error) => {
                tracing::error!(%error, "The rule store cannot be configured; rule routes will answer 503.");
                None
            }
        },
        unified,
        actions,
        ip_limiter: RateLimiter::new(http.rate_limit_ip_per_sec, http.rate_limit_ip_burst),
        trusted_proxies,
        user_limiter: RateLimiter::new(http.rate_limit_user_per_sec, http.rate_limit_user_burst),
        connections: ConnectionLimiter::new(http.max_connections_per_user),
        deps,
        started: Instant::now(),
        token: shutdown,
        lag: Default::default(),
        probe: state::probe_client(&config.kafka),
    });
    let lag_task = tokio::spawn(state::refresh_lag(state.clone()));
    let app = app(state.clone());
    tracing::info!(%addr, "The API is listening.");
    Ok(ApiServer { acceptor, addr, app, state, tasks: vec![unified_task, actions_task, lag_task] })
}

impl ApiServer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the shutdown token is cancelled, then stops accepting, lets live feeds send
    /// their closing message and waits up to 10 s for open requests.
    pub async fn run(self) -> Result<(), ServeError> {
        let token = self.state.token.clone();
        let result = poem::Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(
                self.app,
                token.clone().cancelled_owned(),
                Some(Duration::from_secs(10)),
            )
            .await;
        // The token is cancelled unless the server failed; make sure the background tasks end.
        token.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        tracing::info!("The API stopped.");
        result.map_err(ServeError::Io)
    }
}

/// Binds and serves until `shutdown` is cancelled.
pub async fn serve(
    config: &Config,
    deps: ApiDeps,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    bind(config, deps, shutdown).await?.run().await
}

/// The OpenAPI service with every documented route.
///
/// The server entry is relative (`/`), so the document and the UI's "try it out" stay right behind
/// a reverse proxy or a port mapping.
fn openapi() -> OpenApiService<routes::Apis, ()> {
    OpenApiService::new(routes::apis(), "ttlc API", env!("CARGO_PKG_VERSION"))
        .description(routes::DESCRIPTION)
        .server("/")
}

/// The OpenAPI document as JSON (for tools and tests that need it without a server).
pub fn openapi_json() -> String {
    openapi().spec()
}

fn app(state: Arc<AppState>) -> BoxEndpoint<'static, Response> {
    let api = openapi();
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let dev_mode = state.dev_mode();
    let route = Route::new().at("/openapi.json", spec).nest("/docs", docs).nest("/", api);
    let cors_origins = state.config.http.cors_origins.clone();
    let guarded = route
        .with(CatchPanic::new().with_handler(move |_| {
            ApiError::Internal("the request handler panicked".into()).to_response(dev_mode, 5)
        }))
        .around(guard)
        .data(state);
    if cors_origins.is_empty() {
        guarded.boxed()
    } else {
        guarded
            .with(
                Cors::new()
                    .allow_origins(cors_origins)
                    .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
                    .allow_headers(["authorization", "content-type", "last-event-id"])
                    .allow_credentials(true),
            )
            .map_to_response()
            .boxed()
    }
}

/// Paths that are never rate limited: probes and scrapers must see an overloaded API.
fn unlimited(path: &str) -> bool {
    path == "/health" || path == "/metrics"
}

/// Per-IP rate limit, body limit, metrics, and the JSON error mapping, around every request.
async fn guard<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let method = req.method().to_string();
    let Some(state) = req.data::<Arc<AppState>>().cloned() else {
        return Ok(ApiError::Internal("application state missing".into()).into_response());
    };
    let (dev_mode, retry) = (state.dev_mode(), state.retry_after());
    let response = match admit(&state, &mut req).await {
        Ok(()) => match ep.call(req).await {
            Ok(output) => output.into_response(),
            Err(error) => into_json_response(error, dev_mode, retry),
        },
        Err(error) => {
            let mut response = error.to_response(dev_mode, retry);
            if matches!(error, ApiError::PayloadTooLarge(_)) {
                // The rest of the body was never read: this connection cannot carry another
                // request, and saying so stops clients from reusing it.
                response.headers_mut().insert(
                    poem::http::header::CONNECTION,
                    poem::http::HeaderValue::from_static("close"),
                );
            }
            response
        }
    };
    metrics::request(&method, response.status().as_u16(), started.elapsed().as_secs_f64());
    Ok(response)
}

/// Checks the IP rate limit and the body size before any handler runs.
async fn admit(state: &AppState, req: &mut Request) -> Result<(), ApiError> {
    if !unlimited(req.uri().path()) {
        if let Some(peer) = req.remote_addr().as_socket_addr().map(SocketAddr::ip) {
            let ip = state.trusted_proxies.client_ip(peer, req.headers());
            if let Err(retry_after) = state.ip_limiter.check(&ip) {
                metrics::rate_limited();
                return Err(ApiError::RateLimited {
                    message: "too many requests from this address".into(),
                    retry_after,
                });
            }
        }
    }
    let max = state.config.http.max_body_bytes;
    let too_large = || ApiError::PayloadTooLarge(format!("the request body exceeds {max} bytes"));
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > max as u64 => return Err(too_large()),
        Some(_) => {}
        None if req.headers().contains_key(poem::http::header::TRANSFER_ENCODING) => {
            // A chunked body has no declared size: read at most one byte past the limit.
            let mut reader = req.take_body().into_async_read().take(max as u64 + 1);
            let mut bytes = Vec::new();
            reader
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e}")))?;
            if bytes.len() > max {
                return Err(too_large());
            }
            req.set_body(bytes);
        }
        None => {}
    }
    Ok(())
}
