//! `ttlc bench decode`: runs a capture of push frames through the real ingest decode path
//! (push frame → gunzip → fetch result → one raw.v1 envelope per message, serialized as it would
//! be published) and reports messages per second.

use std::path::Path;
use std::time::{Duration, Instant};

use ttlc_schemas::Provider;

use crate::envelope::Session;
use crate::record::{CaptureError, read_capture};
use crate::wire;

/// Result of decoding one capture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeStats {
    /// WebSocket messages read from the capture.
    pub frames: u64,
    /// Frames that failed to decode (they would become ERROR envelopes).
    pub bad_frames: u64,
    /// Webcast messages turned into envelopes.
    pub messages: u64,
    /// Bytes of envelope JSON produced.
    pub json_bytes: u64,
    pub elapsed: Duration,
    pub messages_per_sec: f64,
}

/// Decodes every frame of the capture at `path`, timing only the decode path (not file I/O).
pub fn bench_decode(path: &Path) -> Result<DecodeStats, CaptureError> {
    let frames = read_capture(path)?;
    Ok(decode_frames(&frames))
}

/// The decode path over frames already in memory (the criterion bench calls this).
pub fn decode_frames(frames: &[Vec<u8>]) -> DecodeStats {
    let session = Session::new("7000000000000000001", Provider::Direct);
    let start = Instant::now();
    let mut stats = DecodeStats {
        frames: frames.len() as u64,
        bad_frames: 0,
        messages: 0,
        json_bytes: 0,
        elapsed: Duration::ZERO,
        messages_per_sec: 0.0,
    };
    for bytes in frames {
        let Ok(frame) = wire::decode_push_frame(bytes) else {
            stats.bad_frames += 1;
            continue;
        };
        if frame.payload_type != "msg" {
            continue;
        }
        let Ok(result) = wire::fetch_result_of(&frame) else {
            stats.bad_frames += 1;
            continue;
        };
        for msg in &result.messages {
            let env = session.message(msg);
            stats.json_bytes += serde_json::to_vec(&env).map_or(0, |v| v.len() as u64);
            stats.messages += 1;
        }
    }
    stats.elapsed = start.elapsed();
    stats.messages_per_sec = stats.messages as f64 / stats.elapsed.as_secs_f64().max(1e-9);
    stats
}
