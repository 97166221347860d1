//! The `execute` stage: `actions` → effects, audited in `actions_log`.
//!
//! Per batch: decode every ActionRequest; ask `actions_log` which actionIds are already finished
//! (`success` or `skipped`) and skip those and in-batch duplicates; perform the rest (actions of
//! one stream in order, different streams concurrently up to `execute.concurrency`) with retries
//! bounded by attempts and the batch budget, writing each action's log row the moment it was
//! performed (not at the end of the batch: a kill mid-batch must not forget what was done); then
//! return. The runner commits the offsets only after that.
//!
//! Exactly-once per actionId, and its one remaining window: an action is skipped when its
//! success row exists, and the row is written right after the effect. A SIGKILL after the target
//! accepted the request but before the row committed (the time to read the response plus one
//! INSERT, milliseconds) re-performs that action when the batch is re-delivered. No scheme can
//! close that window for an external HTTP call without the receiver's help, which is why every
//! webhook carries `x-ttlc-action-id` for receivers to dedupe on. A database failure while
//! writing a row does not widen it while the process lives: the outcome is kept in memory
//! ("unrecorded") and written again at the end of the batch, or by the retried batch, instead of
//! the action being performed again.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use futures::StreamExt;
use ttlc_core::config::Config;
use ttlc_core::{Disposition, InputRecord, Rejection, Stage, StageError};
use ttlc_schemas::{ActionRequest, decode_action};
use ttlc_topics::Topic;

use crate::error::{ActionError, ExecuteError};
use crate::journal::{Journal, LogRow, LogWriter};
use crate::perform::{Attempted, Performers, RetryPolicy, perform_with_retry};

/// Outcomes kept for a retried batch are bounded; past this many (a batch abandoned for good,
/// e.g. after a rebalance) they are dropped.
const MAX_UNRECORDED: usize = 10_000;

/// What happened to one action, ready to be logged and turned into a disposition.
#[derive(Debug, Clone)]
struct Outcome {
    row: LogRow,
    disposition: Disposition,
}

/// The `execute` stage.
#[derive(Debug)]
pub struct ExecuteStage {
    journal: Journal,
    performers: Performers,
    retry: RetryPolicy,
    concurrency: usize,
    unrecorded: HashMap<String, Outcome>,
}

impl ExecuteStage {
    /// A stage using `config.postgres` for `actions_log` and `config.execute` for retries.
    pub fn new(config: &Config, performers: Performers) -> Result<Self, ExecuteError> {
        Ok(ExecuteStage {
            journal: Journal::new(config)?,
            performers,
            retry: RetryPolicy::from_config(&config.execute),
            concurrency: config.execute.concurrency.max(1),
            unrecorded: HashMap::new(),
        })
    }

    /// The performers (e.g. to subscribe to the overlay broadcast).
    pub fn performers(&self) -> &Performers {
        &self.performers
    }

    async fn run_batch(&mut self, batch: &[InputRecord]) -> Result<Vec<Disposition>, StageError> {
        if self.unrecorded.len() > MAX_UNRECORDED {
            self.unrecorded.clear();
        }
        let mut slots: Vec<Option<Disposition>> = vec![None; batch.len()];
        let mut actions: Vec<(usize, ActionRequest)> = Vec::new();
        for (i, record) in batch.iter().enumerate() {
            match record.payload.as_deref().map(decode_action) {
                Some(Ok(action)) => actions.push((i, action)),
                Some(Err(e)) => {
                    slots[i] =
                        Some(Disposition::Reject(Rejection::new("invalid_action", e.to_string())))
                }
                None => {
                    slots[i] = Some(Disposition::Reject(Rejection::new(
                        "missing_payload",
                        "the record has no value",
                    )))
                }
            }
        }
        let lookup: Vec<String> = actions
            .iter()
            .map(|(_, a)| a.action_id.clone())
            .filter(|id| !self.unrecorded.contains_key(id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let finished = self.journal.finished(&lookup).await?;

        // The first occurrence of each unfinished action is performed (or has its kept outcome
        // recorded); everything else is done already.
        let mut seen = HashSet::new();
        let mut owners: Vec<(usize, &ActionRequest)> = Vec::new();
        let mut todo: Vec<(usize, &ActionRequest)> = Vec::new();
        for (i, a) in &actions {
            if finished.contains(&a.action_id) || !seen.insert(a.action_id.as_str()) {
                tracing::debug!(action_id = %a.action_id, "Action already performed; skipped.");
                slots[*i] = Some(Disposition::Emit(Vec::new()));
                continue;
            }
            owners.push((*i, a));
            if !self.unrecorded.contains_key(&a.action_id) {
                todo.push((*i, a));
            }
        }

        let writer = self.journal.writer().await?;
        for (i, action, outcome, recorded) in self.perform_all(&todo, &writer).await {
            if recorded {
                slots[i] = Some(outcome.disposition);
            } else {
                self.unrecorded.insert(action.action_id.clone(), outcome);
            }
        }
        // Outcomes whose row could not be written right away (or kept from an earlier attempt
        // of this batch), written together now.
        let rows: Vec<LogRow> = owners
            .iter()
            .filter_map(|(_, a)| self.unrecorded.get(&a.action_id).map(|o| o.row.clone()))
            .collect();
        // On failure the outcomes stay in `unrecorded`: the retried batch logs them without
        // performing the actions again.
        self.journal.record(&rows).await?;
        for (i, a) in owners {
            if let Some(o) = self.unrecorded.remove(&a.action_id) {
                slots[i] = Some(o.disposition);
            }
        }
        Ok(slots.into_iter().map(|d| d.unwrap_or(Disposition::Emit(Vec::new()))).collect())
    }

    /// Performs `todo`: one task per stream (in order within it), `concurrency` streams at once.
    /// Each action's row is written as soon as it is performed; `recorded` says whether that
    /// worked.
    async fn perform_all<'a>(
        &self,
        todo: &[(usize, &'a ActionRequest)],
        writer: &LogWriter,
    ) -> Vec<(usize, &'a ActionRequest, Outcome, bool)> {
        let mut groups: Vec<Vec<(usize, &'a ActionRequest)>> = Vec::new();
        let mut by_stream: HashMap<&str, usize> = HashMap::new();
        for (i, a) in todo {
            let g = *by_stream.entry(a.stream_id.as_str()).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[g].push((*i, *a));
        }
        let deadline = Instant::now() + self.retry.batch_budget;
        let performers = &self.performers;
        let retry = self.retry;
        let tasks: Vec<_> = groups
            .into_iter()
            .map(|g| perform_group(performers, writer, g, retry, deadline))
            .collect();
        futures::stream::iter(tasks)
            .buffer_unordered(self.concurrency)
            .flat_map(futures::stream::iter)
            .collect()
            .await
    }
}

/// Performs one stream's actions in order, writing each one's row right after it.
async fn perform_group<'a>(
    performers: &Performers,
    writer: &LogWriter,
    group: Vec<(usize, &'a ActionRequest)>,
    retry: RetryPolicy,
    deadline: Instant,
) -> Vec<(usize, &'a ActionRequest, Outcome, bool)> {
    let mut done = Vec::with_capacity(group.len());
    for (i, a) in group {
        let outcome = outcome(a, perform_with_retry(performers, a, retry, deadline).await);
        let recorded = match writer.insert(std::slice::from_ref(&outcome.row)).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(action_id = %a.action_id, %error, "Writing the actions_log row failed; it is kept and retried.");
                false
            }
        };
        done.push((i, a, outcome, recorded));
    }
    done
}

/// The log row and disposition for a performed action.
fn outcome(a: &ActionRequest, attempted: Attempted) -> Outcome {
    let (status, error, disposition) = match attempted.result {
        Ok(()) => ("success", None, Disposition::Emit(Vec::new())),
        Err(e @ ActionError::Refused { .. }) => {
            tracing::warn!(action_id = %a.action_id, rule_id = %a.rule_id, error = %e, "Action refused; skipped.");
            ("skipped", Some(e.to_string()), Disposition::Emit(Vec::new()))
        }
        Err(e) => {
            let reason = if e.is_transient() { "retries_exhausted" } else { "action_failed" };
            tracing::warn!(action_id = %a.action_id, rule_id = %a.rule_id, attempts = attempted.attempts, reason,
                           error = %e, "Action failed; it goes to the DLQ.");
            let mut rejection = Rejection::new(reason, e.to_string());
            rejection.event_id = Some(a.event_id.clone());
            rejection.session_id = Some(a.session_id.clone());
            ("failed", Some(e.to_string()), Disposition::Reject(rejection))
        }
    };
    crate::telemetry::ActionFinished {
        action_type: a.action_type.as_str(),
        status,
        attempts: attempted.attempts,
        elapsed: attempted.elapsed,
    }
    .emit();
    let attempts = i32::try_from(attempted.attempts).unwrap_or(i32::MAX);
    Outcome {
        row: LogRow {
            action_id: a.action_id.clone(),
            rule_id: a.rule_id.clone(),
            event_id: a.event_id.clone(),
            stream_id: a.stream_id.clone(),
            session_id: a.session_id.clone(),
            action_type: a.action_type.as_str(),
            status,
            attempt: a.attempt.max(1).saturating_add(attempts - 1),
            rendered_template: a.rendered_template.clone(),
            error,
            duration_ms: i64::try_from(attempted.elapsed.as_millis()).unwrap_or(i64::MAX),
        },
        disposition,
    }
}

impl Stage for ExecuteStage {
    fn name(&self) -> &'static str {
        "execute"
    }

    fn inputs(&self) -> Vec<Topic> {
        vec![Topic::Actions]
    }

    async fn handle(&mut self, batch: &[InputRecord]) -> Result<Vec<Disposition>, StageError> {
        self.run_batch(batch).await
    }
}
