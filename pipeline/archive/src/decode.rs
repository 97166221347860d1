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

/// Decodes a batch piece by piece, so a sink can start writing the first rows while the rest are
/// still being decoded, and keeps what the whole batch needs: one disposition slot per record and
/// the event ids already seen.
#[derive(Debug)]
pub(crate) struct Decoder {
    dispositions: Vec<Option<Disposition>>,
    seen: HashSet<String>,
}

impl Decoder {
    pub(crate) fn new(batch_len: usize) -> Self {
        Decoder { dispositions: vec![None; batch_len], seen: HashSet::with_capacity(batch_len) }
    }

    /// Decodes `records`, which start at index `first` of the batch: returns the events to store;
    /// rejected records and duplicates are settled in the dispositions.
    pub(crate) fn decode(
        &mut self,
        first: usize,
        records: &[InputRecord],
    ) -> Vec<(usize, UnifiedEvent)> {
        let mut events = Vec::with_capacity(records.len());
        for (index, record) in (first..).zip(records) {
            match decode_one(record) {
                Ok(event) if self.seen.insert(event.event_id.clone()) => {
                    events.push((index, event))
                }
                Ok(_) => self.dispositions[index] = Some(Disposition::Emit(Vec::new())),
                Err(rejection) => self.dispositions[index] = Some(rejection),
            }
        }
        events
    }

    /// The dispositions so far; unsettled slots are the events handed out for storing.
    pub(crate) fn into_dispositions(self) -> Vec<Option<Disposition>> {
        self.dispositions
    }
}

/// Decodes every record of `batch` at once (the direct Avro decoder reads a few million records
/// per second, so one thread keeps up with either database).
pub(crate) fn decode_batch(batch: &[InputRecord]) -> Decoded {
    let mut decoder = Decoder::new(batch.len());
    let events = decoder.decode(0, batch);
    Decoded { dispositions: decoder.into_dispositions(), events }
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
