//! TikTok LIVE ingest: connects to channels, turns every webcast message into a raw.v1 envelope
//! (original protobuf bytes kept) and publishes it to the `raw` topic keyed by streamId.
//!
//! - [`direct`]: the TikTok webcast WebSocket (sign server → push socket → push frames).
//! - [`euler`]: the Euler Stream WebSocket relay (JSON bundles or raw frames).
//! - [`supervisor`]: one task per channel, reconnect with backoff, a shared sign budget.
//! - [`control`]: the channels to run come from PostgreSQL's `ingest_channels` table (written by
//!   `/channels`), with leases so several ingest processes share them; status is reported back.
//! - [`publish`], [`service`]: the bounded path from channel tasks to the Kafka producer.
//! - [`mock_provider`]: replays an NDJSON file of raw.v1 frames at a given rate.
//! - [`replay`]: re-publishes a session stored in PostgreSQL as a new `source: replay` session.
//! - [`mock_server`]: a mock TikTok (sign server + push WebSocket) for tests and demos.
//! - [`cli`]: the entry points `ttlc ingest`, `ttlc dev mock-tiktok` and `ttlc bench decode` call.

pub mod bench;
pub mod cli;
pub mod control;
pub mod direct;
pub mod envelope;
pub mod error;
pub mod euler;
pub mod mock_provider;
pub mod mock_server;
pub mod publish;
pub mod record;
pub mod replay;
pub mod service;
pub mod sign;
pub mod streaks;
pub mod supervisor;
pub mod telemetry;
pub mod wire;

pub use bench::DecodeStats;
pub use cli::{IngestArgs, MockTiktokArgs, bench_decode, run_ingest, run_mock_tiktok};
pub use control::Reconciler;
pub use error::IngestError;
pub use service::IngestService;
pub use supervisor::{ChannelInfo, ChannelState, Supervisor, SupervisorError};
