#!/usr/bin/env bash
# The lean-path benchmark (issue 13): what each proxy costs per request and per relayed event, side
# by side in one run on one machine. The headline is CPU per request, not requests/s: the load
# generator, the upstream and the proxy share the cores.
#
#   bench/lean.sh            (knobs: ROUNDS 5, DURATION 5 s, CONNECTIONS 32, STREAMS 1000,
#                              STREAM_REQUESTS 5000, RATE 2000, IDLE_CONNECTIONS 2000)
#
# Method, per row:
#   - subjects: the upstream directly, nginx (1 worker, keep-alive upstream), HAProxy (1 thread,
#     http-reuse always) and nines (1 worker, its defaults: health probes, retries, metrics), plus
#     nines with its access log written to a file;
#   - ROUNDS rounds, the subjects' order reversed every other round, an unmeasured warm-up run of
#     each subject in every round;
#   - CPU: the proxy's whole process tree (every thread of every process) from
#     /proc/PID/task/TID/schedstat, in ns, before and after each run; per request = CPU / requests;
#   - requests/s, p50 and p99 from wrk --latency;
#   - medians over the rounds with their spread (min-max); the run is marked unreadable when
#     nginx's requests/s moves more than 15% between rounds;
#   - after the rounds, one more run per subject under `perf stat` (Debian's linux-perf):
#     syscalls, context switches and page faults per request.
# Rows: GET /v1/models, POST chat/completions (small, and with a 2 MB body), 1,000 concurrent
# streams at 20 tokens/s (CPU per relayed event and the added event delay at p99), a fixed-rate
# open-loop run (`nines bench --rate`: latency without coordinated omission), and memory (bytes per
# idle client connection, per live stream). TLS termination is bench/tls.sh.
#
# Loopback only; every load is bounded in count and time; only the processes started here are
# stopped, by their ids.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/build/nines
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-32}
STREAMS=${STREAMS:-1000}
STREAM_REQUESTS=${STREAM_REQUESTS:-5000}
RATE=${RATE:-2000}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-2000}
out=${OUT:-bench/results/lean.md}
work=$(mktemp -d /tmp/nines-lean.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh

# --- subjects ----------------------------------------------------------------------------------
start_static_upstream "$work/up" 19501
start_nginx_proxy "$work/px" 19502 19501
start_haproxy "$work/ha" 19503 19501
"$bin" gateway --admin-listen 127.0.0.1:0 --upstream http://127.0.0.1:19501/v1 \
  --listen 127.0.0.1:19504 --workers 1 --access-log off 2>"$work/nines.log" & pids+=($!)
nines_pid=$!
"$bin" gateway --admin-listen 127.0.0.1:0 --upstream http://127.0.0.1:19501/v1 \
  --listen 127.0.0.1:19505 --workers 1 --access-log "$work/access.log" 2>"$work/nines-log.log" &
pids+=($!)
nines_log_pid=$!
for p in 19501 19502 19503 19504 19505; do wait_port "$p"; done
up_pid=$(cat "$work/up/nginx.pid")
nginx_pid=$(cat "$work/px/nginx.pid")

declare -A port_of=([direct]=19501 [nginx]=19502 [haproxy]=19503 [nines]=19504 [nines-log]=19505)
declare -A pid_of=([direct]=$up_pid [nginx]=$nginx_pid [haproxy]=$haproxy_pid [nines]=$nines_pid
                   [nines-log]=$nines_log_pid)
subjects=(direct nginx haproxy nines nines-log)

# CPU of a process tree so far, ns: every thread of the process and of its children.
tree_pids() { echo "$1"; pgrep -P "$1" || true; }
cpu_ns() {
  local total=0 p t
  for p in $(tree_pids "$1"); do
    for t in /proc/"$p"/task/*/schedstat; do
      [ -r "$t" ] && total=$((total + $(cut -d' ' -f1 "$t")))
    done
  done
  echo "$total"
}

cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"mock-model","messages":[{"role":"user","content":"tap the settings icon"}],"temperature":0}'
LUA
cat > "$work/post2m.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"mock-model","messages":[{"role":"user","content":"' .. string.rep("a", 2 * 1024 * 1024) .. '"}]}'
LUA
declare -A path_of=([get]=/v1/models [post]=/v1/chat/completions [post2m]=/v1/chat/completions)
declare -A script_of=([get]="" [post]="$work/post.lua" [post2m]="$work/post2m.lua")
declare -A conns_of=([get]=$CONNECTIONS [post]=$CONNECTIONS [post2m]=4)
declare -A title_of=([get]="GET /v1/models" [post]="POST /v1/chat/completions (small)"
                     [post2m]="POST /v1/chat/completions (2 MB body)")

# One wrk run against a subject: "rps p50 p99 cpu_us_per_request".
run_one() {  # subject kind seconds
  local s=$1 kind=$2 secs=$3
  local args=(-t1 -c"${conns_of[$kind]}" -d"${secs}s" --latency)
  [ -n "${script_of[$kind]}" ] && args+=(-s "${script_of[$kind]}")
  local before after
  before=$(cpu_ns "${pid_of[$s]}")
  wrk "${args[@]}" "http://127.0.0.1:${port_of[$s]}${path_of[$kind]}" > "$work/wrk.txt"
  after=$(cpu_ns "${pid_of[$s]}")
  if grep -q "Non-2xx\|Socket errors" "$work/wrk.txt"; then
    echo "errors in a run of $s ($kind):" >&2
    grep "Non-2xx\|Socket errors" "$work/wrk.txt" >&2
  fi
  local n rps p50 p99
  n=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(to_ms "$(awk '$1=="50%" {print $2}' "$work/wrk.txt")")
  p99=$(to_ms "$(awk '$1=="99%" {print $2}' "$work/wrk.txt")")
  awk -v r="$rps" -v a="$p50" -v b="$p99" -v t=$((after - before)) -v n="$n" \
    'BEGIN { printf "%s %s %s %.2f\n", r, a, b, t / 1000 / n }'
}

{
echo "# The lean path: CPU per request and per event, side by side"
echo
echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)),"
echo "$(nginx -v 2>&1 | sed 's/.*\///' | sed 's/^/nginx /'), $(haproxy -v | head -1 | awk '{print "HAProxy", $3}'), nines $(git rev-parse --short HEAD)."
echo "Command: \`bench/lean.sh\` (ROUNDS=$ROUNDS, DURATION=${DURATION}s, wrk -t1 -c$CONNECTIONS; -c4 for the 2 MB body)."
echo
} > "$out"

# --- small requests and the 2 MB body: rounds ---------------------------------------------------
declare -A rps cpu p50 p99
unreadable=""
for kind in get post post2m; do
  for round in $(seq 1 "$ROUNDS"); do
    order=("${subjects[@]}")
    if [ $((round % 2)) -eq 0 ]; then
      order=(nines-log nines haproxy nginx direct)
    fi
    for s in "${order[@]}"; do
      run_one "$s" "$kind" 1 > /dev/null  # warm-up
      read -r r a b c <<< "$(run_one "$s" "$kind" "$DURATION")"
      rps[$kind,$s]+="$r "; p50[$kind,$s]+="$a "; p99[$kind,$s]+="$b "; cpu[$kind,$s]+="$c "
    done
  done
  # shellcheck disable=SC2086
  spread=$(printf '%s\n' ${rps[$kind,nginx]} | sort -g | awk 'NR==1 {lo=$1} {hi=$1} END { printf "%.3f", hi / lo }')
  if awk -v s="$spread" 'BEGIN { exit !(s > 1.15) }'; then
    unreadable+=" $kind"
  fi
done

{
echo "## Small requests and a 2 MB body (upstream: nginx returning a fixed JSON body)"
echo
echo "Medians over $ROUNDS rounds with their spread (min–max). CPU is the proxy's whole process tree"
echo "(for \"direct\": the upstream's own)."
echo
echo "| request | subject | requests/s | p50 ms | p99 ms | CPU µs per request |"
echo "|---|---|---:|---:|---:|---:|"
for kind in get post post2m; do
  for s in "${subjects[@]}"; do
    # shellcheck disable=SC2086
    echo "| ${title_of[$kind]} | $s | $(median_spread ${rps[$kind,$s]}) | $(median ${p50[$kind,$s]}) | $(median ${p99[$kind,$s]}) | $(median_spread ${cpu[$kind,$s]}) |"
  done
done
echo
for kind in get post post2m; do
  # shellcheck disable=SC2086
  n_cpu=$(median ${cpu[$kind,nines]}); g_cpu=$(median ${cpu[$kind,nginx]}); h_cpu=$(median ${cpu[$kind,haproxy]})
  # shellcheck disable=SC2086
  n_rps=$(median ${rps[$kind,nines]}); g_rps=$(median ${rps[$kind,nginx]})
  awk -v k="${title_of[$kind]}" -v a="$n_cpu" -v b="$g_cpu" -v h="$h_cpu" -v r="$n_rps" -v q="$g_rps" \
    'BEGIN { printf "- %s: nines/nginx CPU per request %.2f× (HAProxy/nginx %.2f×), requests/s %.2f×\n", k, a / b, h / b, r / q }'
done
if [ -n "$unreadable" ]; then
  echo
  echo "**Unreadable:** nginx moved more than 15% between rounds for:$unreadable (the machine was busy)."
fi
echo
} >> "$out"

# --- syscalls, context switches, page faults per request (perf stat, one more run each) ---------
if command -v perf > /dev/null; then
  {
  echo "### Per request, under perf stat (POST small, one ${DURATION}s run each)"
  echo
  echo "| subject | syscalls | context switches | page faults |"
  echo "|---|---:|---:|---:|"
  } >> "$out"
  for s in nginx haproxy nines nines-log; do
    pidlist=$(tree_pids "${pid_of[$s]}" | paste -sd, -)
    perf stat -x, -e raw_syscalls:sys_enter,context-switches,page-faults -p "$pidlist" \
      -o "$work/perf.txt" -- sleep $((DURATION + 1)) 2>/dev/null &
    perf_pid=$!
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$work/post.lua" \
      "http://127.0.0.1:${port_of[$s]}/v1/chat/completions" > "$work/wrk.txt"
    wait "$perf_pid" || true
    n=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
    awk -F, -v s="$s" -v n="$n" '
      /raw_syscalls:sys_enter/ { sc = $1 } /context-switches/ { cs = $1 } /page-faults/ { pf = $1 }
      END { printf "| %s | %.2f | %.3f | %.4f |\n", s, sc / n, cs / n, pf / n }' "$work/perf.txt" >> "$out"
  done
  echo >> "$out"
fi

# --- 1,000 concurrent streams at 20 tokens/s ----------------------------------------------------
"$bin" mock-llm --listen 127.0.0.1:19511 --workers 1 --tokens 20 --faults tpot_ms=50 --stamp \
  2>"$work/mock-s.log" & pids+=($!)
wait_port 19511
"$bin" gateway --admin-listen 127.0.0.1:0 --upstream http://127.0.0.1:19511/v1 \
  --listen 127.0.0.1:19512 --workers 1 --access-log off 2>"$work/nines-s.log" & pids+=($!)
stream_nines=$!
start_nginx "$work/sx" '
  upstream models { server 127.0.0.1:19511; keepalive 1024; }
  server {
    listen 127.0.0.1:19513 backlog=4096;
    location / {
      proxy_pass http://models;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }'
wait_port 19512; wait_port 19513
stream_nginx=$(cat "$work/sx/nginx.pid")
stream_base_kb=$(awk '/VmRSS/ {print $2}' "/proc/$stream_nines/status")
declare -A s_port=([direct]=19511 [nginx]=19513 [nines]=19512)
declare -A s_pid=([nginx]=$stream_nginx [nines]=$stream_nines)
declare -A s_cpu s_d99 s_ok
stream_run() {  # subject -> "cpu_us_per_event delay_p99 succeeded"
  local s=$1 before=0 after=0
  [ "$s" != direct ] && before=$(cpu_ns "${s_pid[$s]}")
  "$bin" bench --url "http://127.0.0.1:${s_port[$s]}" --requests "$STREAM_REQUESTS" \
    --concurrency "$STREAMS" --stream true --answer-tokens 20 --max-seconds 120 \
    --json "$work/s.json" > "$work/s.txt" 2>&1
  [ "$s" != direct ] && after=$(cpu_ns "${s_pid[$s]}")
  python3 - "$work/s.json" $((after - before)) <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
events = d["requests"] * 22  # a role chunk, 20 tokens, the finish chunk ([DONE] rides with it)
print("%.2f %s %d" % (int(sys.argv[2]) / 1000 / events, d["event_delay_ms"]["p99"], d["succeeded"]))
PY
}
for round in $(seq 1 3); do
  order=(direct nginx nines)
  [ $((round % 2)) -eq 0 ] && order=(nines nginx direct)
  for s in "${order[@]}"; do
    read -r c d ok <<< "$(stream_run "$s")"
    s_cpu[$s]+="$c "; s_d99[$s]+="$d "; s_ok[$s]+="$ok "
  done
done
stream_rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$stream_nines/status")
{
echo "## $STREAMS concurrent streams at 20 tokens/s (mock-llm --tokens 20 --faults tpot_ms=50)"
echo
echo "$STREAM_REQUESTS streamed requests per run, 3 rounds in alternating order, medians (spread). CPU per"
echo "event: the proxy's CPU over the run divided by the events relayed (22 per stream); the added"
echo "delay is the proxy's event delay p99 minus the direct one in the same round's median."
echo
echo "| subject | succeeded per run | CPU µs per event | event delay p99 ms |"
echo "|---|---:|---:|---:|"
for s in direct nginx nines; do
  # shellcheck disable=SC2086
  cpu_cell=$([ "$s" = direct ] && echo "—" || median_spread ${s_cpu[$s]})
  # shellcheck disable=SC2086
  echo "| $s | $(median ${s_ok[$s]}) | $cpu_cell | $(median_spread ${s_d99[$s]}) |"
done
echo
# shellcheck disable=SC2086
awk -v a="$(median ${s_cpu[nines]})" -v b="$(median ${s_cpu[nginx]})" -v n="$(median ${s_d99[nines]})" \
    -v g="$(median ${s_d99[nginx]})" -v d="$(median ${s_d99[direct]})" \
  'BEGIN { printf "- nines/nginx CPU per event %.2f× (goal ≤ 1.5×); added delay p99: nines %.2f ms, nginx %.2f ms\n", a / b, n - d, g - d }'
awk -v a="$stream_base_kb" -v b="$stream_rss_kb" -v n="$STREAMS" \
  'BEGIN { printf "- nines resident memory: %d KiB before, %d KiB at its peak: %.0f bytes per live stream\n", a, b, (b - a) * 1024 / n }'
echo
} >> "$out"

# --- open loop: latency without coordinated omission -------------------------------------------
"$bin" mock-llm --listen 127.0.0.1:19521 --workers 1 2>"$work/mock-o.log" & pids+=($!)
wait_port 19521
"$bin" gateway --admin-listen 127.0.0.1:0 --upstream http://127.0.0.1:19521/v1 \
  --listen 127.0.0.1:19522 --workers 1 --access-log off 2>"$work/nines-o.log" & pids+=($!)
start_nginx "$work/ox" '
  upstream models { server 127.0.0.1:19521; keepalive 128; }
  server {
    listen 127.0.0.1:19523 backlog=4096;
    location / { proxy_pass http://models; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }'
wait_port 19522; wait_port 19523
{
echo "## Open loop: $RATE requests/s for 10 s (nines bench --rate, whole answers from mock-llm)"
echo
echo "Requests are sent on schedule whether or not earlier ones finished, so a stall shows as the"
echo "latency of every request it delays (no coordinated omission)."
echo
echo "| subject | requests | succeeded | total p50 ms | total p99 ms | total max ms |"
echo "|---|---:|---:|---:|---:|---:|"
} >> "$out"
declare -A o_port=([direct]=19521 [nginx]=19523 [nines]=19522)
for s in direct nginx nines; do
  "$bin" bench --url "http://127.0.0.1:${o_port[$s]}" --rate "$RATE" --duration 10 --requests $((RATE * 10)) \
    --concurrency 256 \
    --stream false --max-seconds 30 --json "$work/o.json" > "$work/o.txt" 2>&1
  python3 - "$work/o.json" "$s" >> "$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); t = d["total_ms"]
print("| %s | %d | %d | %s | %s | %s |" % (sys.argv[2], d["requests"], d["succeeded"], t["p50"], t["p99"], t["max"]))
PY
done
echo >> "$out"

# --- memory: per idle client connection, per live stream ----------------------------------------
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
before=$(rss_kb "$nines_pid")
python3 - "$IDLE_CONNECTIONS" 19504 "$nines_pid" > "$work/idle.txt" <<'PY'
import socket, sys, time
n, port, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")  # one answer, then idle keep-alive
    socks.append(s)
for s in socks:
    s.settimeout(5)
    s.recv(65536)
rss = int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1])
print(rss)
for s in socks:
    s.close()
PY
during=$(cat "$work/idle.txt")
{
echo "## Memory"
echo
awk -v a="$before" -v b="$during" -v n="$IDLE_CONNECTIONS" \
  'BEGIN { printf "- per idle keep-alive client connection (after one request): %.0f bytes (%d connections: resident %d → %d KiB)\n", (b - a) * 1024 / n, n, a, b }'
echo "- per live stream: in the stream section above (peak over $STREAMS concurrent streams)"
echo "- growth over time: bench/soak.sh (10 minutes by default)"
echo
} >> "$out"

cat "$out"
