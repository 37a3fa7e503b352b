#!/usr/bin/env bash
# A 3 MB screenshot body through `nines edge` (issue 14, resumable uploads): what a cut during its
# upload costs. The edge has two uplinks to one gateway (with [uploads]): "wifi" through the chaos
# proxy, which cuts every connection after a share of the body (10, 50 or 90%), and "cellular"
# direct. Each round starts a fresh edge (no cooldown carried over) and sends one chat request;
# the body goes as a tus upload over wifi, is cut, and is resumed over cellular from the offset
# the gateway stored. Per cut: the request's time as curl sees it, the bytes the edge sent again
# (they were in flight when the link broke: socket buffers), and the bytes the gateway received
# twice (it stores each once; a byte of the dead append that arrived after the resume took over is
# received but not kept). A row without a cut is the baseline. Loopback only.
#
#   bench/uploads.sh         (knobs: ROUNDS 10; writes bench/results/uploads.md, or OUT)
set -euo pipefail
bin=$(readlink -f "${1:-build/nines}")
cd "$(dirname "$(readlink -f "$0")")/.."
ROUNDS=${ROUNDS:-10}
out=${OUT:-bench/results/uploads.md}
work=$(mktemp -d /tmp/nines-uploads-bench.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh  # what it starts ($pids) is stopped at exit, and $work removed

answers() { curl -s -o /dev/null --max-time 2 "$1"; }
wait_until() {  # command args...: at most 10 s
  for _ in $(seq 1 200); do "$@" && return 0; sleep 0.05; done
  echo "timed out waiting for: $*" >&2
  return 1
}
metric() {  # admin port, series -> value (0 when absent)
  curl -s "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s { print $2; found = 1 }
    END { if (!found) print 0 }'
}

secret=secret-uploads-bench-0123
printf '[[keys]]\nid = "edge"\nhash = "sha256:%s"\nmodels = ["*"]\n' \
  "$(printf %s "$secret" | sha256sum | cut -d' ' -f1)" > "$work/keys.toml"
"$bin" mock-llm --listen 127.0.0.1:18101 2>"$work/mock.log" &
pids+=($!)
cat > "$work/gateway.toml" <<EOF
[gateway]
listen = "127.0.0.1:18102"
workers = 1
access_log = "off"
[admin]
listen = "127.0.0.1:19911"
[auth]
keys_file = "$work/keys.toml"
[uploads]
dir = "$work/uploads"
[[upstreams]]
url = "http://127.0.0.1:18101"
EOF
"$bin" gateway --config "$work/gateway.toml" 2>"$work/gateway.log" &
pids+=($!)
"$bin" chaos --api 127.0.0.1:18474 \
  --proxy "name=wifi,listen=127.0.0.1:18103,upstream=127.0.0.1:18102" 2>"$work/chaos.log" &
pids+=($!)
wait_until answers http://127.0.0.1:18102/readyz
wait_until answers http://127.0.0.1:18474/proxies

python3 - "$work/body.json" <<'PY'
import json, sys
image = "iVBORw0KGgo" * (3 * 1024 * 1024 // 11)
body = {"model": "mock-model", "stream": True, "temperature": 0,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "tap the settings icon"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + image}}]}]}
open(sys.argv[1], "w").write(json.dumps(body))
PY
size=$(stat -c %s "$work/body.json")

start_edge() {
  cat > "$work/edge.toml" <<EOF
[edge]
listen = "127.0.0.1:18104"
workers = 1
access_log = "off"
[admin]
listen = "127.0.0.1:19912"
[retry]
backoff_base_ms = 1
[[uplinks]]
name = "wifi"
url = "http://127.0.0.1:18103"
api_key = "$secret"
[[uplinks]]
name = "cellular"
url = "http://127.0.0.1:18102"
priority = 1
api_key = "$secret"
EOF
  "$bin" edge --config "$work/edge.toml" 2>"$work/edge.log" &
  edge_pid=$!
  pids+=("$edge_pid")
  wait_until answers http://127.0.0.1:19912/healthz
}
stop_edge() {
  kill "$edge_pid"
  wait "$edge_pid" 2>/dev/null || true
}
stats() {  # values on stdin -> "p50 p99 max"
  sort -n | awk '{ v[NR] = $1 } END {
    p50 = v[int((NR + 1) * 0.50)]; i = int(NR * 0.99 + 0.999); if (i > NR) i = NR
    printf "%.1f %.1f %.1f", p50, v[i], v[NR] }'
}

declare -A row
for pct in 0 10 50 90; do
  : > "$work/ms.txt"
  : > "$work/resent.txt"
  : > "$work/twice.txt"
  ok=0
  for _ in $(seq 1 "$ROUNDS"); do
    if [ "$pct" != 0 ]; then
      curl -s -o /dev/null -X POST http://127.0.0.1:18474/proxies/wifi/toxics \
        -d "{\"name\":\"cut\",\"type\":\"limit_data\",\"stream\":\"upstream\",\"attributes\":{\"bytes\":$((size * pct / 100))}}"
    fi
    start_edge
    kept0=$(metric 19911 'nines_upload_bytes_received_total{result="kept"}')
    refused0=$(metric 19911 'nines_upload_bytes_received_total{result="refused"}')
    read -r status seconds < <(curl -s --max-time 60 -o "$work/answer.txt" \
      -w '%{http_code} %{time_total}\n' -H 'content-type: application/json' \
      --data-binary @"$work/body.json" http://127.0.0.1:18104/v1/chat/completions)
    kept=$(( $(metric 19911 'nines_upload_bytes_received_total{result="kept"}') - kept0 ))
    if [ "$status" = 200 ] && grep -q '^data: \[DONE\]' "$work/answer.txt" && [ "$kept" = "$size" ]; then
      ok=$((ok + 1))
    fi
    awk -v t="$seconds" 'BEGIN { printf "%.1f\n", t * 1000 }' >> "$work/ms.txt"
    metric 19912 'nines_edge_upload_bytes_total{kind="resent"}' >> "$work/resent.txt"
    echo $(( $(metric 19911 'nines_upload_bytes_received_total{result="refused"}') - refused0 )) \
      >> "$work/twice.txt"
    stop_edge
    [ "$pct" = 0 ] || curl -s -o /dev/null -X DELETE http://127.0.0.1:18474/proxies/wifi/toxics/cut
  done
  row[$pct]="$ok $(stats < "$work/ms.txt") $(stats < "$work/resent.txt") $(stats < "$work/twice.txt")"
done

mkdir -p "$(dirname "$out")"
{
  echo "# nines edge: a 3 MB body cut during its upload ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs)"
  echo
  echo "A ${size}-byte chat request (\`bench/uploads.sh\`, $ROUNDS rounds per row, a fresh edge per"
  echo "round): wifi (through the chaos proxy, cutting every connection after the share given)"
  echo "and cellular (direct) to one gateway with [uploads]. \"Sent again\": bytes the edge wrote a"
  echo "second time (in flight when the link broke); \"received twice\": bytes the gateway got"
  echo "beyond storing each byte once. Goal: received twice ≤ 64 KiB; the body stored whole."
  echo
  echo "| cut at | whole and exact | p50 ms | p99 ms | sent again p50 bytes | sent again max | received twice max |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for pct in 0 10 50 90; do
    read -r ok p50 p99 _ r50 _ rmax _ _ tmax <<< "${row[$pct]}"
    label="${pct}%"
    [ "$pct" = 0 ] && label="no cut"
    echo "| $label | $ok/$ROUNDS | $p50 | $p99 | ${r50%.*} | ${rmax%.*} | ${tmax%.*} |"
  done
  echo
} > "$out"
cat "$out"
