//! Helpers shared by the integration tests: finding example files and loading JSON.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The crate directory (`schemas/`).
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace root, where `fixtures/` lives.
pub fn workspace_dir() -> &'static Path {
    crate_dir().parent().unwrap_or(crate_dir())
}

/// `schemas/tests/examples/<sub>`.
pub fn examples(sub: &str) -> PathBuf {
    crate_dir().join("tests/examples").join(sub)
}

/// The seed contract, kept outside the workspace in `shared/reference/`.
pub fn seed_schema_path() -> PathBuf {
    crate_dir().join("../../shared/reference/unified-event.v1.seed.schema.json")
}

/// Every `*.json` under `dir`, recursively, sorted; empty when `dir` does not exist.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Like [`json_files`] but fails when there is nothing to test: a table test over an empty
/// directory would pass vacuously.
pub fn json_files_nonempty(dir: &Path) -> Vec<PathBuf> {
    let files = json_files(dir);
    assert!(!files.is_empty(), "no *.json example files in {}", dir.display());
    files
}

pub fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A short name for failure messages.
pub fn name(path: &Path) -> String {
    path.strip_prefix(workspace_dir()).unwrap_or(path).display().to_string()
}

/// Panics with every collected failure, so one run reports all bad files, not just the first.
pub fn assert_no_failures(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{what}: {} failure(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
