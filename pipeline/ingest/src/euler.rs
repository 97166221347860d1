//! The euler provider: Euler Stream's WebSocket relay, which connects to TikTok on our behalf.
//!
//! `GET {euler_ws_url}?uniqueId=…&apiKey=…&features.bundleEvents=true` upgrades to a socket that
//! sends JSON text frames `{"messages": [{"type": "WebcastChatMessage", "data": {…}}, …]}` (one
//! object per frame without bundling). Each message becomes a raw.v1 envelope with `data` = the
//! decoded object. Binary frames (when raw messages are requested) are push frames or fetch
//! results and go through the direct provider's decode path, keeping the original bytes.
//!
//! Close codes: 4005 = the LIVE ended; 4400/4401/4403 = bad options, key or permission (fatal);
//! anything else (4404 offline, 4429 connection limit, transport errors) is retried with backoff.
//! The relay has no application heartbeat: WebSocket pings keep the socket alive. Gift streaks
//! arrive decoded, so the missing-final-frame synthesis of the direct provider does not apply here.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use ttlc_schemas::RawEnvelope;

use crate::direct::{ChannelCounters, DirectContext, Failure, Outcome};
use crate::envelope::Session;
use crate::error::IngestError;
use crate::publish::SinkClosed;
use crate::telemetry::{ChannelConnected, ChannelDisconnected, EnvelopesQueued, FrameUndecodable};
use crate::wire;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Close code Euler sends when the LIVE ended.
pub const CLOSE_STREAM_ENDED: u16 = 4005;

/// The relay URL for `channel` (`@uniqueId`, or a room id sent as `roomId`).
pub fn relay_url(base: &str, channel: &str, api_key: Option<&str>) -> Result<String, IngestError> {
    let mut url = url::Url::parse(base)
        .map_err(|e| IngestError::Fatal(format!("ingest.euler_ws_url is not a URL: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        match channel.strip_prefix('@') {
            Some(unique) => q.append_pair("uniqueId", unique),
            None => q.append_pair("roomId", channel),
        };
        if let Some(key) = api_key {
            q.append_pair("apiKey", key);
        }
        q.append_pair("features.bundleEvents", "true");
        q.append_pair("features.rawMessages", "false");
    }
    Ok(url.into())
}

/// Connects to the relay for `channel` and runs until the connection ends.
pub async fn run_connection(
    ctx: &DirectContext,
    channel: &str,
    session: &Session,
    counters: &ChannelCounters,
    shutdown: &CancellationToken,
) -> Result<Outcome, Failure> {
    let fail = |error| Failure { error, connected: false, close_code: 1006 };
    let url = relay_url(&ctx.euler_url, channel, ctx.sign.api_key()).map_err(fail)?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| fail(IngestError::Fatal(format!("bad relay URL: {e}"))))?;
    if let Ok(ua) = HeaderValue::from_str(ctx.sign.user_agent()) {
        request.headers_mut().insert("user-agent", ua);
    }
    let connect = tokio::time::timeout(
        ctx.settings.connect_timeout,
        tokio_tungstenite::connect_async_with_config(request, None, true),
    );
    let mut ws = tokio::select! {
        _ = shutdown.cancelled() => return Ok(Outcome::Shutdown),
        r = connect => match r {
            Err(_) => return Err(fail(IngestError::WebSocket("relay handshake timed out".into()))),
            Ok(r) => r.map_err(|e| fail(e.into()))?.0,
        },
    };
    let relay = Relay { ctx, session, counters };
    if let Err(SinkClosed) = relay.emit(session.connected()).await {
        return Ok(Outcome::Shutdown);
    }
    counters.connected.store(true, Ordering::Relaxed);
    counters.connects.fetch_add(1, Ordering::Relaxed);
    ChannelConnected { provider: "euler", channel, session_id: session.session_id() }.emit();
    let result = relay.run(&mut ws, shutdown).await;
    counters.connected.store(false, Ordering::Relaxed);
    ChannelDisconnected.emit();
    result
}

struct Relay<'a> {
    ctx: &'a DirectContext,
    session: &'a Session,
    counters: &'a ChannelCounters,
}

impl Relay<'_> {
    async fn emit(&self, env: RawEnvelope) -> Result<(), SinkClosed> {
        self.ctx.sink.send(env).await?;
        self.counters.envelopes.fetch_add(1, Ordering::Relaxed);
        EnvelopesQueued { provider: "euler", count: 1 }.emit();
        Ok(())
    }

    async fn run(&self, ws: &mut Ws, shutdown: &CancellationToken) -> Result<Outcome, Failure> {
        let keepalive = self.ctx.settings.heartbeat;
        let mut ping = interval_at(Instant::now() + keepalive, keepalive);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let idle = self.ctx.settings.idle_timeout;
        let mut idle_deadline = Instant::now() + idle;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return self.finish(ws, Outcome::Shutdown).await,
                frame = ws.next() => {
                    idle_deadline = Instant::now() + idle;
                    let ended = match frame {
                        Some(Ok(WsMessage::Text(text))) => self.on_text(text.as_str()).await,
                        Some(Ok(WsMessage::Binary(bytes))) => self.on_binary(&bytes).await,
                        Some(Ok(WsMessage::Close(frame))) => {
                            let (code, reason) = frame
                                .map(|f| (u16::from(f.code), f.reason.to_string()))
                                .unwrap_or((1005, String::new()));
                            return self.closed(ws, code, &reason).await;
                        }
                        Some(Ok(_)) => Ok(false),
                        Some(Err(e)) => return Err(Failure { error: e.into(), connected: true, close_code: 1006 }),
                        None => {
                            let error = IngestError::WebSocket("relay closed the connection".into());
                            return Err(Failure { error, connected: true, close_code: 1006 });
                        }
                    };
                    match ended {
                        Ok(false) => {}
                        Ok(true) => return self.finish(ws, Outcome::StreamEnded).await,
                        Err(SinkClosed) => return Ok(Outcome::Shutdown),
                    }
                }
                _ = ping.tick() => {
                    if let Err(e) = ws.send(WsMessage::Ping(Vec::new().into())).await {
                        return Err(Failure { error: e.into(), connected: true, close_code: 1006 });
                    }
                }
                _ = sleep_until(idle_deadline) => {
                    let _ = ws.close(None).await;
                    return Err(Failure { error: IngestError::Idle(idle), connected: true, close_code: 1006 });
                }
            }
        }
    }

    /// A JSON bundle; `Ok(true)` when a control message ended the stream.
    async fn on_text(&self, text: &str) -> Result<bool, SinkClosed> {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return self.undecodable(&format!("relay frame is not JSON: {e}")).await,
        };
        let items = match value {
            Value::Object(mut o) => match o.remove("messages") {
                Some(Value::Array(items)) => items,
                Some(other) => vec![other],
                None => vec![Value::Object(o)],
            },
            Value::Array(items) => items,
            _ => return self.undecodable("relay frame is not an object").await,
        };
        let mut ended = false;
        for item in items {
            let Value::Object(mut item) = item else {
                self.undecodable("relay message is not an object").await?;
                continue;
            };
            let raw_type = item.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
            let data = match item.remove("data") {
                Some(Value::Object(data)) => data,
                _ => {
                    self.undecodable("relay message has no data object").await?;
                    continue;
                }
            };
            ended |= raw_type == "WebcastControlMessage"
                && data.get("action").and_then(Value::as_i64).is_some_and(|a| a == 3 || a == 4);
            self.emit(self.session.json_message(&raw_type, data)).await?;
        }
        Ok(ended)
    }

    /// Raw bytes: a push frame or a bare fetch result, each message kept as `dataB64`.
    async fn on_binary(&self, bytes: &[u8]) -> Result<bool, SinkClosed> {
        let result = match wire::decode_push_frame(bytes) {
            Ok(frame) if frame.payload_type == "msg" => wire::fetch_result_of(&frame),
            _ => wire::fetch_result_of(&ttlc_webcast::WebcastPushFrame {
                payload: bytes.to_vec(),
                ..Default::default()
            }),
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => return self.undecodable(&e.to_string()).await,
        };
        for msg in &result.messages {
            self.emit(self.session.message(msg)).await?;
        }
        Ok(false)
    }

    async fn undecodable(&self, message: &str) -> Result<bool, SinkClosed> {
        FrameUndecodable {
            provider: "euler",
            session_id: self.session.session_id(),
            error: message,
        }
        .emit();
        self.emit(self.session.error(message, "DECODE_ERROR")).await?;
        Ok(false)
    }

    async fn closed(&self, ws: &mut Ws, code: u16, reason: &str) -> Result<Outcome, Failure> {
        if code == CLOSE_STREAM_ENDED {
            return self.finish(ws, Outcome::StreamEnded).await;
        }
        let text = format!("relay closed the socket ({code} {reason})");
        let error = match code {
            4400 | 4401 | 4403 => IngestError::Fatal(text),
            _ => IngestError::WebSocket(text),
        };
        Err(Failure { error, connected: true, close_code: code })
    }

    async fn finish(&self, ws: &mut Ws, outcome: Outcome) -> Result<Outcome, Failure> {
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
        let reason = match outcome {
            Outcome::Shutdown => "ingest is shutting down",
            Outcome::StreamEnded => "the LIVE has ended",
        };
        let _ = self.emit(self.session.disconnected(1000, reason, false)).await;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_carry_the_channel_and_key() {
        let u = relay_url("wss://relay.example/", "@alice", Some("k1")).unwrap();
        assert!(
            u.contains("uniqueId=alice")
                && u.contains("apiKey=k1")
                && u.contains("bundleEvents=true")
        );
        let u = relay_url("ws://127.0.0.1:1/euler/ws", "7311", None).unwrap();
        assert!(u.contains("roomId=7311") && !u.contains("apiKey"));
        assert!(relay_url("not a url", "@a", None).is_err());
    }
}
