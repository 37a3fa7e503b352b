#!/usr/bin/env bash
# A 3 MB screenshot body through `nines edge` (issue 14, resumable uploads): what a cut during its
# upload costs. The edge has two uplinks to one gateway (with [uploads]): "wifi" through the chaos
# proxy, which cuts every connection after a share of the body (10, 50 or 90%), and "cellular"
# direct. Each round starts a fresh edge (no cooldown carried over) and sends one chat request;
# the body goes as a tus upload over wifi, is cut, and is resumed over cellular from the offset
# the gateway stored. Per cut: the request's time as curl sees it, the bytes the edge sent again
# (they were in flight when the link broke: socket buffers), and the bytes the gateway received
# twice (it stores each once; a byte of the dead append that arrived after the resume took over is
# received but not kept). A row without a cut is the baseline.
#
# Then WiFi going silent mid-upload, across veth links in network namespaces: the gateway on a far
# host reachable over "wifi" (paced to 8 Mbit/s by a tbf qdisc) and "cellular"; once it stored
# 1 MB, the far end of wifi goes down (nothing acknowledged, nothing answered). The edge's stall
# watch (1 s without an acknowledgement) ends the attempt and the rest goes over cellular. Rows:
# the same request uncut over wifi, and cut. Runs in namespaces it creates; loopback otherwise.
#
#   bench/uploads.sh         (knobs: ROUNDS 10; writes bench/results/uploads.md, or OUT)
set -euo pipefail
bin=$(readlink -f "${1:-build/nines}")
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."
# shellcheck source=tests/netns/far_host.sh
source tests/netns/far_host.sh
enter_own_namespace "$self" "$bin"
ip link set lo up
ROUNDS=${ROUNDS:-10}
out=${OUT:-bench/results/uploads.md}
work=$(mktemp -d /tmp/nines-uploads-bench.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh  # what it starts ($pids) is stopped at exit, and $work removed

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
drain_timeout_ms = 500
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
drain_timeout_ms = 500
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

# --- WiFi silent mid-upload (network namespaces) -------------------------------------------------
make_far_host
pids+=("$far_ns")
make_second_link
tc qdisc add dev wifi0 root tbf rate 8mbit burst 32kbit latency 400ms
sed -e 's/^listen = "127.0.0.1:18102"/listen = "0.0.0.0:18102"/' -e 's|/uploads"|/far-uploads"|' \
  "$work/gateway.toml" > "$work/far-gateway.toml"
nsenter --target "$far_ns" --net "$bin" mock-llm --listen 127.0.0.1:18101 2>"$work/far-mock.log" &
pids+=($!)
nsenter --target "$far_ns" --net "$bin" gateway --config "$work/far-gateway.toml" \
  2>"$work/far-gateway.log" &
pids+=($!)
wait_until answers http://10.77.0.2:18102/readyz
wait_until answers http://10.78.0.2:18102/readyz
far_kept() {
  far curl -s http://127.0.0.1:19911/metrics |
    awk '$1 == "nines_upload_bytes_received_total{result=\"kept\"}" { print $2; found = 1 }
         END { if (!found) print 0 }'
}
start_far_edge() {
  sed -e 's|http://127.0.0.1:18103|http://10.77.0.2:18102|' \
    -e 's|http://127.0.0.1:18102|http://10.78.0.2:18102|' "$work/edge.toml" > "$work/far-edge.toml"
  "$bin" edge --config "$work/far-edge.toml" 2>"$work/far-edge.log" &
  edge_pid=$!
  pids+=("$edge_pid")
  wait_until answers http://127.0.0.1:19912/healthz
}
expected=$(sha256sum "$work/body.json" | cut -d' ' -f1)
declare -A silent
for way in uncut cut; do
  : > "$work/ms.txt"
  ok=0
  for _ in $(seq 1 "$ROUNDS"); do
    link_up
    start_far_edge
    base=$(far_kept)
    curl -s --max-time 60 -o "$work/answer.txt" -D "$work/answer.head" \
      -w '%{http_code} %{time_total}\n' -H 'content-type: application/json' \
      -H 'x-mock-digest: sha256' --data-binary @"$work/body.json" \
      http://127.0.0.1:18104/v1/chat/completions > "$work/result.txt" &
    client=$!
    if [ "$way" = cut ]; then
      stored_a_megabyte() { [ $(( $(far_kept) - base )) -ge 1048576 ]; }
      wait_until stored_a_megabyte
      link_down
    fi
    wait "$client" || true
    read -r status seconds < "$work/result.txt"
    if [ "$status" = 200 ] && grep -qi "^x-mock-body-sha256: sha256:$expected" "$work/answer.head" &&
      [ $(( $(far_kept) - base )) = "$size" ]; then
      ok=$((ok + 1))
    fi
    awk -v t="$seconds" 'BEGIN { printf "%.1f\n", t * 1000 }' >> "$work/ms.txt"
    stop_edge
  done
  silent[$way]="$ok $(stats < "$work/ms.txt")"
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
  echo "WiFi (8 Mbit/s, tbf) going silent once the gateway stored 1 MB of the body; cellular takes"
  echo "the rest after the stall watch (1 s without an acknowledgement). Time as curl sees it."
  echo
  echo "| over wifi | whole and exact | p50 ms | p99 ms | max ms |"
  echo "|---|---:|---:|---:|---:|"
  for way in uncut cut; do
    read -r ok p50 p99 max <<< "${silent[$way]}"
    echo "| $way | $ok/$ROUNDS | $p50 | $p99 | $max |"
  done
  echo
} > "$out"
cat "$out"
