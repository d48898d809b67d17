#!/usr/bin/env bash
# schemathesis (PyPI) against a live hub: starts `smshub serve` on a free port with a fresh
# SQLite file, a key from `smshub keys create` and two simulated phones, then runs every
# operation of /openapi.json with generated requests and checks that no answer is a 5xx,
# every status is documented and every body matches its schema. After the traffic,
# `promtool check metrics` lints /metrics of the same hub. Exit status 0 only if both pass.
#
# Needs: python3 -m pip install schemathesis; apt-get install prometheus (promtool).
# Env: SCHEMATHESIS_MAX_EXAMPLES (default 25) bounds the examples per operation.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --bin smshub
bin="${CARGO_TARGET_DIR:-target}/debug/smshub"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
db="sqlite://$work/hub.db"
key="$("$bin" keys create --name schemathesis --database-url "$db" | tail -n 1)"

"$bin" serve --listen "127.0.0.1:$port" --database-url "$db" >"$work/hub.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
    "$bin" health --url "$base/health/ready" >/dev/null 2>&1 && break
    sleep 0.2
done
"$bin" health --url "$base/health/ready" >/dev/null

# Phones that take the messages schemathesis sends, so devices and transitions show up.
"$bin" simulate --hub "$base" --api-key "$key" --devices 2 >"$work/simulate.log" 2>&1 &
pids+=($!)

status=0
# `/ws/device/{id}` and `/ws` are WebSocket upgrades and `/api/events` is a stream that never
# ends: none is a REST call (tests/it/device.rs and tests/it/events.rs cover them).
schemathesis run "$base/openapi.json" \
    --header "X-API-Key: $key" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
    --exclude-path '/ws/device/{id}' \
    --exclude-path '/ws' \
    --exclude-path '/api/events' \
    --request-timeout 10 \
    --generation-deterministic \
    --no-color \
    --report junit --report-junit-path "$work/junit.xml" || status=$?
python3 - "$work/junit.xml" <<'PY' || true
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
print("schemathesis: %d operations" % sum(int(s.get("tests", 0)) for s in suites))
PY

if [ "$status" -ne 0 ]; then
    echo "== hub log (tail)"; tail -n 40 "$work/hub.log"
fi

echo "== promtool check metrics"
python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' \
    "$base/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt" || status=1
grep -c '^smshub_' "$work/metrics.txt" | sed 's/^/metrics samples: /'
exit "$status"
