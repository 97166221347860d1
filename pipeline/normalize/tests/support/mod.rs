//! Helpers shared by the integration tests: fixture paths and directory listings.

#![allow(dead_code)]

pub(crate) mod protojson;

use std::path::{Path, PathBuf};

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The files in `fixtures/<sub>` with extension `ext`, sorted, as (stem, path).
pub(crate) fn listing(sub: &str, ext: &str) -> Vec<(String, PathBuf)> {
    let dir = fixtures().join(sub);
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .map(|p| (p.file_stem().expect("stem").to_string_lossy().into_owned(), p))
        .collect();
    out.sort();
    out
}

pub(crate) fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub(crate) fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The demo mix, one raw.v1 record per line.
pub(crate) fn demo_lines() -> Vec<Vec<u8>> {
    let text = read(&fixtures().join("demo/mixed.ndjson"));
    text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}
