//! Renders webcast protobuf bytes as proto3 JSON (the `data` form) with prost-reflect.
//!
//! This is deliberately not our own JSON reader run backwards: the fixture generator and the
//! form-parity test use a standard proto3 JSON serializer, so a field our reader spells wrongly
//! shows up as a difference between the two forms.

use std::path::Path;
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Map, Value};

/// The `webcast` descriptors, compiled from the same `.proto` files the crate is built from.
pub(crate) fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../webcast/proto");
        let files = ["common.proto", "messages.proto"];
        let fds = protox::compile(files, [&dir]).expect("webcast protos compile");
        DescriptorPool::from_file_descriptor_set(fds).expect("descriptor pool")
    })
}

/// The proto3 JSON form of `bytes` decoded as `webcast.<raw_type>`, or `None` when we have no
/// message of that name.
pub(crate) fn to_json(raw_type: &str, bytes: &[u8]) -> Option<Map<String, Value>> {
    let desc = pool().get_message_by_name(&format!("webcast.{raw_type}"))?;
    let msg = DynamicMessage::decode(desc, bytes).expect("fixture bytes decode");
    match serde_json::to_value(&msg).expect("proto3 JSON") {
        Value::Object(map) => Some(map),
        other => panic!("{raw_type} rendered as {other}, not an object"),
    }
}
