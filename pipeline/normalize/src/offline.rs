//! `ttlc normalize --file`: the stage's exact per-record logic over an NDJSON file, without Kafka.
//!
//! Each input line goes through the same [`crate::stage::process`] the stage runs, so a file
//! tells you precisely what the stage would emit or dead-letter. Events are written as
//! UnifiedEvent JSON lines; rejections as DLQ-record JSON lines whose `topic` is `-`, `partition`
//! -1 and `offset` the 1-based line number, so a bad line is easy to find.

use std::io::{self, BufRead, BufWriter, Write};

use chrono::Utc;
use ttlc_schemas::DlqRecord;

use crate::stage::process;

/// What one offline run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OfflineStats {
    /// Lines read, blank ones included.
    pub lines: u64,
    /// Lines that became a UnifiedEvent.
    pub events: u64,
    /// Lines that became a DLQ record.
    pub rejected: u64,
    /// Blank lines, ignored (a trailing newline is not a record).
    pub blank: u64,
}

/// Normalizes NDJSON raw.v1 lines from `input`: events to `out`, DLQ records to `err`.
pub fn run_offline(
    mut input: impl BufRead,
    out: impl Write,
    err: impl Write,
) -> io::Result<OfflineStats> {
    let mut out = BufWriter::new(out);
    let mut err = BufWriter::new(err);
    let mut stats = OfflineStats::default();
    // Lines are read as bytes: a line that is not UTF-8 is bad input for the DLQ, not an I/O error.
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        stats.lines += 1;
        let record = trim_line_end(&line);
        if record.iter().all(u8::is_ascii_whitespace) {
            stats.blank += 1;
            continue;
        }
        match process(record) {
            Ok(accepted) => {
                serde_json::to_writer(&mut out, &accepted.json).map_err(io::Error::other)?;
                out.write_all(b"\n")?;
                stats.events += 1;
            }
            Err(rejection) => {
                let (payload, payload_encoding) = DlqRecord::encode_payload(record);
                let dlq = DlqRecord {
                    stage: "normalize".to_owned(),
                    reason: rejection.reason.to_owned(),
                    error: rejection.error,
                    payload,
                    payload_encoding,
                    key: None,
                    topic: "-".to_owned(),
                    partition: -1,
                    offset: i64::try_from(stats.lines).unwrap_or(i64::MAX),
                    failed_at: Utc::now(),
                    raw_type: rejection.raw_type,
                    session_id: rejection.session_id,
                    event_id: rejection.event_id,
                };
                serde_json::to_writer(&mut err, &dlq).map_err(io::Error::other)?;
                err.write_all(b"\n")?;
                stats.rejected += 1;
            }
        }
    }
    out.flush()?;
    err.flush()?;
    Ok(stats)
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}
