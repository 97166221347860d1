//! TikTok webcast protobuf types, generated from our own `.proto` files in `proto/`.
//!
//! One package (`webcast`) across files: `frames.proto` holds the transport (push frames, fetch
//! results, enter-room, heartbeat), `messages.proto` the per-method messages (chat, gift, …).
#![allow(missing_debug_implementations, unreachable_pub, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/webcast.rs"));
