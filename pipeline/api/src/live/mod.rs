//! Live feeds: the shared tap consumers ([`hub`]) and each client's filtered, resumable view of
//! them ([`feed`]). SSE and WebSocket routes only format what a feed yields.

pub(crate) mod feed;
pub(crate) mod hub;
