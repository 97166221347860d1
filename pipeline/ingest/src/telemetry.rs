//! What ingest reports: envelopes published, connects, failures by code, reconnect delays, sign
//! requests, undecodable frames and connected channels. Each event is a small struct whose `emit`
//! logs and counts together. Labels are provider names and error codes only, never room or user
//! ids; per-channel numbers are in [`crate::Supervisor::list`].

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabel {
    provider: &'static str,
    code: &'static str,
}

struct IngestMetrics {
    envelopes: Family<ProviderLabel, Counter>,
    connects: Family<ProviderLabel, Counter>,
    failures: Family<FailureLabel, Counter>,
    decode_errors: Family<ProviderLabel, Counter>,
    sign_requests: Counter,
    channels_connected: Gauge,
}

static METRICS: LazyLock<IngestMetrics> = LazyLock::new(|| {
    let m = IngestMetrics {
        envelopes: Family::default(),
        connects: Family::default(),
        failures: Family::default(),
        decode_errors: Family::default(),
        sign_requests: Counter::default(),
        channels_connected: Gauge::default(),
    };
    ttlc_core::telemetry::register(|r| {
        r.register(
            "ingest_envelopes",
            "raw.v1 envelopes queued for publishing",
            m.envelopes.clone(),
        );
        r.register(
            "ingest_connects",
            "Push connections that reached CONNECTED",
            m.connects.clone(),
        );
        r.register(
            "ingest_failures",
            "Failed attempts and broken connections, by code",
            m.failures.clone(),
        );
        r.register(
            "ingest_decode_errors",
            "Push frames that could not be decoded",
            m.decode_errors.clone(),
        );
        r.register(
            "ingest_sign_requests",
            "Requests sent to the sign server",
            m.sign_requests.clone(),
        );
        r.register(
            "ingest_channels_connected",
            "Channels with an open push connection",
            m.channels_connected.clone(),
        );
    });
    m
});

/// Envelopes handed to the publisher.
#[derive(Debug)]
pub struct EnvelopesQueued {
    pub provider: &'static str,
    pub count: u64,
}

impl EnvelopesQueued {
    pub fn emit(&self) {
        METRICS
            .envelopes
            .get_or_create(&ProviderLabel { provider: self.provider })
            .inc_by(self.count);
    }
}

/// A push connection is open and joined.
#[derive(Debug)]
pub struct ChannelConnected<'a> {
    pub provider: &'static str,
    pub channel: &'a str,
    pub session_id: &'a str,
}

impl ChannelConnected<'_> {
    pub fn emit(&self) {
        METRICS.connects.get_or_create(&ProviderLabel { provider: self.provider }).inc();
        METRICS.channels_connected.inc();
        tracing::info!(channel = self.channel, session_id = self.session_id, "Channel connected.");
    }
}

/// A push connection that was open has ended (for any reason).
#[derive(Debug)]
pub struct ChannelDisconnected;

impl ChannelDisconnected {
    pub fn emit(&self) {
        METRICS.channels_connected.dec();
    }
}

/// An attempt failed or a connection broke; `retry_in` is `None` when the channel gives up.
#[derive(Debug)]
pub struct ConnectionFailed<'a> {
    pub provider: &'static str,
    pub channel: &'a str,
    pub session_id: &'a str,
    pub code: &'static str,
    pub error: &'a str,
    pub retry_in: Option<Duration>,
}

impl ConnectionFailed<'_> {
    pub fn emit(&self) {
        METRICS
            .failures
            .get_or_create(&FailureLabel { provider: self.provider, code: self.code })
            .inc();
        match self.retry_in {
            Some(delay) => tracing::warn!(
                channel = self.channel,
                session_id = self.session_id,
                code = self.code,
                error = self.error,
                retry_in_ms = delay.as_millis() as u64,
                "A channel connection failed; reconnecting after a backoff."
            ),
            None => tracing::error!(
                channel = self.channel,
                session_id = self.session_id,
                code = self.code,
                error = self.error,
                "A channel connection failed and will not be retried."
            ),
        }
    }
}

/// A push frame could not be decoded; the connection goes on.
#[derive(Debug)]
pub struct FrameUndecodable<'a> {
    pub provider: &'static str,
    pub session_id: &'a str,
    pub error: &'a str,
}

impl FrameUndecodable<'_> {
    pub fn emit(&self) {
        METRICS.decode_errors.get_or_create(&ProviderLabel { provider: self.provider }).inc();
        tracing::warn!(
            session_id = self.session_id,
            error = self.error,
            "A push frame could not be decoded; it was skipped."
        );
    }
}

/// A request left for the sign server.
#[derive(Debug)]
pub struct SignRequested;

impl SignRequested {
    pub fn emit(&self) {
        METRICS.sign_requests.inc();
    }
}
