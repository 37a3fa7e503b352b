#!/usr/bin/env bash
# `nines edge` failover for new requests (issue 14): how long the first request after an uplink
# fails takes, when it fails in each way a link does. Two uplinks to mock model servers: "wifi"
# (priority 0) on a far host across a veth link in a network namespace, "cellular" (priority 1)
# on loopback. Each round starts a fresh edge (so that no round inherits a cooldown), fails wifi,
# and times one request with curl; ROUNDS (20) rounds per way, p50/p99/max and where it was served.
#
#   refused      the far host answers the connect with a reset (nothing listens on the port)
#   connect      the link is down before the first connect: SYNs vanish
#   pooled       a request warms a pooled connection over wifi, then the link goes down: the next
#                request is written on that connection and nothing acknowledges it
#
# and, once, "pooled" with the connect race off: the request waits for first_byte_ms (5 s here)
# before it fails over. Runs in network namespaces it creates, on ports only they see.
#
#   bench/edge.sh            (knobs: ROUNDS 20; writes bench/results/edge.md, or OUT)
set -euo pipefail
bin=$(readlink -f "${1:-build/nines}")
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."
# shellcheck source=tests/netns/far_host.sh
source tests/netns/far_host.sh
enter_own_namespace "$self" "$bin"
ROUNDS=${ROUNDS:-20}
out=${OUT:-bench/results/edge.md}

work=$(mktemp -d /tmp/nines-edge-bench.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh  # what it starts ($pids) is stopped at exit, and $work removed

make_far_host
pids+=("$far_ns")
nsenter --target "$far_ns" --net "$bin" mock-llm --listen "$far_address:18000" 2>"$work/far.log" &
pids+=($!)
"$bin" mock-llm --listen 127.0.0.1:18001 2>"$work/near.log" &
pids+=($!)
wait_until answers "http://$far_address:18000/health"
wait_until answers http://127.0.0.1:18001/health

body='{"model":"mock-model","messages":[{"role":"user","content":"open the settings"}],"temperature":0}'
post() {  # -> "status seconds"
  curl -s --max-time 60 -o "$work/answer.json" -w '%{http_code} %{time_total}' \
    -H 'content-type: application/json' -d "$body" http://127.0.0.1:18081/v1/chat/completions
}

start_edge() {  # wifi port, extra toml
  cat > "$work/edge.toml" <<EOF
[edge]
listen = "127.0.0.1:18081"
workers = 1
access_log = "off"
[admin]
listen = "127.0.0.1:19902"
[retry]
backoff_base_ms = 1
$2
[[uplinks]]
name = "wifi"
url = "http://$far_address:$1/v1"
health_path = "/health"
[[uplinks]]
name = "cellular"
url = "http://127.0.0.1:18001/v1"
priority = 1
health_path = "/health"
EOF
  "$bin" edge --config "$work/edge.toml" 2>"$work/edge.log" &
  edge_pid=$!
  pids+=("$edge_pid")
  wait_until answers http://127.0.0.1:19902/healthz
}
stop_edge() {
  kill "$edge_pid"
  wait "$edge_pid" 2>/dev/null || true
}

one_round() {  # way, extra toml -> "status ms"
  local port=18000
  [ "$1" = refused ] && port=18009  # nothing listens there
  link_up
  start_edge "$port" "$2"
  if [ "$1" = pooled ]; then
    read -r status _ <<< "$(post)"
    [ "$status" = 200 ] || { echo "warm-up failed" >&2; exit 1; }
  fi
  [ "$1" = refused ] || link_down
  local status seconds
  read -r status seconds <<< "$(post)"
  stop_edge
  awk -v s="$status" -v t="$seconds" 'BEGIN { printf "%s %.1f\n", s, t * 1000 }'
}

has_lines() { [ -s "$1" ]; }
stats() {  # ms values on stdin -> "p50 p99 max"
  sort -n | awk '{ v[NR] = $1 } END {
    p50 = v[int((NR + 1) * 0.50)]; i = int(NR * 0.99 + 0.999); if (i > NR) i = NR
    printf "%.1f %.1f %.1f", p50, v[i], v[NR] }'
}

declare -A row
for way in refused connect pooled; do
  : > "$work/$way.txt"
  ok=0
  for _ in $(seq 1 "$ROUNDS"); do
    read -r status ms <<< "$(one_round "$way" "")"
    [ "$status" = 200 ] && ok=$((ok + 1))
    echo "$ms" >> "$work/$way.txt"
  done
  row[$way]="$ok $(stats < "$work/$way.txt")"
done
read -r off_status off_ms <<< "$(one_round pooled $'[routing]\nconnect_race_ms = 0\n[timeouts]\nfirst_byte_ms = 5000')"

# --- a running stream whose uplink goes silent --------------------------------------------------
# wifi: gateway A behind a chaos proxy (the project's fault proxy: a "timeout" toxic passes
# nothing and closes nothing); cellular: gateway B. Both gateways in front of their own mock
# (40 tokens, 50 ms apart). Each round: a fresh edge, a stream, the link cut after 5 events; the
# client's gap is the edge's own measure (resume_log gap_ms: the last event before the cut to the
# first of the continuation). The edge asks its uplinks for heartbeats every 250 ms.
"$bin" mock-llm --listen 127.0.0.1:18011 --tokens 40 --faults tpot_ms=50 2>"$work/ma.log" &
pids+=($!)
"$bin" mock-llm --listen 127.0.0.1:18012 --tokens 40 --faults tpot_ms=50 2>"$work/mb.log" &
pids+=($!)
for g in a:18011:18021:19921 b:18012:18022:19922; do
  IFS=: read -r name model listen admin <<< "$g"
  "$bin" gateway --upstream "http://127.0.0.1:$model/v1" --listen "127.0.0.1:$listen" \
    --admin-listen "127.0.0.1:$admin" --workers 1 --access-log off 2>"$work/g$name.log" &
  pids+=($!)
done
"$bin" chaos --api 127.0.0.1:18474 2>"$work/chaos.log" &
pids+=($!)
for u in http://127.0.0.1:18021/readyz http://127.0.0.1:18022/readyz http://127.0.0.1:18474/proxies; do
  wait_until answers "$u"
done
stream_body='{"model":"mock-model","messages":[{"role":"user","content":"read the screen"}],"stream":true,"temperature":0}'
events_in() {  # file, count: at least that many events arrived
  local n
  n=$(grep -c '^data:' "$1" 2>/dev/null) || n=${n:-0}
  [ "$n" -ge "$2" ]
}
: > "$work/gaps.txt"
stream_ok=0
for round in $(seq 1 "$ROUNDS"); do
  # A link of its own per round (what a cut leaves behind never meets the next round).
  hole_port=$(curl -s -X POST http://127.0.0.1:18474/proxies \
    -d "{\"name\":\"wifi$round\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:18021\"}" |
    grep -o '"listen":"[^"]*"' | grep -o '[0-9]*"$' | tr -d '"')
  {
    echo '[edge]'
    echo 'listen = "127.0.0.1:18081"'
    echo 'workers = 1'
    echo "access_log = \"$work/edge-s-$round.log\""
    echo '[admin]'
    echo 'listen = "127.0.0.1:19902"'
    echo '[[uplinks]]'
    echo 'name = "wifi"'
    echo "url = \"http://127.0.0.1:$hole_port/v1\""
    echo '[[uplinks]]'
    echo 'name = "cellular"'
    echo 'url = "http://127.0.0.1:18022/v1"'
    echo 'priority = 1'
  } > "$work/edge-s.toml"
  "$bin" edge --config "$work/edge-s.toml" 2>"$work/edge-s.log" &
  edge_pid=$!
  pids+=("$edge_pid")
  wait_until answers http://127.0.0.1:19902/healthz
  rm -f "$work/stream.txt"  # the last round's must not count as this one's events
  curl -sN --max-time 60 -o "$work/stream.txt" -H 'content-type: application/json' \
    -d "$stream_body" http://127.0.0.1:18081/v1/chat/completions &
  client=$!
  wait_until events_in "$work/stream.txt" 5
  curl -s -o /dev/null -X POST "http://127.0.0.1:18474/proxies/wifi$round/toxics" \
    -d '{"type":"timeout","name":"hole","stream":"downstream","attributes":{"timeout":0}}'
  wait "$client" || true
  # 40 tokens, the role and finish chunks, and [DONE]: the stream came through whole.
  if grep -q '^data: \[DONE\]' "$work/stream.txt" && events_in "$work/stream.txt" 43; then
    stream_ok=$((stream_ok + 1))
  fi
  stop_edge
  curl -s -o /dev/null -X DELETE "http://127.0.0.1:18474/proxies/wifi$round"
  wait_until has_lines "$work/edge-s-$round.log"
  gap=$(grep -o '"gap_ms":[0-9.]*' "$work/edge-s-$round.log" | head -1 | cut -d: -f2 || true)
  if [ -n "$gap" ]; then
    echo "$gap" >> "$work/gaps.txt"
  else
    echo "round $round: not resumed: $(cat "$work/edge-s-$round.log")" >&2
  fi
done
gaps=$(stats < "$work/gaps.txt")

mkdir -p "$(dirname "$out")"
{
  echo "# nines edge: failover of a new request ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs)"
  echo
  echo "Two uplinks; wifi across a veth link in a network namespace, cellular on loopback; a fresh"
  echo "edge per round; the time of the first request after wifi fails, as curl sees it"
  echo "(\`bench/edge.sh\`, $ROUNDS rounds per row). Goal: ≤ 300 ms."
  echo
  echo "| wifi fails by | answered | p50 ms | p99 ms | max ms |"
  echo "|---|---:|---:|---:|---:|"
  for way in refused connect pooled; do
    read -r ok p50 p99 max <<< "${row[$way]}"
    echo "| $way | $ok/$ROUNDS | $p50 | $p99 | $max |"
  done
  echo "| pooled, connect race off (first_byte_ms 5000) | $([ "$off_status" = 200 ] && echo 1 || echo 0)/1 | $off_ms | | |"
  echo
  read -r g50 g99 gmax <<< "$gaps"
  echo "A running stream (40 tokens 50 ms apart, through gateway A) whose wifi link goes silent after"
  echo "5 events (a chaos proxy passing nothing, closing nothing): the client's gap from the last event"
  echo "before the cut to the first one continued over cellular, from the edge's resume_log. The edge"
  echo "asks its uplinks for heartbeats every 250 ms and takes 750 ms of silence for a cut. Goal: ≤ 1 s."
  echo
  echo "| streams whole | gap p50 ms | gap p99 ms | gap max ms |"
  echo "|---:|---:|---:|---:|"
  echo "| $stream_ok/$ROUNDS | $g50 | $g99 | $gmax |"
  echo
  echo "Rounds resumed: $(wc -l < "$work/gaps.txt")/$ROUNDS (a round whose stream was not resumed is"
  echo "printed on stderr with its access log)."
  echo
} > "$out"
cat "$out"
