#!/usr/bin/env bash
# The main job, on a fresh Debian machine with Rust: the local stack, topics and migrations, the
# mock TikTok server with five demo channels (chat, gifts with streaks, likes, joins, follows and
# shares, a battle, then steady traffic), and `ttlc all` ingesting them through the real direct
# provider. Creates an example rule (big gift → overlay + log) and prints the URLs and a
# development token. Ctrl-C stops everything cleanly.
#
# Knobs: TTLC_DEMO_RATE (messages/s per channel after the script, default 5),
# TTLC_HTTP_ADDR (API address, default 127.0.0.1:8080), TTLC_JWT_SECRET (generated if unset).
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

say "Local stack (PostgreSQL, ClickHouse, Tansu)"
bash deploy/local/stack.sh up
eval "$(bash deploy/local/stack.sh env)"

say "Building ttlc"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build --locked -p ttlc
ttlc=target/debug/ttlc

# A development signing key, kept across runs so tokens stay valid; never used in production.
if [[ -z ${TTLC_JWT_SECRET:-} ]]; then
    secret_file=/var/lib/ttlc/dev-jwt-secret
    [[ -s $secret_file ]] || (umask 077 && head -c 32 /dev/urandom | base64 >"$secret_file")
    TTLC_JWT_SECRET="$(cat "$secret_file")"
fi
export TTLC_JWT_SECRET TTLC_CONFIG=deploy/local/demo.toml
export TTLC_HTTP_ADDR="${TTLC_HTTP_ADDR:-127.0.0.1:8080}"
export TTLC_WEBHOOK_SECRET="${TTLC_WEBHOOK_SECRET:-demo-webhook-secret}"
api="http://$TTLC_HTTP_ADDR"

say "Topics and migrations"
"$ttlc" topics apply || [[ $? == 4 ]] # drift is reported, not fatal for a demo
"$ttlc" migrate

pids=()
cleanup() {
    trap - INT TERM EXIT
    say "Stopping (offsets are committed on the way out)"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup INT TERM EXIT

say "Mock TikTok server on 127.0.0.1:8089"
"$ttlc" dev mock-tiktok --listen 127.0.0.1:8089 --scenario all --rate "${TTLC_DEMO_RATE:-5}" \
    >/var/log/ttlc/mock-tiktok.log 2>&1 &
pids+=($!)

say "ttlc all (ingest, normalize, archive-pg, archive-ch, rules, execute, api)"
# Process substitution keeps $! the pid of ttlc itself (a pipe would give tee's).
"$ttlc" all > >(tee /var/log/ttlc/ttlc-all.log) 2>&1 &
pids+=($!)

for _ in $(seq 1 120); do
    curl -fsS "$api/health" >/dev/null 2>&1 && break
    sleep 1
done
curl -fsS "$api/health" >/dev/null || { echo "the API did not come up; see /var/log/ttlc/ttlc-all.log" >&2; exit 1; }

operator=$("$ttlc" token --role OPERATOR --ttl 12h)
say "Example rules: a gift worth >= 100 coins → overlay + log"
# The database outlives the demo: create each example rule once, not once per run.
existing=$(curl -fsS "$api/rules" -H "authorization: Bearer $operator" \
    | python3 -c 'import json,sys; print("\n".join(r["name"] for r in json.load(sys.stdin)))' 2>/dev/null || true)
for kind in overlay log; do
    if grep -qxF "big gift $kind" <<<"$existing"; then
        echo "rule exists: big gift → $kind" >&2
        continue
    fi
    curl -fsS -X POST "$api/rules" -H "authorization: Bearer $operator" -H 'content-type: application/json' \
        -d "{\"name\":\"big gift $kind\",\"eventType\":\"GIFT\",\"condition\":{\">=\":[{\"var\":\"payload.coins\"},100]},\"action\":{\"type\":\"$kind\",\"template\":\"{displayName} sent {giftCount}x {giftName} ({coins} coins)\",\"params\":{}},\"enabled\":true,\"priority\":10}" \
        >/dev/null && echo "rule created: big gift → $kind" >&2 || echo "rule $kind not created (already exists?)" >&2
done

# The first channel's room id, once it connected.
stream=""
for _ in $(seq 1 60); do
    stream=$(curl -fsS "$api/channels" -H "authorization: Bearer $operator" \
        | python3 -c 'import json,sys; c=[x for x in json.load(sys.stdin) if x.get("streamId")]; print(c[0]["streamId"] if c else "")' 2>/dev/null || true)
    [[ -n $stream ]] && break
    sleep 1
done
moderator=$("$ttlc" token --role MODERATOR --stream "${stream:-0}" --ttl 12h)

cat >&2 <<TXT

ttlc is running. Open:
  API docs (interactive)  $api/docs
  Live SSE feed           $api/streams/$stream/events?access_token=$moderator
  Overlay feed (OBS)      $api/streams/$stream/overlay?access_token=$moderator
  Analytics summary       curl -H "authorization: Bearer $moderator" $api/analytics/streams/$stream/summary
  Top gifters             curl -H "authorization: Bearer $moderator" $api/analytics/streams/$stream/top-gifters
  Health / metrics        $api/health   $api/metrics
Tokens (12 h):
  operator   $operator
  moderator  $moderator   (stream $stream)
Logs: /var/log/ttlc/ttlc-all.log, /var/log/ttlc/mock-tiktok.log. Ctrl-C to stop.
TXT
wait "${pids[1]}"
