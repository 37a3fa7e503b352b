#!/usr/bin/env bash
# Memory over time (issue 13): a gateway (1 worker, access log on) in front of mock-llm under an
# open-loop load of streamed and whole answers for SOAK_SECONDS (600), its resident memory
# sampled every SAMPLE seconds (30). Reports the samples and the growth from the end of the first
# minute (pools, caches and allocator arenas warm) to the end. Appends to bench/results/lean.md
# when OUT is not set.
#
#   bench/soak.sh            (knobs: SOAK_SECONDS 600, SAMPLE 30, RATE 400)
#
# Loopback only; bounded in time; only the processes started here are stopped, by their ids.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/build/nines
SOAK_SECONDS=${SOAK_SECONDS:-600}
SAMPLE=${SAMPLE:-30}
RATE=${RATE:-400}
out=${OUT:-bench/results/lean.md}
work=$(mktemp -d /tmp/nines-soak.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh

"$bin" mock-llm --listen 127.0.0.1:19531 --workers 1 --tokens 20 --faults tpot_ms=5 \
  2>"$work/mock.log" & pids+=($!)
wait_port 19531
"$bin" gateway --admin-listen 127.0.0.1:0 --upstream http://127.0.0.1:19531/v1 \
  --listen 127.0.0.1:19532 --workers 1 --access-log "$work/access.log" 2>"$work/gw.log" & pids+=($!)
gw=$!
wait_port 19532

# Half the rate streamed, half whole answers, each for the whole soak.
"$bin" bench --url http://127.0.0.1:19532 --rate $((RATE / 2)) --duration "$SOAK_SECONDS" \
  --requests $((RATE / 2 * SOAK_SECONDS)) --concurrency 512 --stream true --answer-tokens 20 --max-seconds $((SOAK_SECONDS + 60)) \
  --json "$work/stream.json" > "$work/stream.txt" 2>&1 & pids+=($!)
load1=$!
"$bin" bench --url http://127.0.0.1:19532 --rate $((RATE / 2)) --duration "$SOAK_SECONDS" \
  --requests $((RATE / 2 * SOAK_SECONDS)) --concurrency 512 --stream false --answer-tokens 20 --max-seconds $((SOAK_SECONDS + 60)) \
  --json "$work/whole.json" > "$work/whole.txt" 2>&1 & pids+=($!)
load2=$!

samples=()
for ((t = SAMPLE; t <= SOAK_SECONDS; t += SAMPLE)); do
  sleep "$SAMPLE"  # a measurement interval, not a synchronisation
  samples+=("$t:$(awk '/VmRSS/ {print $2}' "/proc/$gw/status")")
done
wait "$load1" || true
wait "$load2" || true

{
echo "## Soak: $SOAK_SECONDS s at $RATE requests/s (half streamed), gateway resident memory"
echo
echo "Command: \`bench/soak.sh\` (SOAK_SECONDS=$SOAK_SECONDS, RATE=$RATE). Samples every ${SAMPLE}s, KiB:"
echo
printf '%s ' "${samples[@]}" | sed 's/ $//'
echo
echo
python3 - "$work/stream.json" "$work/whole.json" "${samples[@]}" <<'PY'
import json, sys
s, w = (json.load(open(p)) for p in sys.argv[1:3])
pts = [tuple(map(int, x.split(":"))) for x in sys.argv[3:]]
warm = next((kb for t, kb in pts if t >= 60), pts[0][1])
last = pts[-1][1]
print(f"- requests: {s['requests'] + w['requests']}, succeeded {s['succeeded'] + w['succeeded']}")
print(f"- resident after the first minute {warm} KiB, at the end {last} KiB: "
      f"growth {last - warm:+d} KiB ({(last - warm) / warm * 100:+.1f}%)")
PY
echo
} >> "$out"
tail -12 "$out"
