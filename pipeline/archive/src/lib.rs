//! The archive stages: every UnifiedEvent on `unified` stored durably, exactly once per event.
//!
//! Two independent sinks, each its own consumer group so each scales and fails on its own:
//! - [`PgArchiver`] (`archive-pg`) writes PostgreSQL, the system of record: binary COPY into a
//!   session-local staging table, then one `INSERT … SELECT … ON CONFLICT (event_id) DO NOTHING`
//!   that also upserts users, streams and sessions from the rows it actually inserted, all in one
//!   transaction. Re-delivery therefore never adds a row nor counts an event twice.
//! - [`ChArchiver`] (`archive-ch`) writes ClickHouse, the analytics store, with RowBinary inserts
//!   into a ReplacingMergeTree keyed by event id; analytics read with `FINAL`.
//!
//! Both return from `handle` only once the batch is durable, so the runner commits offsets only
//! for stored events (SPEC §2). Schema changes are embedded migrations ([`migrate_postgres`],
//! [`migrate_clickhouse`]), applied by `ttlc migrate` and at stage start.
//!
//! [`retention`] is the maintenance side: retention (`ttlc prune`) and GDPR erasure
//! (`ttlc gdpr-erase`), the only code that changes or deletes stored events.

mod clickhouse;
mod columns;
mod decode;
mod error;
mod migrate;
mod postgres;
pub mod retention;

pub use clickhouse::{ChArchiver, ClickhouseTarget};
pub use error::ArchiveError;
pub use migrate::{MigrationReport, migrate_clickhouse, migrate_postgres};
pub use postgres::PgArchiver;

/// The NOLOGIN role stages run as (`SET ROLE`): it can read and append `events`, never change them.
pub const APP_ROLE: &str = "ttlc_app";
/// The NOLOGIN role retention, pseudonymization and GDPR erasure run as: the only one allowed to
/// UPDATE or DELETE stored events.
pub const MAINT_ROLE: &str = "ttlc_maint";
