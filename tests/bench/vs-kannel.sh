#!/usr/bin/env bash
# smshub next to Kannel 1.4.5 on this machine: the same message count and HTTP concurrency,
# REPEAT interleaved passes, medians, one table and the ratios against the targets of issue 5.
#
# Usage: tests/bench/vs-kannel.sh          (as root: the Kannel recipe installs its packages)
# Env knobs (defaults in brackets):
#   N [20000] messages per run, CONC [64] concurrent HTTP connections, REPEAT [3] passes,
#   DEVICES [100] simulated phones, MAX_IN_FLIGHT [10] jobs per phone,
#   DURABILITY [full] smshub's SQLite durability (full | normal),
#   SMSHUB [<repo>/target/release/smshub, built if missing],
#   KANNEL_RUN [<repo>/../shared/peers/kannel/run.sh], OUT [/tmp/vs-kannel] results,
#   VK_BUDGET_S [1500] watchdog for the whole script,
#   PACED [0] also measure both with delivery paced at PACED_RATE [1000] msg/s: Kannel's fake
#   SMSC with `throughput = PACED_RATE`, smshub's phones taking DEVICES x MAX_IN_FLIGHT /
#   PACED_RATE seconds per SMS (1 s with the defaults). Real phones and SMSCs are slower than the API; this is a burst
#   absorbed while delivery runs at their pace. For information: the targets are on the above.
# Everything runs on 127.0.0.1 only, one thing at a time, each step bounded in time; the
# script starts no process it does not stop (Kannel's recipe stops its own by PID, and
# `smshub bench` stops the hub it spawns).
set -euo pipefail

if [ -z "${VK_INNER:-}" ]; then
    export VK_INNER=1
    exec timeout -s TERM -k 15 "${VK_BUDGET_S:-1500}" "$0" "$@"
fi

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(git -C "$HERE" rev-parse --show-toplevel)
KANNEL_RUN=${KANNEL_RUN:-$REPO/../shared/peers/kannel/run.sh}
N=${N:-20000}
CONC=${CONC:-64}
REPEAT=${REPEAT:-3}
DEVICES=${DEVICES:-100}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-10}
DURABILITY=${DURABILITY:-full}
SMSHUB=${SMSHUB:-$REPO/target/release/smshub}
OUT=${OUT:-/tmp/vs-kannel}
PACED=${PACED:-0}
PACED_RATE=${PACED_RATE:-1000}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -f "$KANNEL_RUN" ] || die "Kannel recipe not found at $KANNEL_RUN (set KANNEL_RUN)"
if [ ! -x "$SMSHUB" ]; then
    log "building $SMSHUB"
    (cd "$REPO" && timeout 1200 cargo build --release --quiet) || die "cargo build --release failed"
fi
rm -rf "$OUT"
mkdir -p "$OUT"
log "machine: $(nproc) cores, loadavg $(cut -d' ' -f1-3 /proc/loadavg); N=$N CONC=$CONC REPEAT=$REPEAT"

smshub_run() {  # smshub_run NAME EXTRA_FLAGS...
    local name=$1
    shift
    log "[$name] smshub bench"
    timeout 300 "$SMSHUB" bench --messages "$N" --concurrency "$CONC" --devices "$DEVICES" \
        --max-in-flight "$MAX_IN_FLIGHT" --durability "$DURABILITY" --timeout 240 --no-progress "$@" \
        >"$OUT/$name.out" 2>"$OUT/$name.err" || log "[$name] smshub bench failed (see $OUT/$name.err)"
    tail -n 1 "$OUT/$name.out" >"$OUT/$name.json"
}

if [ "$PACED" = 1 ]; then
    # A copy of the Kannel recipe whose fake SMSC sends at most PACED_RATE messages a second.
    PACED_RECIPE="$OUT/kannel-paced-recipe"
    cp -r "$(dirname "$KANNEL_RUN")" "$PACED_RECIPE"
    sed -i "s/^smsc-id = FAKE\$/smsc-id = FAKE\nthroughput = $PACED_RATE/" "$PACED_RECIPE/kannel.conf.in"
    grep -q "^throughput = $PACED_RATE\$" "$PACED_RECIPE/kannel.conf.in" || die "could not pace the Kannel recipe"
    PACED_LATENCY_MS=$((DEVICES * MAX_IN_FLIGHT * 1000 / PACED_RATE))
fi

for ((rep = 1; rep <= REPEAT; rep++)); do
    log "[pass $rep/$REPEAT] kannel (file, file-dlr)"
    WORKDIR="$OUT/kannel.$rep" N="$N" CONC="$CONC" REPEAT=1 SCENARIOS="file file-dlr" \
        bash "$KANNEL_RUN" >"$OUT/kannel.$rep.out" 2>"$OUT/kannel.$rep.err" ||
        log "[pass $rep] kannel run failed (see $OUT/kannel.$rep.err)"
    smshub_run "smshub.$rep"
    smshub_run "smshub-dlr.$rep" --delivery-report
    if [ "$PACED" = 1 ]; then
        log "[pass $rep/$REPEAT] kannel paced at $PACED_RATE msg/s"
        WORKDIR="$OUT/kannel-paced.$rep" N="$N" CONC="$CONC" REPEAT=1 SCENARIOS="file" \
            bash "$PACED_RECIPE/run.sh" >"$OUT/kannel-paced.$rep.out" 2>"$OUT/kannel-paced.$rep.err" ||
            log "[pass $rep] paced kannel run failed (see $OUT/kannel-paced.$rep.err)"
        smshub_run "smshub-paced.$rep" --phone-latency-ms "$PACED_LATENCY_MS"
    fi
done

python3 - "$OUT" "$REPEAT" "$N" "$CONC" <<'PY'
import json, os, statistics, sys

out, repeat, n, conc = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def load(path):
    try:
        with open(path) as f:
            return json.loads(f.read().strip() or "null")
    except (OSError, ValueError):
        return None

def med(rows, get):
    values = []
    for r in rows:
        try:
            v = get(r)
        except (KeyError, TypeError):
            v = None
        if v is not None:
            values.append(v)
    return statistics.median(values) if values else None

def kannel_rss(r):
    return sum(v for k, v in r["rss_hwm_kb"].items() if k in ("bearerbox", "smsbox") and v) / 1024

kf = [r for r in (load(f"{out}/kannel.{i}/results/file.1.json") for i in range(1, repeat + 1)) if r]
kd = [r for r in (load(f"{out}/kannel.{i}/results/file-dlr.1.json") for i in range(1, repeat + 1)) if r]
sp = [r for r in (load(f"{out}/smshub.{i}.json") for i in range(1, repeat + 1)) if r]
sd = [r for r in (load(f"{out}/smshub-dlr.{i}.json") for i in range(1, repeat + 1)) if r]
kp = [r for r in (load(f"{out}/kannel-paced.{i}/results/file.1.json") for i in range(1, repeat + 1)) if r]
spp = [r for r in (load(f"{out}/smshub-paced.{i}.json") for i in range(1, repeat + 1)) if r]

rows = [
    ("kannel file", kf, dict(
        acc=lambda r: r["accepted_per_s"], e2e=lambda r: r["delivered_per_s_e2e"],
        p50=lambda r: r["lat_ms"]["p50"], p99=lambda r: r["lat_ms"]["p99"], mx=lambda r: r["lat_ms"]["max"],
        rss=kannel_rss, cpu=lambda r: r["kannel_cpu_ms_per_msg"], err=lambda r: r["n_requested"] - r["http_accepted"])),
    ("kannel file + DLR", kd, dict(
        acc=lambda r: r["accepted_per_s"], e2e=lambda r: r["dlr_per_s_e2e"],
        p50=lambda r: r["lat_ms"]["p50"], p99=lambda r: r["lat_ms"]["p99"], mx=lambda r: r["lat_ms"]["max"],
        rss=kannel_rss, cpu=lambda r: r["kannel_cpu_ms_per_msg"], err=lambda r: r["n_requested"] - r["http_accepted"])),
    ("smshub", sp, dict(
        acc=lambda r: r["accepted_per_s"], e2e=lambda r: r["e2e_per_s"],
        p50=lambda r: r["p50_submit_ms"], p99=lambda r: r["p99_submit_ms"], mx=lambda r: r["max_submit_ms"],
        rss=lambda r: r["hub_rss_mb"], cpu=lambda r: r["hub_cpu_ms_per_msg"], err=lambda r: r["errors"])),
    ("smshub + delivery report", sd, dict(
        acc=lambda r: r["accepted_per_s"], e2e=lambda r: r["delivered_per_s"],
        p50=lambda r: r["p50_submit_ms"], p99=lambda r: r["p99_submit_ms"], mx=lambda r: r["max_submit_ms"],
        rss=lambda r: r["hub_rss_mb"], cpu=lambda r: r["hub_cpu_ms_per_msg"], err=lambda r: r["errors"])),
]
if kp or spp:
    rows += [
        ("kannel file, paced", kp, rows[0][2]),
        ("smshub, paced", spp, rows[2][2]),
    ]

def fmt(v, spec):
    return format(v, spec) if v is not None else "-"

print(f"---- smshub vs kannel: N={n}, concurrency={conc}, medians of {repeat} interleaved passes "
      f"(e2e: kannel file = delivered to fakesmsc, kannel DLR = DLR round trip; "
      f"smshub = sent stored, or delivered stored with delivery reports)")
print(f"{'':<26} {'runs':>4} {'accepted/s':>10} {'e2e/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
      f"{'RSS MB':>7} {'CPU ms/msg':>10} {'errors':>6}")
meds = {}
for name, rs, get in rows:
    m = {k: med(rs, f) for k, f in get.items()}
    meds[name] = m
    print(f"{name:<26} {len(rs):>4} {fmt(m['acc'], '.0f'):>10} {fmt(m['e2e'], '.0f'):>8} {fmt(m['p50'], '.1f'):>7} "
          f"{fmt(m['p99'], '.1f'):>7} {fmt(m['mx'], '.0f'):>7} {fmt(m['rss'], '.1f'):>7} {fmt(m['cpu'], '.3f'):>10} "
          f"{fmt(m['err'], '.0f'):>6}")

def ratio(a, b):
    return a / b if a is not None and b else None

checks = [
    ("accepted/s, smshub / kannel file", ratio(meds["smshub"]["acc"], meds["kannel file"]["acc"]), ">=", 2.0),
    ("e2e sent stored / kannel DLR round trip", ratio(meds["smshub"]["e2e"], meds["kannel file + DLR"]["e2e"]), ">=", 2.0),
    ("e2e delivered stored / kannel DLR round trip",
     ratio(meds["smshub + delivery report"]["e2e"], meds["kannel file + DLR"]["e2e"]), ">=", 1.5),
    ("p99 submit, smshub / kannel file", ratio(meds["smshub"]["p99"], meds["kannel file"]["p99"]), "<=", 1.0),
    ("CPU ms/msg, smshub / kannel file", ratio(meds["smshub"]["cpu"], meds["kannel file"]["cpu"]), None, None),
    ("RSS, smshub / kannel file", ratio(meds["smshub"]["rss"], meds["kannel file"]["rss"]), None, None),
]
if "smshub, paced" in meds:
    checks += [
        ("paced: accepted/s, smshub / kannel", ratio(meds["smshub, paced"]["acc"], meds["kannel file, paced"]["acc"]), None, None),
        ("paced: p99 submit, smshub / kannel", ratio(meds["smshub, paced"]["p99"], meds["kannel file, paced"]["p99"]), None, None),
    ]
print("---- ratios")
for name, value, op, target in checks:
    if value is None:
        verdict = "not measured"
    elif op is None:
        verdict = "(for information)"
    else:
        ok = value >= target if op == ">=" else value <= target
        verdict = f"target {op} {target}: {'met' if ok else 'NOT met'}"
    print(f"  {name:<46} {fmt(value, '.2f'):>6}  {verdict}")
PY
