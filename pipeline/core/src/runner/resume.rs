//! Guard against a broker that skips records when a consumer resumes mid-batch.
//!
//! Tansu 0.6 answers a fetch that starts inside a record batch with the *next* batch, so a
//! consumer resuming from a committed offset in the middle of a producer's batch never sees the
//! rest of that batch (Kafka and Redpanda return the containing batch and the client skips ahead).
//! Without this guard a restart on the local broker could lose records, breaking at-least-once.
//!
//! After each assignment the runner learns the committed offset `C` of every partition and starts
//! reading `kafka.resume_rewind_records` (default 10,000) before it. librdkafka never puts more than
//! 10,000 records in one batch (`batch.num.messages`), so that start lies in an earlier batch and
//! the broker's answer begins at or before `C`; the guard drops the records below `C` (processed
//! before the commit). Should the first record still be past `C`, it rewinds further (×8 each
//! time). With the rewind set to 0 (brokers that resume correctly, e.g. Redpanda) the guard only
//! checks that the first record is `C`, and rewinds if not.

use std::collections::HashMap;

use parking_lot::Mutex;

/// What to do with a received record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    /// Already processed before the commit: skip it.
    Drop,
    /// Records were skipped by the broker: drop this one and re-read from this offset.
    SeekTo(i64),
}

#[derive(Debug, Clone, Copy)]
enum Check {
    /// Expect the first record at the committed offset.
    Expect { committed: i64 },
    /// Rewound by `back`; waiting to read from at or before `committed`.
    Rewound { committed: i64, back: i64 },
}

/// Per-partition resume checks, filled at assignment and consumed by the first records.
#[derive(Debug, Default)]
pub(crate) struct ResumeGuard {
    checks: Mutex<HashMap<(String, i32), Check>>,
}

/// First rewind distance; grows ×8 per retry. Producer batches are rarely larger than this.
const FIRST_REWIND: i64 = 1_000;

impl ResumeGuard {
    /// Records the committed offsets of newly assigned partitions (negative = none committed) and
    /// returns where to start reading those that should begin `rewind` records earlier.
    pub(crate) fn assigned(
        &self,
        partitions: impl IntoIterator<Item = (String, i32, i64)>,
        rewind: i64,
    ) -> Vec<(String, i32, i64)> {
        let mut checks = self.checks.lock();
        let mut seeks = Vec::new();
        for (topic, partition, committed) in partitions {
            if committed > 0 && rewind > 0 {
                checks
                    .insert((topic.clone(), partition), Check::Rewound { committed, back: rewind });
                seeks.push((topic, partition, (committed - rewind).max(0)));
            } else if committed >= 0 {
                checks.insert((topic, partition), Check::Expect { committed });
            } else {
                checks.remove(&(topic, partition));
            }
        }
        seeks
    }

    /// Forgets revoked partitions.
    pub(crate) fn revoked(&self, partitions: impl IntoIterator<Item = (String, i32)>) {
        let mut checks = self.checks.lock();
        for key in partitions {
            checks.remove(&key);
        }
    }

    /// Judges one received record.
    pub(crate) fn check(&self, topic: &str, partition: i32, offset: i64) -> Verdict {
        let mut checks = self.checks.lock();
        if checks.is_empty() {
            return Verdict::Keep;
        }
        let key = (topic.to_owned(), partition);
        let Some(check) = checks.get(&key).copied() else { return Verdict::Keep };
        let (committed, back) = match check {
            Check::Expect { committed } => (committed, 0),
            Check::Rewound { committed, back } => (committed, back),
        };
        if offset < committed {
            // Re-reading after a rewind: processed before the commit.
            return Verdict::Drop;
        }
        if offset == committed {
            checks.remove(&key);
            return Verdict::Keep;
        }
        // offset > committed: the broker skipped [committed, offset).
        if back > 0 && committed - back <= 0 {
            // Rewound to the start and still skipped: nothing more to try.
            checks.remove(&key);
            tracing::error!(
                topic,
                partition,
                committed,
                offset,
                "Broker skipped records even from the log start; continuing."
            );
            return Verdict::Keep;
        }
        let back = if back == 0 { FIRST_REWIND } else { back * 8 };
        let target = (committed - back).max(0);
        tracing::warn!(
            topic,
            partition,
            committed,
            received = offset,
            rewind_to = target,
            "The broker resumed past the committed offset (mid-batch fetch); rewinding."
        );
        checks.insert(key, Check::Rewound { committed, back });
        Verdict::SeekTo(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_resume_is_untouched() {
        let g = ResumeGuard::default();
        assert!(g.assigned([("t".into(), 0, 100)], 0).is_empty());
        assert_eq!(g.check("t", 0, 100), Verdict::Keep);
        assert_eq!(g.check("t", 0, 101), Verdict::Keep);
        assert_eq!(g.check("t", 1, 5), Verdict::Keep, "other partitions are not checked");
    }

    #[test]
    fn skipped_records_are_re_read_and_duplicates_dropped() {
        let g = ResumeGuard::default();
        g.assigned([("t".into(), 0, 3_500)], 0);
        assert_eq!(g.check("t", 0, 5_000), Verdict::SeekTo(2_500));
        // The broker again skips ahead from 2,500 (mid-batch): rewind further.
        assert_eq!(g.check("t", 0, 5_000), Verdict::SeekTo(0));
        assert_eq!(g.check("t", 0, 0), Verdict::Drop);
        assert_eq!(g.check("t", 0, 3_499), Verdict::Drop);
        assert_eq!(g.check("t", 0, 3_500), Verdict::Keep);
        assert_eq!(g.check("t", 0, 3_501), Verdict::Keep);
    }

    #[test]
    fn assignment_rewinds_and_drops_what_was_processed() {
        let g = ResumeGuard::default();
        let seeks = g.assigned([("t".into(), 0, 12_000), ("t".into(), 1, 40)], 10_000);
        assert_eq!(seeks, vec![("t".to_owned(), 0, 2_000), ("t".to_owned(), 1, 0)]);
        assert_eq!(g.check("t", 0, 2_000), Verdict::Drop);
        assert_eq!(g.check("t", 0, 12_000), Verdict::Keep);
        assert_eq!(g.check("t", 1, 39), Verdict::Drop);
        assert_eq!(g.check("t", 1, 40), Verdict::Keep);
    }

    #[test]
    fn no_committed_offset_means_no_check() {
        let g = ResumeGuard::default();
        assert!(g.assigned([("t".into(), 0, -1001)], 10_000).is_empty());
        assert_eq!(g.check("t", 0, 42), Verdict::Keep);
    }

    #[test]
    fn revoked_partitions_are_forgotten() {
        let g = ResumeGuard::default();
        g.assigned([("t".into(), 0, 10)], 0);
        g.revoked([("t".into(), 0)]);
        assert_eq!(g.check("t", 0, 99), Verdict::Keep);
    }
}
