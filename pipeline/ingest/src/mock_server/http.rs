//! Just enough HTTP/1.1 for the mock: read one GET request head, write one response, close.
//!
//! Hand-rolled on purpose: the mock must be able to answer a WebSocket upgrade with a plain
//! `200 OK` (the refused-handshake scenario) and to finish the upgrade itself on the same socket,
//! which a full framework makes awkward. Every response closes the connection.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head accepted; a real client sends well under 4 KiB.
const MAX_HEAD: usize = 16 * 1024;

/// A parsed request head.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: HashMap<String, String>,
    /// Header names lower-cased.
    pub(crate) headers: HashMap<String, String>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Reads one request head; `None` when the peer closed, sent garbage or took too long.
pub(crate) async fn read_request(stream: &mut TcpStream, timeout: Duration) -> Option<Request> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                return Some(end);
            }
            if buf.len() > MAX_HEAD {
                return None;
            }
        }
    };
    let end = tokio::time::timeout(timeout, read).await.ok()??;
    parse_head(std::str::from_utf8(&buf[..end]).ok()?)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(text: &str) -> Option<Request> {
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Request { method, path: path.to_owned(), query, headers })
}

/// Writes a complete response and closes the write side.
pub(crate) async fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

/// Writes the `101 Switching Protocols` answer to a WebSocket upgrade.
pub(crate) async fn switch_protocols(stream: &mut TcpStream, key: &str) -> std::io::Result<()> {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-accept: {accept}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_queries_and_headers() {
        let r = parse_head(
            "GET /webcast/fetch?room_id=12&unique_id=%40bob HTTP/1.1\r\nX-Api-Key: k\r\nHost: a",
        )
        .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/webcast/fetch");
        assert_eq!(r.param("room_id"), Some("12"));
        assert_eq!(r.param("unique_id"), Some("@bob"));
        assert_eq!(r.header("x-api-key"), Some("k"));
        assert!(parse_head("").is_none());
    }
}
