//! The HTTP side of a direct connection: resolving a `@uniqueId` to its room id and asking the
//! sign server (Euler-compatible) for a signed push URL, cookies and the initial message batch.
//!
//! Every sign request goes through one [`SignBudget`] shared by all channels of the process, so
//! starting 100 channels at once paces them instead of stampeding the signer; a 429 from the
//! signer pauses the whole budget for its `retry-after`.

use std::time::Duration;

use prost::Message as _;
use reqwest::StatusCode;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;
use ttlc_core::config::Config;
use ttlc_webcast::ProtoMessageFetchResult;

use crate::error::IngestError;
use crate::telemetry::SignRequested;

/// Shared limit on sign requests: at most `max_concurrent` in flight and at most `per_sec` started
/// per second (evenly spaced), across every channel of the process.
#[derive(Debug)]
pub struct SignBudget {
    permits: Semaphore,
    spacing: Duration,
    next_slot: parking_lot::Mutex<Instant>,
}

impl SignBudget {
    pub fn new(per_sec: f64, max_concurrent: usize) -> Self {
        let spacing =
            if per_sec > 0.0 { Duration::from_secs_f64(1.0 / per_sec) } else { Duration::ZERO };
        SignBudget {
            permits: Semaphore::new(max_concurrent.max(1)),
            spacing,
            next_slot: parking_lot::Mutex::new(Instant::now()),
        }
    }

    /// Waits for a concurrency permit, then for this request's time slot. The permit is held
    /// until the request is answered.
    pub async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        let permit = self.permits.acquire().await.ok()?;
        let slot = {
            let mut next = self.next_slot.lock();
            let slot = (*next).max(Instant::now());
            *next = slot + self.spacing;
            slot
        };
        tokio::time::sleep_until(slot).await;
        Some(permit)
    }

    /// Holds every later request back for `delay` (the signer said 429).
    pub fn pause(&self, delay: Duration) {
        let mut next = self.next_slot.lock();
        *next = (*next).max(Instant::now() + delay);
    }
}

/// What the sign server returns for one connection.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The push WebSocket URL with every query parameter it needs.
    pub ws_url: String,
    /// The `Cookie` header value to send with the upgrade.
    pub cookies: String,
    /// Initial messages and connection parameters (heartbeat interval, cursor, …).
    pub initial: ProtoMessageFetchResult,
}

/// Which sign endpoint the client calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignEndpoint {
    /// `GET /webcast/fetch?room_id=…&unique_id=…`
    Fetch,
    /// `GET /webcast/rooms/{room_id}/connect`
    Connect,
}

/// HTTP client for the sign server and TikTok's website.
#[derive(Debug, Clone)]
pub struct SignClient {
    http: reqwest::Client,
    sign_base: String,
    web_base: String,
    api_key: Option<String>,
    endpoint: SignEndpoint,
    user_agent: String,
}

impl SignClient {
    pub fn new(config: &Config) -> Result<Self, IngestError> {
        let ingest = &config.ingest;
        let endpoint = match ingest.sign_endpoint.as_str() {
            "fetch" => SignEndpoint::Fetch,
            "connect" => SignEndpoint::Connect,
            other => {
                return Err(IngestError::Fatal(format!(
                    "ingest.sign_endpoint must be `fetch` or `connect`, not `{other}`"
                )));
            }
        };
        let http = reqwest::Client::builder()
            .user_agent(&ingest.user_agent)
            .timeout(Duration::from_millis(ingest.request_timeout_ms))
            .build()
            .map_err(|e| IngestError::Fatal(format!("cannot build the HTTP client: {e}")))?;
        Ok(SignClient {
            http,
            sign_base: ingest.sign_api_url.trim_end_matches('/').to_owned(),
            web_base: ingest.tiktok_web_url.trim_end_matches('/').to_owned(),
            api_key: config.secrets.sign_api_key.as_ref().map(|k| k.expose().to_owned()),
            endpoint,
            user_agent: ingest.user_agent.clone(),
        })
    }

    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// The API key (`TTLC_SIGN_API_KEY`), which the Euler relay also takes.
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    /// The room id of a channel: a numeric channel is a room id already; a `@uniqueId` is looked
    /// up in the LIVE page's data, then TikTok's live API, then the sign server.
    pub async fn resolve_room_id(
        &self,
        channel: &str,
        budget: &SignBudget,
    ) -> Result<String, IngestError> {
        let unique = channel.trim_start_matches('@');
        if !unique.is_empty() && unique.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(unique.to_owned());
        }
        let page = format!("{}/@{unique}/live", self.web_base);
        if let Some(id) = self.get_text(&page).await.as_deref().and_then(room_id_in_text) {
            return Ok(id);
        }
        let api = format!(
            "{}/api-live/user/room/?aid=1988&sourceType=54&uniqueId={unique}",
            self.web_base
        );
        if let Some(id) = self.get_text(&api).await.as_deref().and_then(room_id_in_text) {
            return Ok(id);
        }
        let _permit = budget.acquire().await;
        SignRequested.emit();
        let url = format!("{}/webcast/room_id?unique_id={unique}", self.sign_base);
        if let Some(id) = self.get_text(&url).await.as_deref().and_then(room_id_in_text) {
            return Ok(id);
        }
        Err(IngestError::RoomNotFound(channel.to_owned()))
    }

    async fn get_text(&self, url: &str) -> Option<String> {
        let resp = self.http.get(url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.text().await.ok()
    }

    /// Asks the sign server for a signed push URL, cookies and the initial messages.
    pub async fn sign(
        &self,
        room_id: &str,
        unique_id: Option<&str>,
        budget: &SignBudget,
    ) -> Result<Signed, IngestError> {
        let url = match self.endpoint {
            SignEndpoint::Fetch => {
                let mut u =
                    format!("{}/webcast/fetch?client=ttlc&room_id={room_id}", self.sign_base);
                if let Some(unique) = unique_id {
                    u.push_str(&format!("&unique_id={}", unique.trim_start_matches('@')));
                }
                u
            }
            SignEndpoint::Connect => format!("{}/webcast/rooms/{room_id}/connect", self.sign_base),
        };
        let _permit = budget.acquire().await;
        SignRequested.emit();
        let mut req = self.http.get(&url);
        if let Some(key) = &self.api_key {
            req = req.header("x-api-key", key);
        }
        let resp = req.send().await.map_err(|e| http_error("sign request failed", &e))?;
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(Duration::from_secs(1), Duration::from_secs);
            budget.pause(retry_after);
            return Err(IngestError::RateLimited { retry_after });
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(IngestError::Fatal(format!(
                "the sign server rejected the API key (HTTP {})",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(IngestError::Http {
                context: "sign request",
                message: format!("HTTP {}", status.as_u16()),
                status: Some(status.as_u16()),
            });
        }
        let cookies = resp
            .headers()
            .get("x-set-tt-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = resp.bytes().await.map_err(|e| http_error("sign response body", &e))?;
        let initial = ProtoMessageFetchResult::decode(body.as_ref())
            .map_err(|e| IngestError::Decode { what: "sign response", message: e.to_string() })?;
        let ws_url = push_url(&initial, room_id)?;
        Ok(Signed { ws_url, cookies, initial })
    }
}

fn http_error(context: &'static str, e: &reqwest::Error) -> IngestError {
    IngestError::Http { context, message: e.to_string(), status: e.status().map(|s| s.as_u16()) }
}

/// The push URL: the server's push endpoint plus its route parameters and the client parameters
/// TikTok's web client sends.
fn push_url(initial: &ProtoMessageFetchResult, room_id: &str) -> Result<String, IngestError> {
    let mut url = url::Url::parse(&initial.push_server).map_err(|e| IngestError::Decode {
        what: "push server URL",
        message: format!("{e}: {:?}", initial.push_server),
    })?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in [
            ("aid", "1988"),
            ("app_name", "tiktok_web"),
            ("version_code", "270000"),
            ("webcast_sdk_version", "1.3.0"),
            ("update_version_code", "1.3.0"),
            ("compress", "gzip"),
            ("device_platform", "web"),
            ("resp_content_type", "protobuf"),
            ("did_rule", "3"),
            ("host", "https://webcast.tiktok.com"),
            ("identity", "audience"),
        ] {
            q.append_pair(k, v);
        }
        // Route params win over defaults, so they are appended last and room_id only once.
        let mut params: Vec<(&String, &String)> = initial.route_params.iter().collect();
        params.sort();
        for (k, v) in params {
            if k != "room_id" {
                q.append_pair(k, v);
            }
        }
        q.append_pair("room_id", room_id);
        q.append_pair("internal_ext", &initial.internal_ext);
        q.append_pair("cursor", &initial.cursor);
    }
    Ok(url.into())
}

/// Finds `"roomId":"123…"` (page data and the live API both carry it) in a response body.
fn room_id_in_text(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(at) = rest.find("\"roomId\"") {
        rest = &rest[at + 8..];
        let value = rest.trim_start().strip_prefix(':')?.trim_start();
        let digits: String =
            value.trim_start_matches('"').chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && digits != "0" {
            return Some(digits);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_found_in_pages_and_json() {
        assert_eq!(room_id_in_text(r#"{"user":{"roomId":"7312"}}"#).as_deref(), Some("7312"));
        assert_eq!(room_id_in_text(r#"{"roomId": 99}"#).as_deref(), Some("99"));
        assert_eq!(room_id_in_text(r#"{"roomId":"","x":{"roomId":"5"}}"#).as_deref(), Some("5"));
        assert_eq!(room_id_in_text("<html>offline</html>"), None);
    }

    #[tokio::test]
    async fn the_budget_spaces_requests_and_honours_pauses() {
        let budget = SignBudget::new(20.0, 2);
        let start = Instant::now();
        for _ in 0..5 {
            drop(budget.acquire().await);
        }
        // Five requests at 20/s: the fifth starts 200 ms after the first.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(195) && took < Duration::from_millis(400),
            "{took:?}"
        );
        budget.pause(Duration::from_millis(300));
        let before = Instant::now();
        drop(budget.acquire().await);
        assert!(before.elapsed() >= Duration::from_millis(290));
    }

    #[test]
    fn push_urls_carry_route_params_and_room() {
        let mut r = ProtoMessageFetchResult {
            push_server: "ws://127.0.0.1:1/webcast/im/push/v2/".into(),
            internal_ext: "ext".into(),
            cursor: "c1".into(),
            ..Default::default()
        };
        r.route_params.insert("imprp".into(), "tok".into());
        let url = push_url(&r, "77").unwrap();
        assert!(url.starts_with("ws://127.0.0.1:1/webcast/im/push/v2/?aid=1988"));
        assert!(
            url.contains("imprp=tok") && url.contains("room_id=77") && url.contains("cursor=c1")
        );
        r.push_server = String::new();
        assert!(push_url(&r, "77").is_err());
    }
}
