#!/usr/bin/env bash
# The whole ttlc test suite on a fresh Debian machine with Rust (what `.ci/run` calls):
# brings up the local stack (PostgreSQL, ClickHouse, Tansu) on 127.0.0.1, then runs the format
# check, clippy with warnings denied, the dependency advisory check, and every test — unit,
# golden-fixture and integration tests against the real broker and databases.
#
# Idempotent and safe to re-run; a warm machine skips installs and reuses target/.
set -euo pipefail
cd "$(dirname "$0")/../.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "Local stack"
bash deploy/local/stack.sh up
eval "$(bash deploy/local/stack.sh env)"

# Two cores: keep rustc from oversubscribing while the broker and databases also need CPU.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Dependency advisories"
bash deploy/local/audit.sh

step "Tests"
cargo test --workspace --locked --no-fail-fast
