//! Rate limits (token buckets per client IP and per user) and per-user live connection limits.
//!
//! In-process state on purpose: each API instance limits what it serves. The maps are bounded:
//! when one grows past [`MAX_KEYS`], buckets that are full again (idle clients) are forgotten.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

/// More tracked clients than this triggers a sweep of idle buckets.
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token bucket per key: `rate` tokens per second, at most `burst` stored.
#[derive(Debug)]
pub(crate) struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `rate <= 0` disables the limit.
    pub(crate) fn new(rate: f64, burst: u32) -> Self {
        RateLimiter { rate, burst: f64::from(burst.max(1)), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key`, or returns the whole seconds until one is available.
    pub(crate) fn check<Q>(&self, key: &Q) -> Result<(), u64>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_KEYS {
            let (rate, burst) = (self.rate, self.burst);
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst);
        }
        let bucket = match buckets.get_mut(key) {
            Some(b) => b,
            None => {
                buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst, last: now })
            }
        };
        let refill = now.duration_since(bucket.last).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

/// Counts open live connections per user.
#[derive(Debug)]
pub(crate) struct ConnectionLimiter {
    max: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open connection; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    user: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl ConnectionLimiter {
    pub(crate) fn new(max: usize) -> Self {
        ConnectionLimiter { max, open: Arc::default() }
    }

    /// A slot for `user`, or `None` when the user already holds `max` connections.
    pub(crate) fn acquire(&self, user: &str) -> Option<ConnectionSlot> {
        let mut open = self.open.lock();
        let count = open.entry(user.to_owned()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot { user: user.to_owned(), open: self.open.clone() })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock();
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_asks_to_wait() {
        let limiter: RateLimiter<String> = RateLimiter::new(1.0, 3);
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        assert_eq!(limiter.check("a"), Err(1));
        assert!(limiter.check("b").is_ok(), "buckets are per key");
        let off: RateLimiter<String> = RateLimiter::new(0.0, 1);
        for _ in 0..100 {
            assert!(off.check("a").is_ok());
        }
    }

    #[test]
    fn connection_slots_are_released_on_drop() {
        let limiter = ConnectionLimiter::new(2);
        let a = limiter.acquire("u");
        let b = limiter.acquire("u");
        assert!(a.is_some() && b.is_some());
        assert!(limiter.acquire("u").is_none());
        drop(a);
        assert!(limiter.acquire("u").is_some());
    }
}
