#!/usr/bin/env bash
# Event fan-out cost: `smshub bench` against a served hub with 0, 1 and 10 webhook endpoints
# (every event type) and with 10 SSE stream clients, interleaved, REPEAT rounds. Prints one
# line per pass: accepted/s, hub CPU ms per message, p99 submit, and how long the webhook
# backlog took to drain after the bench (every delivery answered by the receiver).
#
#   cargo build --release && REPEAT=2 tests/bench/fanout.sh
#
# Needs node (the receiver) and curl. Talks to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release/smshub}
REPEAT=${REPEAT:-2}
MESSAGES=${MESSAGES:-20000}
DEVICES=${DEVICES:-100}
CONCURRENCY=${CONCURRENCY:-64}
CASES=${CASES:-"hooks0 hooks1 hooks10 streams10"}
WORK=$(mktemp -d)
RECEIVER_PORT=${RECEIVER_PORT:-18731}
HUB_PORT=${HUB_PORT:-18732}
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

node tests/bench/receiver.js "$RECEIVER_PORT" &
pids+=($!)
sleep 0.5

pass() {
    local case=$1 round=$2
    local db="$WORK/$case-$round.db"
    local hooks=0 streams=0
    case $case in
        hooks*) hooks=${case#hooks} ;;
        streams*) streams=${case#streams} ;;
    esac
    local key
    key=$("$BIN" keys create --name bench --database-url "sqlite://$db" | tail -1)
    "$BIN" serve --listen "127.0.0.1:$HUB_PORT" --database-url "sqlite://$db" \
        --webhook-allow-loopback >"$WORK/serve.log" 2>&1 &
    local hub=$!
    pids+=($hub)
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$HUB_PORT/health/live" >/dev/null 2>&1 && break
        sleep 0.1
    done
    local before
    before=$(curl -fs "http://127.0.0.1:$RECEIVER_PORT/count" | sed 's/.*"requests":\([0-9]*\).*/\1/')
    for i in $(seq "$hooks"); do
        curl -fs -X POST "http://127.0.0.1:$HUB_PORT/api/webhooks" -H "X-API-Key: $key" \
            -H 'content-type: application/json' \
            -d "{\"url\":\"http://127.0.0.1:$RECEIVER_PORT/hook$i\"}" >/dev/null
    done
    local streamers=()
    for _ in $(seq "$streams"); do
        curl -sN "http://127.0.0.1:$HUB_PORT/api/events" -H "X-API-Key: $key" >/dev/null &
        streamers+=($!)
    done
    local line
    line=$("$BIN" bench --hub "http://127.0.0.1:$HUB_PORT" --api-key "$key" --hub-pid "$hub" \
        --devices "$DEVICES" --messages "$MESSAGES" --concurrency "$CONCURRENCY" | tail -1)
    local bench_end=$SECONDS drained="-" received=0
    if [ "$hooks" -gt 0 ]; then
        # Wait until the receiver's count stops growing for 3 s (the backlog drained).
        local last=-1 still=0
        while [ "$still" -lt 3 ] && [ $((SECONDS - bench_end)) -lt 900 ]; do
            sleep 1
            received=$(curl -fs "http://127.0.0.1:$RECEIVER_PORT/count" | sed 's/.*"requests":\([0-9]*\).*/\1/')
            if [ "$received" = "$last" ]; then still=$((still + 1)); else still=0; last=$received; fi
        done
        drained="$((SECONDS - bench_end - 3))s"
        received=$((received - before))
    fi
    for pid in "${streamers[@]}"; do kill "$pid" 2>/dev/null || true; done
    kill "$hub"; wait "$hub" 2>/dev/null || true
    local get
    get() { echo "$line" | sed "s/.*\"$1\":\([0-9.]*\).*/\1/"; }
    printf '%-10s round %s  accepted/s %8s  cpu ms/msg %7s  p99 submit ms %6s  errors %s  webhook requests %s  drained after %s\n' \
        "$case" "$round" "$(get accepted_per_s)" "$(get hub_cpu_ms_per_msg)" "$(get p99_submit_ms)" \
        "$(get errors)" "$received" "$drained"
}

for round in $(seq "$REPEAT"); do
    for case in $CASES; do
        pass "$case" "$round"
    done
done
