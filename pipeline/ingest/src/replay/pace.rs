//! Replay pacing: the original gaps between event times divided by the speed factor, under the
//! rate cap.
//!
//! The cap is a token bucket holding 10 ms worth of events (at least one): tokio's timers cannot
//! sleep for the 200 µs between events a 5,000/s cap asks for, so a small burst is what lets the
//! cap be reached at all, while any window of `w` seconds still carries at most `burst + w × cap`
//! events. Due times are measured from the replay's start, so timer lateness never accumulates.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::ReplayOptions;

/// Stands in for an offset too large for `Instant` (a tiny speed factor over a long session).
const FAR_FUTURE: Duration = Duration::from_secs(365 * 86_400);

/// When the next envelope may go: the original offset from the first event divided by the
/// speed, but never sooner than the rate cap's token bucket allows.
#[derive(Debug)]
pub(super) struct Pacer {
    speed: f64,
    first_event_at: DateTime<Utc>,
    start: Instant,
    /// Seconds per token and the bucket's size.
    interval: f64,
    burst: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl Pacer {
    pub(super) fn new(
        options: &ReplayOptions,
        first_event_at: DateTime<Utc>,
        start: Instant,
    ) -> Self {
        let cap = f64::from(options.rate_cap.max(1));
        // 10 ms worth of events may go back to back; at least one.
        let burst = (cap / 100.0).max(1.0);
        Pacer {
            speed: options.speed,
            first_event_at,
            start,
            interval: 1.0 / cap,
            burst,
            tokens: burst,
            refilled_at: start,
        }
    }

    /// The instant the event stamped `at` may be sent.
    pub(super) fn due(&mut self, at: DateTime<Utc>) -> Instant {
        self.due_at(at, Instant::now())
    }

    fn due_at(&mut self, at: DateTime<Utc>, now: Instant) -> Instant {
        let mut due = now;
        if self.speed > 0.0 {
            // Events out of time order (seqNo order wins) simply go at once.
            let offset = (at - self.first_event_at).to_std().unwrap_or_default();
            let scaled = Duration::try_from_secs_f64(offset.as_secs_f64() / self.speed)
                .unwrap_or(FAR_FUTURE);
            // Measured from the start, so timer lateness never accumulates into drift.
            due = due.max(self.start.checked_add(scaled).unwrap_or(now + FAR_FUTURE));
        }
        // Refill the bucket up to `due`, then take one token (waiting for it if none is left).
        let elapsed = due.saturating_duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed / self.interval).min(self.burst);
        self.refilled_at = self.refilled_at.max(due);
        if self.tokens < 1.0 {
            let wait = (1.0 - self.tokens) * self.interval;
            due += Duration::from_secs_f64(wait);
            self.tokens = 1.0;
            self.refilled_at = due;
        }
        due
    }

    /// One envelope went out: spend its token.
    pub(super) fn sent(&mut self) {
        self.tokens -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(speed: f64, cap: u32) -> (Pacer, DateTime<Utc>) {
        let t0 = DateTime::from_timestamp_millis(1_795_201_200_000).unwrap();
        let opts = ReplayOptions { speed, rate_cap: cap, new_session_id: String::new() };
        (Pacer::new(&opts, t0, Instant::now()), t0)
    }

    #[test]
    fn unpaced_replays_are_held_to_the_rate_cap() {
        let (mut p, t0) = pacer(0.0, 1_000);
        let start = p.start;
        let mut now = start;
        for _ in 0..2_000 {
            // Sent exactly when allowed, as a punctual timer would.
            now = p.due_at(t0, now);
            p.sent();
        }
        // 2,000 events at 1,000/s with a 10-event burst: 1.99 s, never less.
        let took = now - start;
        assert!(took >= Duration::from_millis(1_989), "{took:?}");
        assert!(took <= Duration::from_millis(1_991), "{took:?}");
        // After a pause the bucket holds at most its burst, not the whole pause's worth.
        let later = now + Duration::from_secs(5);
        let mut sent_at_once = 0;
        while p.due_at(t0, later) == later {
            p.sent();
            sent_at_once += 1;
        }
        assert_eq!(sent_at_once, 10);
    }

    #[test]
    fn speed_scales_the_original_gaps() {
        let (mut p, t0) = pacer(2.0, 5_000);
        let start = p.start;
        let due = p.due_at(t0 + chrono::Duration::seconds(10), start);
        assert_eq!(due - start, Duration::from_secs(5));
        // An event stamped before the first one goes at once.
        let (mut p, t0) = pacer(1.0, 5_000);
        let now = p.start + Duration::from_millis(7);
        assert_eq!(p.due_at(t0 - chrono::Duration::seconds(3), now), now);
        // A speed too small for Instant does not overflow.
        let (mut p, t0) = pacer(1e-300, 5_000);
        assert!(p.due_at(t0 + chrono::Duration::seconds(1), p.start) > p.start);
    }
}
