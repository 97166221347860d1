//! Webhook actions: a signed JSON POST to a URL from the rule, hardened against SSRF.
//!
//! Checks, in order, before any byte leaves the process:
//! 1. [`check_url`]: https only (http only to the literal 127.0.0.1 with the dev flag), no
//!    credentials, the domain allowlist, and for IP-literal hosts the address policy (every
//!    spelling: `2130706433`, `0x7f.1`, `127.1`, `::ffff:127.0.0.1`, … are normalized by the URL
//!    parser first);
//! 2. for host names, the client's resolver ([`VettingResolver`]) resolves and refuses the name
//!    if any answer is not public. reqwest connects only to the addresses that resolver returned,
//!    so there is no second resolution an attacker's DNS could answer differently (no rebinding).
//!
//! The client follows no redirects (a 3xx is a failure), ignores proxy environment variables (a
//! proxy would connect on our behalf to whatever the URL names), has connect and total timeouts,
//! and reads at most `webhook_max_response_bytes` of a response.
//!
//! Signature: `x-ttlc-signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with
//! `x-ttlc-timestamp: <unix seconds>`. Signing the timestamp with the body lets receivers reject
//! replays (e.g. older than 5 minutes). `x-ttlc-action-id` is an idempotency key for receivers:
//! the executor delivers at least once, so a receiver that dedupes on it sees each action once.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::CONTENT_TYPE;
use reqwest::redirect::Policy;
use serde_json::json;
use sha2::Sha256;
use ttlc_core::config::ExecuteConfig;
use ttlc_rules::url_policy::{CheckedHost, UrlRefusal, WebhookPolicy, check_resolved, check_url};
use ttlc_schemas::ActionRequest;

use crate::error::ActionError;

pub const SIGNATURE_HEADER: &str = "x-ttlc-signature";
pub const TIMESTAMP_HEADER: &str = "x-ttlc-timestamp";
pub const ACTION_ID_HEADER: &str = "x-ttlc-action-id";

/// Sends webhook actions.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    client: reqwest::Client,
    policy: WebhookPolicy,
    secret: Option<Arc<str>>,
    max_response_bytes: usize,
}

impl WebhookClient {
    /// `secret` is `TTLC_WEBHOOK_SECRET`; without it every webhook fails (unsigned requests would
    /// let anyone forge them to the receiver).
    pub fn new(config: &ExecuteConfig, secret: Option<&str>) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_millis(config.webhook_connect_timeout_ms))
            .timeout(Duration::from_millis(config.webhook_timeout_ms))
            .dns_resolver(VettingResolver)
            .user_agent(concat!("ttlc-webhook/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(WebhookClient {
            client,
            policy: WebhookPolicy {
                allowed_domains: config.webhook_allowed_domains.clone(),
                allow_http_loopback: config.webhook_allow_http_loopback,
            },
            secret: secret.map(Arc::from),
            max_response_bytes: config.webhook_max_response_bytes,
        })
    }

    /// Checks the target, then POSTs the signed action. See the module docs for the policy.
    pub async fn send(&self, action: &ActionRequest) -> Result<(), ActionError> {
        let url = action.params.get("url").and_then(|v| v.as_str()).unwrap_or_default();
        let checked = check_url(url, &self.policy).map_err(refused)?;
        let Some(secret) = self.secret.as_deref() else {
            return Err(ActionError::Permanent(
                "TTLC_WEBHOOK_SECRET is not set: webhooks are not signed, so none are sent".into(),
            ));
        };
        let body = serde_json::to_vec(&payload(action))
            .map_err(|e| ActionError::Permanent(e.to_string()))?;
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signature = sign(secret.as_bytes(), &timestamp, &body);
        let request = self
            .client
            .post(checked.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, format!("sha256={signature}"))
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(ACTION_ID_HEADER, &action.action_id)
            .body(body);
        let mut response = request.send().await.map_err(|e| classify(e, &checked.host))?;
        let status = response.status();
        // Drain a bounded amount so the connection can be reused; a larger body is cut off.
        let mut read = 0usize;
        while read <= self.max_response_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
        match status.as_u16() {
            200..=299 => Ok(()),
            300..=399 => Err(ActionError::Permanent(format!(
                "the target answered {status}; redirects are not followed"
            ))),
            408 | 425 | 429 | 500..=599 => {
                Err(ActionError::Transient(format!("the target answered {status}")))
            }
            _ => Err(ActionError::Permanent(format!("the target answered {status}"))),
        }
    }
}

/// The JSON body a receiver gets.
fn payload(a: &ActionRequest) -> serde_json::Value {
    json!({
        "actionId": a.action_id,
        "ruleId": a.rule_id,
        "eventId": a.event_id,
        "streamId": a.stream_id,
        "sessionId": a.session_id,
        "type": a.action_type.as_str(),
        "text": a.rendered_template,
        "attempt": a.attempt,
        "createdAt": a.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

/// Lowercase hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn refused(r: UrlRefusal) -> ActionError {
    ActionError::Refused { reason: r.reason(), detail: r.to_string() }
}

/// Maps a reqwest error: a refusal from the resolver stays a refusal; timeouts and connection
/// failures are transient; anything else (a malformed request) is permanent.
fn classify(e: reqwest::Error, host: &CheckedHost) -> ActionError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(TargetRefused(r)) = s.downcast_ref::<TargetRefused>() {
            return refused(r.clone());
        }
        source = s.source();
    }
    if e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() {
        let target = match host {
            CheckedHost::Ip(ip) => ip.to_string(),
            CheckedHost::Name(n) => n.clone(),
        };
        return ActionError::Transient(format!("request to {target} failed: {}", without_url(&e)));
    }
    ActionError::Permanent(without_url(&e))
}

/// reqwest errors print the URL, which may carry a secret token in its path or query.
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(url.as_str(), "<webhook url>");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// The resolver error carrying a policy refusal, so [`classify`] can tell it from a DNS failure.
#[derive(Debug)]
struct TargetRefused(UrlRefusal);

impl std::fmt::Display for TargetRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TargetRefused {}

/// Resolves with the system resolver, then refuses the name unless every address is public. The
/// addresses it returns are the only ones reqwest will connect to.
#[derive(Debug, Clone, Copy)]
pub struct VettingResolver;

impl Resolve for VettingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            check_resolved(&host, &ips).map_err(|r| {
                Box::new(TargetRefused(r)) as Box<dyn std::error::Error + Send + Sync>
            })?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
