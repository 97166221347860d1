//! Turning a batch of Kafka records into events, shared by both archivers.
//!
//! A record that cannot be decoded is rejected to the DLQ (it can never be stored, retrying does
//! not help). Duplicates inside one batch (a producer retry can put the same event twice on the
//! log) are written once: the first occurrence is stored and every copy is acknowledged.

use std::collections::HashSet;

use ttlc_core::{Disposition, InputRecord, Rejection};
use ttlc_schemas::UnifiedEvent;

/// The decoded part of a batch.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// One slot per input record; `Some` for records already settled (rejected).
    pub(crate) dispositions: Vec<Option<Disposition>>,
    /// Events to store, each with the index of its input record, without duplicate event ids.
    pub(crate) events: Vec<(usize, UnifiedEvent)>,
}

/// Below this many records one thread decodes; above it, the batch is split across cores.
const PARALLEL_FROM: usize = 2_048;

/// Decodes every record of `batch`.
///
/// Avro decoding is the archivers' largest CPU cost (about half of archive-ch's time on a
/// two-core machine), and while it runs the database waits for data anyway, so large batches are
/// decoded on scoped threads, one chunk per core. Blocking the async task this way costs no more
/// than the same work done serially in it would.
pub(crate) fn decode_batch(batch: &[InputRecord]) -> Decoded {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let results: Vec<Result<UnifiedEvent, Disposition>> = if batch.len() < PARALLEL_FROM
        || threads < 2
    {
        batch.iter().map(decode_one).collect()
    } else {
        let chunk = batch.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(decode_one).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| match h.join() {
                    Ok(part) => part,
                    // Decoding does not panic on bad input; if it ever does, fail loudly as the
                    // serial path would.
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    };
    let mut dispositions: Vec<Option<Disposition>> = vec![None; batch.len()];
    let mut events = Vec::with_capacity(batch.len());
    let mut seen = HashSet::with_capacity(batch.len());
    for (index, result) in results.into_iter().enumerate() {
        match result {
            Ok(event) if seen.insert(event.event_id.clone()) => events.push((index, event)),
            Ok(_) => dispositions[index] = Some(Disposition::Emit(Vec::new())),
            Err(rejection) => dispositions[index] = Some(rejection),
        }
    }
    Decoded { dispositions, events }
}

/// Decodes one record, or says why it goes to the DLQ.
fn decode_one(record: &InputRecord) -> Result<UnifiedEvent, Disposition> {
    let Some(payload) = record.payload.as_deref() else {
        return Err(Disposition::Reject(Rejection::new(
            "empty_payload",
            "record has no value (a tombstone is not a UnifiedEvent)",
        )));
    };
    ttlc_schemas::avro::decode_unified(payload).map_err(|e| {
        Disposition::Reject(Rejection::new(
            "undecodable",
            format!("not a UnifiedEvent v1 Avro record: {e}"),
        ))
    })
}

/// The DLQ rejection for an event the database refused for good.
pub(crate) fn rejected_by_store(event: &UnifiedEvent, store: &str, error: String) -> Disposition {
    let mut rejection =
        Rejection::new("store_rejected", format!("{store} refused the event: {error}"));
    rejection.session_id = Some(event.session_id.clone());
    rejection.event_id = Some(event.event_id.clone());
    Disposition::Reject(rejection)
}

/// Fills every unsettled slot with `Emit(vec![])`: the event is stored.
pub(crate) fn finish(dispositions: Vec<Option<Disposition>>) -> Vec<Disposition> {
    dispositions.into_iter().map(|d| d.unwrap_or(Disposition::Emit(Vec::new()))).collect()
}
