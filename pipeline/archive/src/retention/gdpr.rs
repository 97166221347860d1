//! `ttlc gdpr-erase`: removes one person's data, audited in `gdpr_erasures` (SPEC §8).
//!
//! Resolution: `--user-id` is the person. `--unique-id` is a TikTok handle, which a user can
//! change and another user can take later, so it resolves to every user id seen with it (the
//! `users` table and ClickHouse's events, which keep events as long as PostgreSQL does); more
//! than one is refused unless the caller passes `all_matches`, because erasing the wrong person is
//! irreversible. With `TTLC_PSEUDONYM_SECRET` set, the pseudonymized rows of those users (see
//! `prune`) are found through their pseudonyms and erased too.
//!
//! PostgreSQL, one transaction as the maintenance role: the actions rendered from the subject's
//! events keep their row (its action id is the executor's idempotency key; deleting it could
//! re-run an action) but lose their rendered text and error; the subject's events (live and
//! archived), notes and user rows are deleted; a handle request also clears that handle from
//! `streams` and deletes its `ingest_channels` row (which stops ingesting them); one
//! `gdpr_erasures` row records who asked, whom, and the count per table. Then
//! ClickHouse deletes the subject's analytics rows with a mutation (after the commit: ClickHouse
//! cannot join the transaction) and the audit row gets `clickhouse_done`.
//!
//! Re-running is safe: a subject with nothing left and an earlier audit row reports "already
//! erased" (no new row); a subject with rows left only in ClickHouse (a mutation that was still
//! running, a failure after the commit) gets them deleted and a new audit row with those counts.
//! An id with no data and no earlier erasure is an error and writes no audit row: the audit lists
//! erasures, not typos, and storing an identifier we hold nothing about would itself be data.
//!
//! Not covered, by design: the subject appearing inside other users' events (a battle's
//! `payload.participants`, a chat message naming them) stays, since those events belong to the
//! other users; Kafka topics keep records until their retention (`raw` 3 days, `unified` and
//! `actions` 7, `dlq` 30) and are not rewritten.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use tokio_postgres::Transaction;
use tracing::info;
use ttlc_core::config::Config;

use super::clickhouse_ops::{self, ChDelete};
use super::{RetentionError, connect_maint, pseudonymizer};
use crate::clickhouse::ClickhouseTarget;

/// Whom to erase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A TikTok numeric user id.
    UserId(String),
    /// A TikTok @uniqueId, without the `@`.
    UniqueId(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::UserId(id) => write!(f, "user id {id:?}"),
            Subject::UniqueId(name) => write!(f, "unique id {name:?}"),
        }
    }
}

/// What an erasure did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureReport {
    pub subject: Subject,
    pub dry_run: bool,
    /// The TikTok user ids erased.
    pub user_ids: Vec<String>,
    /// PostgreSQL rows per table: `events`, `events_archive`, `user_notes`, `users` deleted;
    /// `actions_log_redacted`, `streams_redacted` updated; `ingest_channels` deleted.
    pub postgres: BTreeMap<&'static str, u64>,
    /// The subject's events in ClickHouse and whether the delete mutation finished.
    pub clickhouse: ChDelete,
    /// The `gdpr_erasures` row this run wrote.
    pub audit_id: Option<i64>,
    /// Nothing was left: the earlier `gdpr_erasures` row that erased this subject.
    pub already_erased: Option<i64>,
    /// Whether pseudonymized rows were looked for (needs `TTLC_PSEUDONYM_SECRET`).
    pub pseudonyms_checked: bool,
}

impl fmt::Display for ErasureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(id) = self.already_erased {
            return writeln!(
                f,
                "{} was already erased (gdpr_erasures #{id}); nothing left.",
                self.subject
            );
        }
        let verb = if self.dry_run { "would erase" } else { "erased" };
        writeln!(f, "{} {verb} (user ids: {})", self.subject, self.user_ids.join(", "))?;
        for (table, rows) in &self.postgres {
            writeln!(f, "postgres   {table:<22} {rows:>8}")?;
        }
        let pending =
            if self.clickhouse.done { "" } else { " (mutation still running; re-run to confirm)" };
        writeln!(f, "clickhouse {:<22} {:>8}{pending}", "events", self.clickhouse.rows)?;
        if let Some(id) = self.audit_id {
            writeln!(f, "audit: gdpr_erasures #{id}")?;
        }
        if !self.pseudonyms_checked {
            writeln!(
                f,
                "note: TTLC_PSEUDONYM_SECRET is not set, so pseudonymized rows were not looked for"
            )?;
        }
        Ok(())
    }
}

/// Erases `subject` (see the module docs). `requested_by` goes into the audit row.
pub async fn erase(
    config: &Config,
    subject: &Subject,
    requested_by: &str,
    all_matches: bool,
    dry_run: bool,
) -> Result<ErasureReport, RetentionError> {
    match subject {
        Subject::UserId(id) if id == "0" => {
            return Err(RetentionError::SystemUser(subject.to_string()));
        }
        Subject::UniqueId(name) if name == "system" => {
            return Err(RetentionError::SystemUser(subject.to_string()));
        }
        Subject::UserId(v) | Subject::UniqueId(v) if v.trim().is_empty() => {
            return Err(RetentionError::UnknownSubject(subject.to_string()));
        }
        _ => {}
    }
    let key = pseudonymizer(config)?;
    let ch = ClickhouseTarget::parse(&config.clickhouse.url)?.client();
    let mut client = connect_maint(config).await?;

    // Resolve before anything changes, so an unreachable ClickHouse or an ambiguous handle stops
    // the command while nothing has been touched.
    let mut user_ids = match subject {
        Subject::UserId(id) => vec![id.clone()],
        Subject::UniqueId(name) => {
            let mut ids: Vec<String> = client
                .query(
                    "SELECT user_id FROM users WHERE unique_id = $1 AND pseudonymized_at IS NULL",
                    &[name],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            ids.extend(clickhouse_ops::user_ids_with_unique_id(&ch, name).await?);
            ids
        }
    };
    user_ids.sort();
    user_ids.dedup();
    if let (Subject::UniqueId(name), true) = (subject, user_ids.len() > 1 && !all_matches) {
        return Err(RetentionError::Ambiguous { unique_id: name.clone(), user_ids });
    }
    let mut pg_ids = user_ids.clone();
    if let Some(key) = &key {
        pg_ids.extend(user_ids.iter().map(|id| key.user_id(id)));
        if let Subject::UniqueId(name) = subject {
            let rows = client
                .query("SELECT user_id FROM users WHERE unique_id = $1", &[&key.unique_id(name)])
                .await?;
            pg_ids.extend(rows.iter().map(|r| r.get::<_, String>(0)));
        }
    }
    let ch_rows = clickhouse_ops::count_users(&ch, &user_ids).await?;

    let tx = client.transaction().await?;
    let postgres = delete_in_postgres(&tx, subject, &pg_ids).await?;
    let mut report = ErasureReport {
        subject: subject.clone(),
        dry_run,
        user_ids: user_ids.clone(),
        postgres,
        clickhouse: ChDelete { rows: ch_rows, done: dry_run || ch_rows == 0 },
        audit_id: None,
        already_erased: None,
        pseudonyms_checked: key.is_some(),
    };
    let pg_rows: u64 = report.postgres.values().sum();
    if dry_run || pg_rows + ch_rows == 0 {
        tx.rollback().await?;
        if dry_run {
            return Ok(report);
        }
        report.already_erased = earlier_erasure(&client, subject).await?;
        return match report.already_erased {
            Some(_) => Ok(report),
            None => Err(RetentionError::UnknownSubject(subject.to_string())),
        };
    }
    let mut counts: serde_json::Map<String, serde_json::Value> =
        report.postgres.iter().map(|(table, rows)| ((*table).to_owned(), (*rows).into())).collect();
    counts.insert("clickhouse_events".into(), ch_rows.into());
    let (subject_user_id, subject_unique_id) = match subject {
        Subject::UserId(id) => (Some(id.as_str()), None),
        Subject::UniqueId(name) => (
            user_ids.first().filter(|_| user_ids.len() == 1).map(String::as_str),
            Some(name.as_str()),
        ),
    };
    let audit_id: i64 = tx
        .query_one(
            "INSERT INTO gdpr_erasures (requested_by, subject_user_id, subject_unique_id, counts) \
             VALUES ($1, $2, $3, $4) RETURNING id",
            &[
                &requested_by,
                &subject_user_id,
                &subject_unique_id,
                &serde_json::Value::Object(counts),
            ],
        )
        .await?
        .get(0);
    tx.commit().await?;
    report.audit_id = Some(audit_id);

    let wait = Duration::from_millis(config.retention.clickhouse_wait_ms);
    report.clickhouse = clickhouse_ops::delete_users(&ch, &user_ids, wait).await?;
    client
        .execute(
            "UPDATE gdpr_erasures SET counts = counts || jsonb_build_object('clickhouse_done', $2::boolean) \
             WHERE id = $1",
            &[&audit_id, &report.clickhouse.done],
        )
        .await?;
    info!(
        audit_id,
        users = user_ids.len(),
        postgres_rows = pg_rows,
        clickhouse_events = report.clickhouse.rows,
        clickhouse_done = report.clickhouse.done,
        "Erased a data subject."
    );
    Ok(report)
}

/// The deletes and redactions, inside the caller's transaction; rows per table.
async fn delete_in_postgres(
    tx: &Transaction<'_>,
    subject: &Subject,
    ids: &[String],
) -> Result<BTreeMap<&'static str, u64>, RetentionError> {
    let mut counts = BTreeMap::new();
    // Before the events go: the actions are found through their event ids.
    let redacted = tx
        .execute(
            "UPDATE actions_log SET rendered_template = '[erased]', error = NULL \
             WHERE event_id IN (SELECT event_id FROM events WHERE user_id = ANY($1) \
                                UNION ALL SELECT event_id FROM events_archive WHERE user_id = ANY($1))",
            &[&ids],
        )
        .await?;
    counts.insert("actions_log_redacted", redacted);
    for table in ["events", "events_archive", "user_notes", "users"] {
        let rows =
            tx.execute(&format!("DELETE FROM {table} WHERE user_id = ANY($1)"), &[&ids]).await?;
        counts.insert(table, rows);
    }
    if let Subject::UniqueId(name) = subject {
        let rows =
            tx.execute("UPDATE streams SET unique_id = NULL WHERE unique_id = $1", &[name]).await?;
        counts.insert("streams_redacted", rows);
        // Their ingest channel: the row names them and keeps what was requested for them.
        // Deleting it also stops ingesting them: the process holding it finds its lease gone.
        let rows = tx.execute("DELETE FROM ingest_channels WHERE unique_id = $1", &[name]).await?;
        counts.insert("ingest_channels", rows);
    }
    Ok(counts)
}

/// The newest audit row of an earlier erasure of `subject`.
async fn earlier_erasure(
    client: &tokio_postgres::Client,
    subject: &Subject,
) -> Result<Option<i64>, RetentionError> {
    let sql = match subject {
        Subject::UserId(_) => "SELECT max(id) FROM gdpr_erasures WHERE subject_user_id = $1",
        Subject::UniqueId(_) => "SELECT max(id) FROM gdpr_erasures WHERE subject_unique_id = $1",
    };
    let (Subject::UserId(value) | Subject::UniqueId(value)) = subject;
    Ok(client.query_one(sql, &[value]).await?.get(0))
}
