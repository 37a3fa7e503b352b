#!/usr/bin/env bash
# The answer cache of `nines edge` (issue 14, [cache]): what a hit costs after the last byte of a
# 4 MB screenshot request. Measured with `nines bench`, one connection, whole and streamed
# answers: "after the last byte" is the time from the moment the kernel took the request's last
# byte (the client's write returned) to the answer's header. The body's fingerprint is taken while
# it arrives, and a hit is compared with the kept request byte for byte.
#
# Two ways the body comes: all at once over loopback (an agent beside the edge: the client's last
# write returns while the kernel still holds most of the body, which the edge then reads — any
# proxy that reads the body pays that part), and at 1,000 MB/s in 64 KiB pieces (8 Gbit/s, faster
# than any uplink: what a hit adds once the edge has the last byte). For comparison: the same
# request with the cache off (the uplink, mock-llm, answers at once), a small request's hit, and
# what SHA-256 of 4 MB costs on this machine (a cryptographic key hashed after the last byte).
#
# Then the edge's CPU per request: wrk (1 thread, 32 connections, 5 s) with a small chat request
# through `nines edge` (1 worker, cache off) to nginx answering a fixed body, against the same
# load through `nines gateway` (the same request path) and nginx as the proxy; and through the edge
# with the cache on, every request a hit. CPU is the proxy's user + system time from /proc.
#
#   bench/cache.sh           (knobs: HITS 200, SECONDS_CPU 5; writes bench/results/cache.md, or OUT)
set -euo pipefail
bin=$(readlink -f "${1:-build/nines}")
cd "$(dirname "$(readlink -f "$0")")/.."
HITS=${HITS:-200}
SECONDS_CPU=${SECONDS_CPU:-5}
out=${OUT:-bench/results/cache.md}
work=$(mktemp -d /tmp/nines-cache-bench.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh  # what it starts ($pids) is stopped at exit, and $work removed

"$bin" mock-llm --listen 127.0.0.1:18201 2>"$work/mock.log" &
pids+=($!)
start_edge() {  # port admin-port extra-toml
  cat > "$work/edge-$1.toml" <<TOML
[edge]
listen = "127.0.0.1:$1"
workers = 1
access_log = "off"
[admin]
listen = "127.0.0.1:$2"
[limits]
max_body_bytes = 16777216
$3
[[uplinks]]
name = "model"
url = "http://127.0.0.1:18201"
upload_threshold_bytes = 0
TOML
  "$bin" edge --config "$work/edge-$1.toml" 2>"$work/edge-$1.log" &
  pids+=($!)
}
start_edge 18202 19921 $'[cache]\nmax_bytes = 268435456'
start_edge 18203 19922 ""
wait_port 18201; wait_port 18202; wait_port 18203

run() {  # label port image-bytes stream requests [send-rate MB/s] -> json file
  "$bin" bench --url "http://127.0.0.1:$2" --image-bytes "$3" --prompts 1 --stream "$4" \
    --requests "$5" --connections 1 --timeout 30 --max-seconds 120 --send-rate "${6:-0}" \
    --json "$work/$1.json" --label "$1" > "$work/$1.txt"
}
ms() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('%.3f' % d['after_body_ms'][sys.argv[2]])" "$work/$1.json" "$2"; }
ok() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('%d/%d' % (d['succeeded'], d['requests']))" "$work/$1.json"; }
hits() { curl -s http://127.0.0.1:19921/metrics | awk '$1 == "nines_cache_requests_total{result=\"hit\"}" { print $2 }'; }

big=$((4 << 20))
for stream in false true; do
  run "warm-$stream" 18202 "$big" "$stream" 1   # the miss that fills the cache
done
hits_before=$(hits); hits_before=${hits_before:-0}
run hit-whole 18202 "$big" false "$HITS"
run hit-stream 18202 "$big" true "$HITS"
run hit-paced 18202 "$big" false "$HITS" 1000
hits_after=$(hits)
run warm-small 18202 0 false 1
run hit-small 18202 0 false "$HITS"
run off-whole 18203 "$big" false "$((HITS / 4))"
run off-paced 18203 "$big" false "$((HITS / 4))" 1000
# --- CPU per request: edge, gateway, nginx, the edge's hits --------------------------------
start_static_upstream "$work/up" 18210
start_nginx_proxy "$work/px" 18211 18210
nginx_proxy=${pids[-1]}
cat > "$work/edge-cpu.toml" <<TOML
[edge]
listen = "127.0.0.1:18212"
workers = 1
access_log = "off"
[admin]
listen = "127.0.0.1:19923"
[health]
path = "/"
[[uplinks]]
url = "http://127.0.0.1:18210/v1"
TOML
"$bin" edge --config "$work/edge-cpu.toml" 2>"$work/edge-cpu.log" & pids+=($!); edge_cpu=$!
sed -e 's/18212/18213/' -e 's/19923/19924/' "$work/edge-cpu.toml" > "$work/edge-hit.toml"
printf '[cache]\nmax_bytes = 67108864\n' >> "$work/edge-hit.toml"
"$bin" edge --config "$work/edge-hit.toml" 2>"$work/edge-hit.log" & pids+=($!); edge_hit=$!
"$bin" gateway --admin-listen 127.0.0.1:0 --upstream http://127.0.0.1:18210/v1 \
  --listen 127.0.0.1:18214 --workers 1 --access-log off 2>"$work/gw-cpu.log" & pids+=($!)
gw_cpu=$!
wait_port 18210; wait_port 18211; wait_port 18212; wait_port 18213; wait_port 18214
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"mock-model","messages":[{"role":"user","content":"tap the settings icon"}],"temperature":0}'
LUA
# CPU of a process tree so far, ns: every thread of the process and of its children.
cpu_ns() {
  local total=0 p t
  for p in "$1" $(pgrep -P "$1" || true); do
    for t in /proc/"$p"/task/*/schedstat; do
      [ -r "$t" ] && total=$((total + $(cut -d' ' -f1 "$t")))
    done
  done
  echo "$total"
}
declare -A cpu_us rps
measure() {  # name port pid
  local name=$1 port=$2 before after requests
  before=$(cpu_ns "$3")
  wrk -t1 -c32 -d"${SECONDS_CPU}s" -s "$work/post.lua" "http://127.0.0.1:$port/v1/chat/completions" > "$work/wrk-$name.txt"
  after=$(cpu_ns "$3")
  requests=$(awk '/requests in/ {print $1}' "$work/wrk-$name.txt")
  rps[$name]=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/wrk-$name.txt")
  cpu_us[$name]=$(python3 -c "print('%.1f' % (($after - $before) / 1e3 / $requests))")
}
curl -s -o /dev/null -H 'content-type: application/json' -d '{"model":"mock-model","messages":[{"role":"user","content":"tap the settings icon"}],"temperature":0}' http://127.0.0.1:18213/v1/chat/completions
measure edge 18212 "$edge_cpu"
measure gateway 18214 "$gw_cpu"
measure nginx 18211 "$nginx_proxy"
measure edge-hits 18213 "$edge_hit"

sha=$(python3 - <<'PY'
import hashlib, time
data = b"Q" * (4 << 20)
best = min((lambda t0: (hashlib.sha256(data).digest(), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(20))
print("%.3f" % (best * 1000))
PY
)

{
  echo "## Answer cache: a hit on a 4 MB request (\`bench/cache.sh\`)"
  echo
  echo "One connection to \`nines edge\` (1 worker) on loopback; bodies of $((big / 1048576)) MiB of base64 image plus a prompt; $HITS hits per row (the cache counted $((hits_after - hits_before)) hits for the three 4 MB rows). Milliseconds from the client's last byte written to the answer's header."
  echo
  echo "| request | answered | p50 ms | p90 ms | p99 ms | max ms |"
  echo "|---|---|---|---|---|---|"
  for row in "hit-whole:4 MB at once, whole answer, hit" "hit-stream:4 MB at once, streamed answer, hit" \
             "hit-paced:4 MB at 1,000 MB/s, whole answer, hit" "hit-small:small request, hit" \
             "off-whole:4 MB at once, cache off (mock-llm answers)" \
             "off-paced:4 MB at 1,000 MB/s, cache off (mock-llm answers)"; do
    f=${row%%:*}
    echo "| ${row#*:} | $(ok "$f") | $(ms "$f" p50) | $(ms "$f" p90) | $(ms "$f" p99) | $(ms "$f" max) |"
  done
  echo
  echo "SHA-256 of 4 MB on this machine (Python's hashlib, OpenSSL): $sha ms — what a key hashed after the last byte would add to every 4 MB request."
  echo
  echo "## The edge's CPU per request (\`bench/cache.sh\`)"
  echo
  echo "wrk -t1 -c32 -d${SECONDS_CPU}s, a small chat request, to nginx answering a fixed body; one worker each; CPU (user + system) of the proxy's process per request."
  echo
  echo "| through | requests/s | CPU µs per request |"
  echo "|---|---|---|"
  echo "| nines edge (cache off) | ${rps[edge]} | ${cpu_us[edge]} |"
  echo "| nines gateway | ${rps[gateway]} | ${cpu_us[gateway]} |"
  echo "| nginx | ${rps[nginx]} | ${cpu_us[nginx]} |"
  echo "| nines edge, every request a cache hit | ${rps[edge-hits]} | ${cpu_us[edge-hits]} |"
} | tee "$out"
