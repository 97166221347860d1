//! Captures of binary WebSocket messages: each a big-endian u32 length, then the bytes.
//!
//! The mock server (and anything else holding a [`Recorder`]) writes them; `ttlc bench decode` and
//! the criterion bench read them back through the real decode path. Writing goes through a bounded
//! channel to one writer task, so a slow disk slows the recorder's callers instead of growing
//! memory.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Appends binary messages to a capture file from any number of tasks.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Vec<u8>>,
}

/// The writer task of a [`Recorder`]; await [`RecorderTask::finish`] after dropping every
/// `Recorder` clone to be sure the file is complete.
#[derive(Debug)]
pub struct RecorderTask {
    handle: JoinHandle<std::io::Result<u64>>,
}

impl Recorder {
    /// Creates (truncates) `path` and starts the writer task.
    pub async fn create(path: &Path) -> std::io::Result<(Recorder, RecorderTask)> {
        let file = tokio::fs::File::create(path).await?;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1024);
        let handle = tokio::spawn(async move {
            let mut out = BufWriter::new(file);
            let mut count = 0u64;
            // Ends when every Recorder clone is dropped: nothing is lost at shutdown.
            while let Some(bytes) = rx.recv().await {
                let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                out.write_all(&len.to_be_bytes()).await?;
                out.write_all(&bytes[..len as usize]).await?;
                count += 1;
            }
            out.flush().await?;
            Ok(count)
        });
        Ok((Recorder { tx }, RecorderTask { handle }))
    }

    /// Queues one message; waits when the writer is behind.
    pub async fn record(&self, bytes: &[u8]) {
        // A closed writer (disk error) must not take ingest down: recording is best effort.
        let _ = self.tx.send(bytes.to_vec()).await;
    }
}

impl RecorderTask {
    /// Waits for the writer to drain and returns how many messages were written.
    pub async fn finish(self) -> std::io::Result<u64> {
        self.handle.await.map_err(std::io::Error::other)?
    }
}

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot read capture {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("capture {path} is truncated at byte {offset}")]
    Truncated { path: PathBuf, offset: usize },
}

/// Reads every message of a capture file.
pub fn read_capture(path: &Path) -> Result<Vec<Vec<u8>>, CaptureError> {
    let bytes =
        std::fs::read(path).map_err(|source| CaptureError::Io { path: path.to_owned(), source })?;
    split_capture(&bytes)
        .map_err(|offset| CaptureError::Truncated { path: path.to_owned(), offset })
}

/// Splits capture bytes into messages; `Err(offset)` where a record is cut short.
pub fn split_capture(bytes: &[u8]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(len) = bytes.get(at..at + 4) else { return Err(at) };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(body) = bytes.get(at + 4..at + 4 + len) else { return Err(at) };
        out.push(body.to_vec());
        at += 4 + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let (rec, task) = Recorder::create(&path).await.unwrap();
        rec.record(b"one").await;
        rec.record(b"").await;
        rec.record(&[7u8; 300]).await;
        drop(rec);
        assert_eq!(task.finish().await.unwrap(), 3);
        let msgs = read_capture(&path).unwrap();
        assert_eq!(msgs, vec![b"one".to_vec(), vec![], vec![7u8; 300]]);
        assert_eq!(split_capture(&[0, 0, 0, 5, 1]), Err(0));
    }
}
