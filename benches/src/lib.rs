//! ttlc's load commands, run as `ttlc bench …` against the real local stack.
//!
//! Numbers are only meaningful next to a baseline measured in the same run on the same machine,
//! so every command here measures its own baseline first (raw broker rates, a pass-through stage)
//! and reports ratios. Nothing here is a test: timings never gate CI.

pub mod stage;
