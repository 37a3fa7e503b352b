#!/usr/bin/env bash
# The shared journal (issue 16, [journal] store): what copying every journaled stream to Redis
# costs and what it gives, on this machine (everything on loopback, 2 cores shared by the load
# generator, the mock, the gateways and Redis).
#
#   1. Added latency per event: STREAMS streamed answers (20 tokens/s, CONNS at once) through a
#      gateway journaling every request in its memory, then through one that also copies them to
#      Redis; `nines bench` with mock-llm --stamp measures each event's delay from the mock's write
#      to the client's read. Also the gateway's CPU per stream.
#   2. Journal memory per stream in Redis: used_memory before and after (the copies live for
#      journal.ttl_ms), per stream and per event.
#   3. Reconnect to first replayed byte: RECONNECTS clients drop after event 3 on replica A and
#      reconnect with Last-Event-ID to replica B 20 ms later, while the stream (5 ms per token)
#      runs on: the events made meanwhile are in Redis (bench/src/reconnect_first_byte.py).
#   4. A Redis failover: a primary, two replicas, three Sentinels; streams at RATE/s for 12 s
#      through a gateway on the Sentinels, the primary SIGKILLed at 3 s: failed client streams,
#      event delay, and the time from the kill until the gateway writes to the promoted replica
#      again (nines_redis_up 1) and its queue is empty (the journal caught up).
#
#   5. Redis stopped: streams at RATE/s for STOP_S seconds with Redis up, then with Redis
#      SIGSTOPped (it answers nothing, its connections stay open): failed streams, event delay and
#      time to first token against the Redis-up run; then the time from SIGCONT until the gateway
#      writes to it again.
#
#   6. Takeover: TAKEOVERS streams (20 tokens/s) on a replica that is SIGKILLed once each has had
#      event 3; each client reconnects at once with Last-Event-ID to one of two other replicas,
#      which take the streams over when their lease (journal.store_lease_ms, default 3000) runs out
#      and continue them on the upstream: the time from the kill to the client's next event
#      (bench/src/takeover_time.py).
#
#   bench/shared_journal.sh   (knobs: STREAMS 1000, CONNS 200, RECONNECTS 1000, RATE 20, STOP_S 60,
#                              TAKEOVERS 100;
#                              JSON_DIR keeps the raw reports; writes
#                              bench/results/shared_journal.md, or OUT)
set -euo pipefail
bin=$(readlink -f "${1:-build/nines}")
cd "$(dirname "$(readlink -f "$0")")/.."
STREAMS=${STREAMS:-1000}
CONNS=${CONNS:-200}
RECONNECTS=${RECONNECTS:-1000}
RATE=${RATE:-20}
STOP_S=${STOP_S:-60}
TAKEOVERS=${TAKEOVERS:-100}
out=${OUT:-bench/results/shared_journal.md}
work=$(mktemp -d /tmp/nines-shared-journal.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh  # what it starts ($pids) is stopped at exit, and $work removed

declare -A redis_pid gateway_pid
redis_at() {  # host [extra words...]: a redis-server on host:6379, its files in $work
  local host=$1; shift
  mkdir -p "$work/redis-$host"
  redis-server --bind "$host" --port 6379 --save '' --appendonly no --dir "$work/redis-$host" \
    --protected-mode no --replica-announce-ip "$host" --bind-source-addr "$host" "$@" \
    > "$work/redis-$host.log" 2>&1 &
  pids+=($!)
  redis_pid[$host]=$!
  for _ in $(seq 1 200); do redis-cli -h "$host" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done
  echo "redis on $host did not start" >&2; return 1
}
gateway() {  # port admin-port journal-toml
  cat > "$work/gw-$1.toml" <<TOML
[gateway]
listen = "127.0.0.1:$1"
workers = 1
access_log = "off"
[admin]
listen = "127.0.0.1:$2"
[limits]
max_client_connections = 4096
[[upstreams]]
name = "mock"
url = "http://127.0.0.1:18301/v1"
[journal]
mode = "all"
$3
TOML
  "$bin" gateway --config "$work/gw-$1.toml" 2>"$work/gw-$1.log" &
  pids+=($!)
  gateway_pid[$1]=$!
  wait_port "$1"
}
metric() {  # admin-port name
  curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}
redis_up_on() {  # admin-port
  for _ in $(seq 1 100); do [ "$(metric "$1" nines_redis_up)" = "1" ] && return 0; sleep 0.1; done
  echo "the gateway on admin port $1 never reached Redis" >&2; return 1
}
bench_streams() {  # label port requests [rate [seconds]]
  if [ -n "${4:-}" ]; then
    # Enough connections and requests for the whole run: the rate alone sets the load.
    load=(--rate "$4" --duration "${5:-12}" --connections "$CONNS"
          --requests "$(( $4 * ${5:-12} + 10 ))")
  else
    load=(--requests "$3" --connections "$CONNS")
  fi
  "$bin" bench --url "http://127.0.0.1:$2" --stream true "${load[@]}" --timeout 30 \
    --max-seconds 120 --json "$work/$1.json" --label "$1" > "$work/$1.txt"
}
field() {  # label expression over d
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$work/$1.json"
}

"$bin" mock-llm --listen 127.0.0.1:18301 --stamp --faults tpot_ms=50 2>"$work/mock.log" &
pids+=($!)
mock_pid=$!
wait_port 18301
for _ in $(seq 1 100); do grep -q listening "$work/mock.log" && break; sleep 0.05; done
kill -0 "$mock_pid" 2>/dev/null || { echo "mock-llm did not start (port 18301 taken?)" >&2; exit 1; }
redis_at 127.78.90.1
gateway 18311 19311 ""
gateway 18312 19312 'store = "redis://127.78.90.1:6379/0"'
gateway 18313 19313 'store = "redis://127.78.90.1:6379/0"'
redis_up_on 19312; redis_up_on 19313

# 1 and 2: the same load with the journal in memory, then copied to Redis.
mem_before=$(redis-cli -h 127.78.90.1 info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r')
for label in memory shared; do
  port=$([ "$label" = memory ] && echo 18311 || echo 18312)
  pid=${gateway_pid[$port]}
  before=$(cpu_ticks "$pid")
  bench_streams "$label" "$port" "$STREAMS"
  after=$(cpu_ticks "$pid")
  echo $(( after - before )) > "$work/$label.ticks"
done
for _ in $(seq 1 100); do [ "$(metric 19312 nines_journal_store_queue_bytes)" = "0" ] && break; sleep 0.1; done
mem_after=$(redis-cli -h 127.78.90.1 info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r')
keys=$(redis-cli -h 127.78.90.1 dbsize | tr -d '\r')
appends=$(metric 19312 nines_journal_store_appends_total)

# 3: reconnect to another replica (the answers paced at 5 ms per token, so that each reconnect
# finds its stream still running and the run stays short).
curl -s -X POST http://127.0.0.1:18301/mock/faults -d '{"tpot_ms":5}' > /dev/null
python3 bench/src/reconnect_first_byte.py 18312 18313 "$RECONNECTS" 3 20 > "$work/reconnect.json"

curl -s -X POST http://127.0.0.1:18301/mock/faults -d '{"tpot_ms":50}' > /dev/null

# 6: the replica producing the streams SIGKILLed; two others take them over.
gateway 18315 19315 'store = "redis://127.78.90.1:6379/0"'
redis_up_on 19315
python3 bench/src/takeover_time.py 18315 "${gateway_pid[18315]}" 18312,18313 "$TAKEOVERS" 3 \
  > "$work/takeover.json"

# 5: Redis stopped (SIGSTOP: its connections stay open, nothing answers) for STOP_S under
# streams at RATE/s, against the same load with Redis up; then how long until the gateway
# writes to it again after SIGCONT.
bench_streams redis-up 18312 0 "$RATE" "$STOP_S"
kill -STOP "${redis_pid[127.78.90.1]}"
bench_streams redis-stopped 18312 0 "$RATE" "$STOP_S"
kill -CONT "${redis_pid[127.78.90.1]}"
resumed=$(date +%s.%N)
back_s=never
for _ in $(seq 1 200); do
  if [ "$(metric 19312 nines_redis_up)" = "1" ]; then
    back_s=$(python3 -c "print('%.2f' % ($(date +%s.%N) - $resumed))"); break
  fi
  sleep 0.05
done
incomplete=$(metric 19312 nines_journal_store_incomplete_total)

# 4: a failover under load.
for i in 1 2 3; do
  extra=()
  [ "$i" != 1 ] && extra=(--replicaof 127.78.91.1 6379)
  redis_at "127.78.91.$i" "${extra[@]}"
done
for i in 11 12 13; do
  mkdir -p "$work/sentinel-$i"
  cat > "$work/sentinel-$i/sentinel.conf" <<CONF
bind 127.78.91.$i
port 26379
protected-mode no
dir $work/sentinel-$i
sentinel announce-ip 127.78.91.$i
bind-source-addr 127.78.91.$i
sentinel monitor nines 127.78.91.1 6379 2
sentinel down-after-milliseconds nines 1000
sentinel failover-timeout nines 5000
sentinel parallel-syncs nines 1
CONF
  redis-sentinel "$work/sentinel-$i/sentinel.conf" > "$work/sentinel-$i.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 1 100); do
  redis-cli -h 127.78.91.13 -p 26379 sentinel replicas nines 2>/dev/null | grep -c '^127.78.91' | grep -q 2 && break
  sleep 0.1
done
gateway 18314 19314 'store = "redis-sentinel://127.78.91.11:26379,127.78.91.12:26379,127.78.91.13:26379/nines"'
redis_up_on 19314
primary_pid=${redis_pid[127.78.91.1]}
bench_streams failover 18314 0 "$RATE" &
bench_pid=$!
sleep 3
kill -KILL "$primary_pid"
killed=$(date +%s.%N)
for _ in $(seq 1 200); do   # until it sees the primary gone
  [ "$(metric 19314 nines_redis_up)" = "1" ] || break
  sleep 0.05
done
up_s="" caught_s=""
for _ in $(seq 1 400); do
  now=$(date +%s.%N)
  if [ -z "$up_s" ] && [ "$(metric 19314 nines_redis_up)" = "1" ]; then
    up_s=$(python3 -c "print('%.2f' % ($now - $killed))")
  fi
  if [ -n "$up_s" ] && [ "$(metric 19314 nines_journal_store_queue_bytes)" = "0" ]; then
    caught_s=$(python3 -c "print('%.2f' % ($now - $killed))"); break
  fi
  sleep 0.05
done
wait "$bench_pid"
[ -n "${JSON_DIR:-}" ] && mkdir -p "$JSON_DIR" && cp "$work"/*.json "$JSON_DIR"/
promoted=$(redis-cli -h 127.78.91.11 -p 26379 sentinel get-master-addr-by-name nines | head -1 | tr -d '\r')

{
  echo "# The shared journal (bench/shared_journal.sh, $(date -u +%Y-%m-%d))"
  echo
  echo "STREAMS=$STREAMS at 20 tokens/s, $CONNS at once; one gateway worker each; Redis 7.0 on loopback."
  echo
  echo "| journal | streams ok | event delay p50 ms | p99 ms | p99.9 ms | time to first token p99 ms | gateway CPU per stream ms |"
  echo "|---|---|---|---|---|---|---|"
  for label in memory shared; do
    ticks=$(cat "$work/$label.ticks")
    field "$label" "'| %s | %d/%d | %.2f | %.2f | %.2f | %.2f | %.3f |' % ('$label', d['succeeded'], d['requests'], d['event_delay_ms']['p50'], d['event_delay_ms']['p99'], d['event_delay_ms']['p99.9'], d['ttft_ms']['p99'], $ticks * 1000.0 / $(getconf CLK_TCK) / max(d['requests'], 1))"
  done
  echo
  python3 -c "
b, a, k, n, s = $mem_before, $mem_after, $keys, $STREAMS, int(float('$appends' or 0))
print('Redis memory for %d streams (%d keys, %d script calls): %.1f KiB per stream, %.0f B per event (27 events each).' % (n, k, s, (a - b) / n / 1024, (a - b) / n / 27))"
  echo
  python3 -c "
import json; r = json.load(open('$work/reconnect.json'))
print('Reconnect to another replica, first replayed byte: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; %d/%d whole.' % (r['p50'], r['p90'], r['p99'], r['max'], r['whole'], r['count']))"
  echo
  python3 -c "
import json; r = json.load(open('$work/takeover.json'))
print('Takeover (the producing replica SIGKILLed under %d streams; lease 3000 ms): kill to the next event p50 %s ms, p90 %s ms, p99 %s ms, max %s ms; %d/%d streams whole.' % (r['count'], r['p50'], r['p90'], r['p99'], r['max'], r['whole'], r['count']))"
  echo
  echo "| Redis (streams at $RATE/s for $STOP_S s) | streams ok | event delay p99 ms | time to first token p99 ms | total p99 ms |"
  echo "|---|---|---|---|---|"
  for label in redis-up redis-stopped; do
    field "$label" "'| %s | %d/%d | %.2f | %.2f | %.2f |' % ('$label', d['succeeded'], d['requests'], d['event_delay_ms']['p99'], d['ttft_ms']['p99'], d['total_ms']['p99'])"
  done
  echo
  echo "After SIGCONT the gateway wrote to Redis again in $back_s s; copies marked incomplete meanwhile (its queue full): ${incomplete:-0}."
  echo
  field failover "'Redis failover under %.0f streams/s (primary SIGKILLed at 3 s; promoted: $promoted): %d/%d client streams ok, event delay p99 %.2f ms; the gateway wrote to the promoted replica %s s after the kill, its queue empty at %s s.' % ($RATE, d['succeeded'], d['requests'], d['event_delay_ms']['p99'], '${up_s:-never}', '${caught_s:-never}')"
} | tee "$out"
