//! TikTok's webcast wire format, both directions: push frames, gzip, fetch results, the client
//! frames (enter-room, heartbeat, ack) and the generic Common header every message starts with.
//!
//! The mock server and the direct provider share these helpers, so a change to the format is made
//! once and both sides move together.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use prost::Message as _;
use ttlc_webcast::{
    Common, HeartbeatMessage, ProtoMessageFetchResult, WebcastImEnterRoomMessage, WebcastPushFrame,
};

/// Largest decompressed push payload accepted. A real batch is a few KiB; the cap keeps a
/// malicious or corrupt gzip stream from exhausting memory.
pub const MAX_PAYLOAD_BYTES: u64 = 16 * 1024 * 1024;

/// Push-frame header that marks a gzip-compressed payload.
pub const COMPRESS_HEADER: &str = "compress_type";
/// Push-frame header carrying the `internal_ext` an ack echoes back.
pub const INTERNAL_EXT_HEADER: &str = "im-internal_ext";

/// Why bytes from the server could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("push frame: {0}")]
    Frame(prost::DecodeError),
    #[error("gzip payload: {0}")]
    Gzip(std::io::Error),
    #[error("gzip payload larger than {MAX_PAYLOAD_BYTES} bytes")]
    TooLarge,
    #[error("fetch result: {0}")]
    FetchResult(prost::DecodeError),
}

/// Compresses `bytes` with gzip.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 2 + 32), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// Decompresses a gzip stream, refusing output beyond [`MAX_PAYLOAD_BYTES`].
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    let mut dec = GzDecoder::new(bytes).take(MAX_PAYLOAD_BYTES + 1);
    dec.read_to_end(&mut out).map_err(DecodeError::Gzip)?;
    if out.len() as u64 > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge);
    }
    Ok(out)
}

/// Decodes one binary WebSocket message into a push frame.
pub fn decode_push_frame(bytes: &[u8]) -> Result<WebcastPushFrame, DecodeError> {
    WebcastPushFrame::decode(bytes).map_err(DecodeError::Frame)
}

/// The fetch result inside a "msg" push frame, gunzipped when the frame says so (or when the
/// payload starts with the gzip magic: some servers omit the header).
pub fn fetch_result_of(frame: &WebcastPushFrame) -> Result<ProtoMessageFetchResult, DecodeError> {
    let compressed = frame.headers.get(COMPRESS_HEADER).is_some_and(|v| v == "gzip")
        || frame.payload.starts_with(&[0x1f, 0x8b]);
    if compressed {
        let plain = gunzip(&frame.payload)?;
        ProtoMessageFetchResult::decode(plain.as_slice()).map_err(DecodeError::FetchResult)
    } else {
        ProtoMessageFetchResult::decode(frame.payload.as_slice()).map_err(DecodeError::FetchResult)
    }
}

/// A server "msg" frame: the fetch result, gzip-compressed, as TikTok sends it.
pub fn message_frame(log_id: i64, result: &ProtoMessageFetchResult) -> Vec<u8> {
    let mut headers = std::collections::HashMap::new();
    headers.insert(COMPRESS_HEADER.to_owned(), "gzip".to_owned());
    headers.insert(INTERNAL_EXT_HEADER.to_owned(), result.internal_ext.clone());
    WebcastPushFrame {
        seq_id: log_id,
        log_id,
        service: 5,
        method: 8,
        headers,
        payload_encoding: "pb".into(),
        payload_type: "msg".into(),
        payload: gzip(&result.encode_to_vec()),
    }
    .encode_to_vec()
}

/// The client heartbeat ("hb") frame. TikTok answers each with an "hb" frame of its own.
pub fn heartbeat_frame(room_id: u64) -> Vec<u8> {
    WebcastPushFrame {
        payload_encoding: "pb".into(),
        payload_type: "hb".into(),
        payload: HeartbeatMessage { room_id }.encode_to_vec(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// The frame a client sends right after the socket opens to join the room as a viewer.
pub fn enter_room_frame(room_id: i64) -> Vec<u8> {
    let enter = WebcastImEnterRoomMessage {
        room_id,
        live_id: 12,
        identity: "audience".into(),
        filter_welcome_msg: "0".into(),
        ..Default::default()
    };
    WebcastPushFrame {
        payload_encoding: "pb".into(),
        payload_type: "im_enter_room".into(),
        payload: enter.encode_to_vec(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// The ack for a frame whose fetch result had `need_ack`: the frame's log id and the
/// `internal_ext` it carried.
pub fn ack_frame(log_id: i64, internal_ext: &str) -> Vec<u8> {
    WebcastPushFrame {
        log_id,
        payload_encoding: "pb".into(),
        payload_type: "ack".into(),
        payload: internal_ext.as_bytes().to_vec(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Field 1 of every webcast message, decoded without knowing the message type.
#[derive(Clone, PartialEq, prost::Message)]
struct Head {
    #[prost(message, optional, tag = "1")]
    common: Option<Common>,
}

/// What ingest needs from a message's Common header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageHead {
    pub msg_id: i64,
    pub room_id: i64,
    /// Milliseconds since the epoch; 0 when absent.
    pub create_time_ms: i64,
}

/// Decodes the Common header of any webcast message; `None` when the bytes are not a message.
pub fn message_head(payload: &[u8]) -> Option<MessageHead> {
    let head = Head::decode(payload).ok()?;
    let c = head.common.unwrap_or_default();
    Some(MessageHead { msg_id: c.msg_id, room_id: c.room_id, create_time_ms: c.create_time })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ttlc_webcast::Message;

    #[test]
    fn message_frame_round_trips_through_gzip() {
        let result = ProtoMessageFetchResult {
            messages: vec![Message {
                method: "WebcastChatMessage".into(),
                payload: vec![1, 2],
                ..Default::default()
            }],
            need_ack: true,
            internal_ext: "ext".into(),
            ..Default::default()
        };
        let frame = decode_push_frame(&message_frame(7, &result)).unwrap();
        assert_eq!(frame.payload_type, "msg");
        assert_eq!(frame.payload[..2], [0x1f, 0x8b]);
        assert_eq!(fetch_result_of(&frame).unwrap(), result);
    }

    #[test]
    fn head_is_read_from_any_message() {
        let chat = ttlc_webcast::WebcastChatMessage {
            common: Some(Common {
                msg_id: 42,
                room_id: 9,
                create_time: 1_700_000_000_123,
                ..Default::default()
            }),
            comment: "hi".into(),
            ..Default::default()
        };
        let head = message_head(&chat.encode_to_vec()).unwrap();
        assert_eq!(head, MessageHead { msg_id: 42, room_id: 9, create_time_ms: 1_700_000_000_123 });
        assert!(message_head(&[0xff, 0xff, 0xff]).is_none());
    }

    #[test]
    fn gunzip_rejects_garbage() {
        assert!(gunzip(b"not gzip").is_err());
    }
}
