#!/usr/bin/env bash
# `make bench`: every performance number in docs/benchmarks.md, measured on loopback in one run.
#   1. small requests: wrk against the upstream directly, through nginx (1 worker, keep-alive
#      upstream), through HAProxy (1 thread) and through nines (1 worker), the same load for each;
#   2. 1,000 concurrent streams at 20 tokens/s, direct, through nginx (proxy_buffering off) and
#      through nines: the delay each adds to every event, and nines' memory;
#   3. the core issue's acceptance run: 10,000 streamed requests over three upstreams, one
#      refusing connections, one answering 503 half of the time, one healthy;
#   4. unbroken streams: 10,000 streamed requests over three upstreams that each reset 10% of
#      their streams at a random token; success and the gap a client sees at a resume;
#   5. failover: the upstream carrying the traffic (the primary tier) killed with SIGKILL under an
#      open-loop load, for whole answers and for streams: failed requests and the time from the
#      kill to the last client-visible failure;
#   6. hedging: p99 time to first token against a pool where one upstream is slow, without and with
#      hedging.
# Every load is bounded in time and count, and goes only to 127.0.0.1. Results are printed as
# Markdown and written to bench/results/latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/build/nines
work=$(mktemp -d /tmp/nines-bench.XXXXXX)
out=bench/results/latest.md
mkdir -p bench/results

DURATION=${DURATION:-10}      # seconds per wrk run
CONNECTIONS=${CONNECTIONS:-50}
STREAMS=${STREAMS:-1000}
ACCEPT_REQUESTS=${ACCEPT_REQUESTS:-10000}

# shellcheck source=bench/lib.sh
source bench/lib.sh

# --- the upstream for small requests: nginx answering a fixed JSON body, one worker -----------
start_static_upstream "$work/up" 19101

# --- nginx and HAProxy as the proxies (bench/lib.sh), as an operator would set them ----------
start_nginx_proxy "$work/px" 19102 19101
start_haproxy "$work/ha" 19104 19101

"$bin" gateway --admin-listen 127.0.0.1:0 --upstream http://127.0.0.1:19101/v1 --listen 127.0.0.1:19103 --workers 1 \
  --access-log off 2>"$work/nines.log" & pids+=($!)
nines_pid=$!
wait_port 19101; wait_port 19102; wait_port 19103; wait_port 19104

cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"mock-model","messages":[{"role":"user","content":"tap the settings icon"}],"temperature":0}'
LUA

declare -A rps p50 p99 hedges_sent hedges_won
run_wrk() {  # name url [script]
  local name=$1 url=$2 script=${3:-}
  local args=(-t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  wrk "${args[@]}" "$url" > "$work/wrk-$name.txt"
  rps[$name]=$(awk '/Requests\/sec/ {print $2}' "$work/wrk-$name.txt")
  p50[$name]=$(awk '$1=="50%" {print $2}' "$work/wrk-$name.txt")
  p99[$name]=$(awk '$1=="99%" {print $2}' "$work/wrk-$name.txt")
  local errors
  errors=$(awk '/Non-2xx|Socket errors/' "$work/wrk-$name.txt")
  [ -n "$errors" ] && echo "$name: $errors" >&2
  return 0
}

for kind in get post; do
  script=""; path=/v1/models
  [ $kind = post ] && script="$work/post.lua" && path=/v1/chat/completions
  run_wrk "direct-$kind" "http://127.0.0.1:19101$path" "$script"
  run_wrk "nginx-$kind" "http://127.0.0.1:19102$path" "$script"
  run_wrk "haproxy-$kind" "http://127.0.0.1:19104$path" "$script"
  run_wrk "nines-$kind" "http://127.0.0.1:19103$path" "$script"
done
nines_rss=$(awk '/VmHWM/ {print $2}' /proc/$nines_pid/status)

# --- 1,000 concurrent streams at 20 tokens/s ----------------------------------------------------
"$bin" mock-llm --listen 127.0.0.1:19111 --workers 1 --tokens 20 --faults tpot_ms=50 --stamp \
  2>"$work/mock-s.log" & pids+=($!)
wait_port 19111
"$bin" gateway --admin-listen 127.0.0.1:0 --upstream http://127.0.0.1:19111/v1 --listen 127.0.0.1:19112 --workers 1 \
  --access-log off 2>"$work/nines-s.log" & pids+=($!)
stream_gw=$!
start_nginx "$work/sx" '
  upstream models { server 127.0.0.1:19111; keepalive 1024; }
  server {
    listen 127.0.0.1:19113 backlog=4096;
    location / {
      proxy_pass http://models;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }'
wait_port 19112; wait_port 19113
bench_streams() {  # url json
  "$bin" bench --url "$1" --requests $((STREAMS * 10)) --concurrency "$STREAMS" --stream true \
    --answer-tokens 20 --max-seconds 60 --json "$2" > "$2.txt"
}
bench_streams http://127.0.0.1:19111 "$work/streams-direct.json"
bench_streams http://127.0.0.1:19113 "$work/streams-nginx.json"
bench_streams http://127.0.0.1:19112 "$work/streams-nines.json"
stream_rss=$(awk '/VmHWM/ {print $2}' /proc/$stream_gw/status)
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d'+sys.argv[2]))" "$@"; }

# --- acceptance: 10,000 streams over a refusing, a 503-half-the-time and a healthy upstream -----
"$bin" mock-llm --listen 127.0.0.1:19121 --refuse 2>/dev/null & pids+=($!)
"$bin" mock-llm --listen 127.0.0.1:19122 --faults error_rate=0.5 2>/dev/null & pids+=($!)
"$bin" mock-llm --listen 127.0.0.1:19123 2>/dev/null & pids+=($!)
wait_port 19122; wait_port 19123
"$bin" gateway --admin-listen 127.0.0.1:0 --upstream http://127.0.0.1:19121/v1 --upstream http://127.0.0.1:19122/v1 \
  --upstream http://127.0.0.1:19123/v1 --listen 127.0.0.1:19124 --access-log off \
  2>"$work/nines-a.log" & pids+=($!)
wait_port 19124
"$bin" bench --url http://127.0.0.1:19124 --requests "$ACCEPT_REQUESTS" --concurrency 64 \
  --stream true --max-seconds 120 --json "$work/accept.json" > "$work/accept.txt" || true
errors_503=$(curl -s http://127.0.0.1:19122/mock/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["errors_503"])')

# --- unbroken streams: 10,000 streams over three upstreams that each break 10% of their streams --
for port in 19131 19132 19133; do
  "$bin" mock-llm --listen 127.0.0.1:$port --faults break_rate=0.1,ttft_ms=20,tpot_ms=5 --seed $port \
    2>/dev/null & pids+=($!)
done
wait_port 19131; wait_port 19132; wait_port 19133
"$bin" gateway --admin-listen 127.0.0.1:0 --upstream http://127.0.0.1:19131/v1 --upstream http://127.0.0.1:19132/v1 \
  --upstream http://127.0.0.1:19133/v1 --listen 127.0.0.1:19134 --access-log "$work/resume.log" \
  2>"$work/nines-r.log" & pids+=($!)
resume_gw=$!
wait_port 19134
"$bin" bench --url http://127.0.0.1:19134 --requests "$ACCEPT_REQUESTS" --concurrency 64 \
  --stream true --max-seconds 180 --json "$work/resume.json" > "$work/resume.txt" || true
kill -TERM "$resume_gw"; wait "$resume_gw" || true  # a drained gateway has flushed its log
resume_stats=$(python3 - "$work/resume.log" <<'PY'
import json, sys
gaps = []
resumed = 0
for line in open(sys.argv[1]):
    entry = json.loads(line)
    log = entry.get("resume_log", [])
    resumed += 1 if log else 0
    gaps += [r["gap_ms"] for r in log if "gap_ms" in r]
gaps.sort()
pick = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))] if gaps else 0
print(f"{resumed} {len(gaps)} {pick(0.5):.2f} {pick(0.99):.2f} {gaps[-1] if gaps else 0:.2f}")
PY
)
read -r resumed_streams resumes gap50 gap99 gapmax <<< "$resume_stats"

# --- failover: kill -9 of the upstream carrying the traffic ------------------------------------
FAILOVER_RATE=${FAILOVER_RATE:-200}
failover_run() {  # stream(true|false) report
  "$bin" mock-llm --listen 127.0.0.1:19141 --faults ttft_ms=20,tpot_ms=10 2>/dev/null & pids+=($!)
  local primary=$!
  "$bin" mock-llm --listen 127.0.0.1:19142 --faults ttft_ms=20,tpot_ms=10 2>/dev/null & pids+=($!)
  local backup=$!
  wait_port 19141; wait_port 19142
  cat > "$work/failover.toml" <<TOML
[gateway]
listen = "127.0.0.1:19143"
access_log = "off"
[admin]
listen = "127.0.0.1:19943"
[[upstreams]]
name = "primary"
url = "http://127.0.0.1:19141/v1"
priority = 0
[[upstreams]]
name = "backup"
url = "http://127.0.0.1:19142/v1"
priority = 1
TOML
  "$bin" gateway --config "$work/failover.toml" 2>"$work/nines-f.log" & pids+=($!)
  local gw=$!
  wait_port 19143
  "$bin" bench --url http://127.0.0.1:19143 --rate "$FAILOVER_RATE" --duration 10 \
    --requests $((FAILOVER_RATE * 10)) --connections 1000 \
    --stream "$1" --json "$2" > "$2.txt" 2>/dev/null &
  local load=$!
  sleep 3
  kill -9 "$primary"
  date +%s.%N > "$2.kill"
  wait "$load" || true
  curl -s http://127.0.0.1:19943/status > "$2.status"
  kill -TERM "$gw" "$backup" 2>/dev/null; wait "$gw" "$backup" 2>/dev/null || true
}
failover_run false "$work/failover-whole.json"
failover_run true "$work/failover-stream.json"

# --- hedging: one slow upstream among three --------------------------------------------------
HEDGE_REQUESTS=${HEDGE_REQUESTS:-1500}
"$bin" mock-llm --listen 127.0.0.1:19151 --faults ttft_ms=20,tpot_ms=5 2>/dev/null & pids+=($!)
"$bin" mock-llm --listen 127.0.0.1:19152 --faults ttft_ms=20,tpot_ms=5 2>/dev/null & pids+=($!)
"$bin" mock-llm --listen 127.0.0.1:19153 --faults ttft_ms=1000,tpot_ms=5 2>/dev/null & pids+=($!)
wait_port 19151; wait_port 19152; wait_port 19153
for hedge in off on; do
  port=19154; [ $hedge = on ] && port=19155
  {
    printf '[gateway]\nlisten = "127.0.0.1:%s"\naccess_log = "off"\n' "$port"
    printf '[admin]\nlisten = "127.0.0.1:%s"\n' $((port + 800))
    [ $hedge = on ] && printf '[hedge]\nroutes = ["chat"]\n'
    for up in 19151 19152 19153; do printf '[[upstreams]]\nurl = "http://127.0.0.1:%s/v1"\n' "$up"; done
  } > "$work/hedge-$hedge.toml"
  "$bin" gateway --config "$work/hedge-$hedge.toml" 2>"$work/nines-h-$hedge.log" & pids+=($!)
  wait_port "$port"
  "$bin" bench --url "http://127.0.0.1:$port" --rate 50 --requests "$HEDGE_REQUESTS" \
    --duration $((HEDGE_REQUESTS / 50)) --connections 500 --stream true \
    --json "$work/hedge-$hedge.json" > "$work/hedge-$hedge.txt" 2>/dev/null || true
  metric() { curl -s "http://127.0.0.1:$((port + 800))/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
  hedges_sent[$hedge]=$(metric 'nines_hedges_total{result="sent"}'); hedges_sent[$hedge]=${hedges_sent[$hedge]:-0}
  hedges_won[$hedge]=$(metric 'nines_hedges_total{result="won"}'); hedges_won[$hedge]=${hedges_won[$hedge]:-0}
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# When a run had failures: how they failed (nines bench's kinds) and the gateway's warnings, so
# that a failure in the report can be understood without rerunning.
failures_line() {  # bench.json gateway.log
  python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
if d["failed"]:
    print()
    print("Failed: " + ", ".join(f"{k} × {v}" for k, v in d["failures"].items()) +
          f" (first at {d['first_failure_s']:.2f} s, last at {d['last_failure_s']:.2f} s). Gateway warnings:")
    print()
    print("```")
    lines = [l.rstrip() for l in open(sys.argv[2], errors="replace") if "warn" in l or "error" in l]
    print("\n".join(lines[:10]) or "(none)")
    print("```")
PY
}
{
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)),"
  echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), HAProxy $(haproxy -v | awk 'NR==1 {print $3}'), wrk ${DURATION}s with 1 thread and ${CONNECTIONS} connections per run."
  echo
  echo "### Small requests (upstream: nginx returning a fixed JSON body)"
  echo
  echo "| request | path | requests/s | p50 ms | p99 ms | nines/nginx throughput | nines/nginx p99 |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for kind in get post; do
    label="GET /v1/models"; [ $kind = post ] && label="POST /v1/chat/completions"
    for who in direct nginx haproxy nines; do
      n="$who-$kind"
      r1="" r2=""
      if [ $who = nines ]; then
        r1=$(ratio "${rps[$n]}" "${rps[nginx-$kind]}")
        r2=$(ratio "$(to_ms "${p99[$n]}")" "$(to_ms "${p99[nginx-$kind]}")")
      fi
      echo "| $label | $who | ${rps[$n]} | $(to_ms "${p50[$n]}") | $(to_ms "${p99[$n]}") | $r1 | $r2 |"
    done
  done
  echo
  echo "nines peak resident memory during these runs: $((nines_rss / 1024)) MiB."
  echo
  echo "### ${STREAMS} concurrent streams at 20 tokens/s (mock-llm --tokens 20 --faults tpot_ms=50)"
  echo
  echo "| path | streams | succeeded | event delay p50 ms | event delay p99 ms | ttfb p99 ms |"
  echo "|---|---:|---:|---:|---:|---:|"
  for who in direct nginx nines; do
    f="$work/streams-$who.json"
    echo "| $who | $(jget "$f" "['requests']") | $(jget "$f" "['succeeded']") | $(printf %.3f "$(jget "$f" "['event_delay_ms']['p50']")") | $(printf %.3f "$(jget "$f" "['event_delay_ms']['p99']")") | $(printf %.2f "$(jget "$f" "['ttfb_ms']['p99']")") |"
  done
  d99=$(jget "$work/streams-direct.json" "['event_delay_ms']['p99']")
  x99=$(jget "$work/streams-nginx.json" "['event_delay_ms']['p99']")
  n99=$(jget "$work/streams-nines.json" "['event_delay_ms']['p99']")
  echo
  echo "Added delay per event at p99 (proxy minus direct): nines $(awk -v a="$n99" -v b="$d99" 'BEGIN { printf "%.3f", a - b }') ms, nginx $(awk -v a="$x99" -v b="$d99" 'BEGIN { printf "%.3f", a - b }') ms. nines peak resident memory: $((stream_rss / 1024)) MiB."
  echo
  echo "### Acceptance: ${ACCEPT_REQUESTS} streamed requests, upstreams refusing / 503 half the time / healthy"
  echo
  echo "| requests | succeeded with exact content | success rate | 503s absorbed | ttfb p50 ms | ttfb p99 ms | req/s |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  f="$work/accept.json"
  echo "| $(jget "$f" "['requests']") | $(jget "$f" "['succeeded']") | $(printf %.4f "$(jget "$f" "['success_rate']")") | $errors_503 | $(printf %.2f "$(jget "$f" "['ttfb_ms']['p50']")") | $(printf %.2f "$(jget "$f" "['ttfb_ms']['p99']")") | $(printf %.0f "$(jget "$f" "['requests_per_second']")") |"
  failures_line "$f" "$work/nines-a.log"
  echo
  echo "### Unbroken streams: ${ACCEPT_REQUESTS} streamed requests, three upstreams each resetting 10% of their streams at a random token"
  echo
  echo "(mock-llm --faults break_rate=0.1,ttft_ms=20,tpot_ms=5; 24-token answers; the gap is the time between the last event the client got before a break and the first event of the continuation, from the gateway's access log.)"
  echo
  echo "| requests | succeeded with exact content | success rate | streams resumed | resumes | gap p50 ms | gap p99 ms | gap max ms |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
  f="$work/resume.json"
  echo "| $(jget "$f" "['requests']") | $(jget "$f" "['succeeded']") | $(printf %.4f "$(jget "$f" "['success_rate']")") | $resumed_streams | $resumes | $gap50 | $gap99 | $gapmax |"
  failures_line "$f" "$work/nines-r.log"
  echo
  echo "### Failover: kill -9 of the upstream carrying the traffic (priority 0), backup in priority 1"
  echo
  echo "(${FAILOVER_RATE} requests/s open loop for 10 s, mock-llm --faults ttft_ms=20,tpot_ms=10, the primary killed at 3 s; default gateway settings: probes every 3 s.)"
  echo
  echo "| answers | requests | failed | kill → last client-visible failure | TTFT p50 ms | TTFT p99 ms | TTFT max ms | tier switches |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for kind in whole stream; do
    f="$work/failover-$kind.json"
    kill_at=$(cat "$f.kill")
    last=$(jget "$f" "['last_failure_s']")
    gap="none failed"
    if [ "$last" != "None" ]; then
      gap=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(f\"{d['last_failure_s'] - 3:.2f} s\")" "$f")
    fi
    switches=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['tier']['switches'])" "$f.status")
    echo "| $kind | $(jget "$f" "['requests']") | $(jget "$f" "['failed']") | $gap | $(printf %.1f "$(jget "$f" "['ttft_ms']['p50']")") | $(printf %.1f "$(jget "$f" "['ttft_ms']['p99']")") | $(printf %.1f "$(jget "$f" "['ttft_ms']['max']")") | $switches |"
  done
  echo
  echo "### Hedging: one slow upstream (TTFT 1 s) among three (TTFT 20 ms)"
  echo
  echo "(${HEDGE_REQUESTS} streamed requests at 50/s through a gateway without and with \`[hedge] routes = [\"chat\"]\` (delay: the upstream's observed p95 time to first byte).)"
  echo
  echo "| hedging | requests | succeeded | TTFT p50 ms | TTFT p90 ms | TTFT p99 ms | TTFT max ms | hedges sent | hedges won |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for hedge in off on; do
    f="$work/hedge-$hedge.json"
    echo "| $hedge | $(jget "$f" "['requests']") | $(jget "$f" "['succeeded']") | $(printf %.1f "$(jget "$f" "['ttft_ms']['p50']")") | $(printf %.1f "$(jget "$f" "['ttft_ms']['p90']")") | $(printf %.1f "$(jget "$f" "['ttft_ms']['p99']")") | $(printf %.1f "$(jget "$f" "['ttft_ms']['max']")") | ${hedges_sent[$hedge]} | ${hedges_won[$hedge]} |"
  done
} | tee "$out"
