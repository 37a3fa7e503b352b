#!/usr/bin/env bash
# A/B of this build's gateway against another nines binary on small requests: the same static
# upstream (nginx, one worker), the same load (wrk -t1 -c50), one worker each, access logs off,
# alternating which goes first in every round. Reports, per request kind, the median over the
# rounds (and the spread) of requests/s and of the gateway's CPU time per proxied request (user +
# system, from /proc/PID/stat), which is what a change costs whatever else shares the cores.
#
#   bench/ab_gateway.sh OTHER_NINES [ROUNDS]      (DURATION seconds per run, default 5)
#
# Build the other binary from another commit in a worktree of its own, for example:
#   git worktree add /tmp/base <commit> && make -C /tmp/base build
#   bench/ab_gateway.sh /tmp/base/build/nines 5
# Loopback only; every load is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
this=$PWD/build/nines
other=${1:?usage: bench/ab_gateway.sh OTHER_NINES [ROUNDS]}
rounds=${2:-5}
DURATION=${DURATION:-5}
work=$(mktemp -d /tmp/nines-ab.XXXXXX)

# shellcheck source=bench/lib.sh
source bench/lib.sh

start_static_upstream "$work/up" 19201
# Builds with an admin listener get one each, on a free port (older builds have none).
admin_of() { "$1" gateway --help 2>&1 | grep -q -- --admin-listen && echo "--admin-listen 127.0.0.1:0"; }
# shellcheck disable=SC2046
"$this" gateway --upstream http://127.0.0.1:19201/v1 --listen 127.0.0.1:19203 --workers 1 \
  --access-log off $(admin_of "$this") 2>"$work/this.log" & pids+=($!)
this_pid=$!
# shellcheck disable=SC2046
"$other" gateway --upstream http://127.0.0.1:19201/v1 --listen 127.0.0.1:19204 --workers 1 \
  --access-log off $(admin_of "$other") 2>"$work/other.log" & pids+=($!)
other_pid=$!
wait_port 19201; wait_port 19203; wait_port 19204

cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"mock-model","messages":[{"role":"user","content":"tap the settings icon"}],"temperature":0}'
LUA

hz=$(getconf CLK_TCK)

# One run: prints "requests/s cpu-us-per-request".
run() {  # pid port path [script]
  local pid=$1 port=$2 path=$3 script=${4:-}
  local args=(-t1 -c50 -d"${DURATION}s")
  [ -n "$script" ] && args+=(-s "$script")
  local before after
  before=$(cpu_ticks "$pid")
  wrk "${args[@]}" "http://127.0.0.1:$port$path" > "$work/wrk.txt"
  after=$(cpu_ticks "$pid")
  local requests rps
  requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  if grep -q "Non-2xx\|Socket errors" "$work/wrk.txt"; then
    echo "errors in a run against port $port:" >&2
    grep "Non-2xx\|Socket errors" "$work/wrk.txt" >&2
  fi
  awk -v r="$rps" -v t=$((after - before)) -v n="$requests" -v hz="$hz" \
    'BEGIN { printf "%s %.2f\n", r, t * 1e6 / hz / n }'
}

# Warm-up, unmeasured.
run "$this_pid" 19203 /v1/models >/dev/null
run "$other_pid" 19204 /v1/models >/dev/null

declare -A rps_of cpu_of
for round in $(seq 1 "$rounds"); do
  order=(this other)
  [ $((round % 2)) -eq 0 ] && order=(other this)
  for kind in get post; do
    path=/v1/models script=""
    [ $kind = post ] && path=/v1/chat/completions && script="$work/post.lua"
    for who in "${order[@]}"; do
      if [ "$who" = this ]; then pid=$this_pid port=19203; else pid=$other_pid port=19204; fi
      read -r r c < <(run "$pid" "$port" "$path" "$script")
      rps_of[$who-$kind]+="$r "
      cpu_of[$who-$kind]+="$c "
      echo "round $round $kind $who: $r req/s, $c us CPU per request" >&2
    done
  done
done

echo "| request | build | requests/s, median (spread) | CPU µs per request, median (spread) |"
echo "|---|---|---:|---:|"
for kind in get post; do
  label="GET /v1/models"
  [ $kind = post ] && label="POST /v1/chat/completions"
  for who in this other; do
    # shellcheck disable=SC2086
    echo "| $label | $who | $(median_spread ${rps_of[$who-$kind]}) | $(median_spread ${cpu_of[$who-$kind]}) |"
  done
done
echo
echo "$rounds rounds of ${DURATION}s per build and kind, order alternating; this = $this, other = $other."
