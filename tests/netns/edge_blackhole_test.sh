#!/usr/bin/env bash
# `nines edge` when the link under its pooled connections drops silently: the far host (a mock
# model server) sits across a veth pair in a network namespace of its own; the edge's first
# request warms a pooled connection over that link, then the far end of the link goes down, so
# that what the edge sends is never acknowledged and nothing comes back (no reset, no error).
#
#   - with the edge's connect race (routing.connect_race_ms, 250 ms): the next request is written
#     on the pooled connection, nobody acknowledges it, and at 250 ms a second attempt goes to the
#     other uplink and answers; the silent path is given up and counted (connect_slow);
#   - the control, the race off: the same request waits for first_byte_ms before failing over.
#
# Runs in namespaces it creates (unshare; as root, or through a user namespace otherwise), on
# fixed ports that only they can see. Everything it starts is stopped by its id.
# Usage: tests/netns/edge_blackhole_test.sh path/to/nines
set -euo pipefail
bin=$(readlink -f "${1:?usage: $0 NINES_BINARY}")
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
# shellcheck source=tests/netns/far_host.sh
source tests/netns/far_host.sh
enter_own_namespace "$self" "$bin"

work=$(mktemp -d /tmp/nines-netns.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh  # what it starts ($pids) is stopped at exit, and $work removed
make_far_host
pids+=("$far_ns")

# nsenter itself (not the function: a subshell's id would be kept) execs the server: its id.
nsenter --target "$far_ns" --net "$bin" mock-llm --listen 10.77.0.2:18000 2>"$work/far-model.log" &
pids+=($!)
"$bin" mock-llm --listen 127.0.0.1:18001 2>"$work/near-model.log" &
pids+=($!)
wait_until answers http://10.77.0.2:18000/health || fail "the far model server does not answer"
wait_until answers http://127.0.0.1:18001/health || fail "the near model server does not answer"

body='{"model":"mock-model","messages":[{"role":"user","content":"open the settings"}],"temperature":0}'
post() {  # port -> status code; the answer in $work/answer.json
  curl -s --max-time 30 -o "$work/answer.json" -w '%{http_code}' \
    -H 'content-type: application/json' -d "$body" "http://127.0.0.1:$1/v1/chat/completions"
}
record() { sed -n "${2}p" "$1"; }  # the access log's record number $2
has_records() { [ "$(wc -l < "$1")" -ge "$2" ]; }  # the log is written in batches

# One worker, so that the second request takes the pooled connection the first one left.
edge_config() {  # listen port, admin port, access log, extra toml
  cat <<EOF
[edge]
listen = "127.0.0.1:$1"
workers = 1
access_log = "$3"
[admin]
listen = "127.0.0.1:$2"
[retry]
backoff_base_ms = 1
$4
[[uplinks]]
name = "wifi"
url = "http://10.77.0.2:18000/v1"
health_path = "/health"
[[uplinks]]
name = "cellular"
url = "http://127.0.0.1:18001/v1"
priority = 1
health_path = "/health"
EOF
}

run_case() {  # name, listen port, admin port, extra toml
  local log="$work/$1-access.log"
  edge_config "$2" "$3" "$log" "$4" > "$work/$1.toml"
  "$bin" edge --config "$work/$1.toml" 2>"$work/$1-edge.log" &
  pids+=($!)
  wait_until answers "http://127.0.0.1:$3/healthz" || fail "$1: the edge did not start"
  link_up
  [ "$(post "$2")" = 200 ] || fail "$1: the first request failed"
  wait_until has_records "$log" 1 || fail "$1: no access log record"
  grep -q '"served_by":"wifi"' <(record "$log" 1) || fail "$1: the first request did not use wifi"
  link_down  # the link drops: nothing is acknowledged, nothing comes back
  [ "$(post "$2")" = 200 ] || fail "$1: the request after the drop failed"
  wait_until has_records "$log" 2 || fail "$1: no second access log record"
  grep -q '"served_by":"cellular"' <(record "$log" 2) || fail "$1: not answered over cellular"
  grep -q '"content":"' "$work/answer.json" || fail "$1: no answer text"
}

run_case raced 18081 19902 ""
grep -q '"connect_races":1' <(record "$work/raced-access.log" 2) ||
  fail "raced: the request after the drop was not raced"
# (Read whole first: grep -q would close the pipe early, and pipefail would call curl failed.)
curl -s -o "$work/raced.metrics" http://127.0.0.1:19902/metrics
grep -q '^nines_upstream_attempts_total{upstream="wifi",outcome="connect_slow"} 1$' \
  "$work/raced.metrics" || fail "raced: the silent path was not counted as slow"

run_case control 18082 19903 $'[routing]\nconnect_race_ms = 0\n[timeouts]\nfirst_byte_ms = 2000'
if grep -q '"connect_races"' <(record "$work/control-access.log" 2); then
  fail "control: raced with the race off"
fi
curl -s -o "$work/control.metrics" http://127.0.0.1:19903/metrics
grep -q '^nines_upstream_attempts_total{upstream="wifi",outcome="first_byte_timeout"} 1$' \
  "$work/control.metrics" || fail "control: wifi's attempt did not wait for its first byte"
echo "edge_blackhole_test: ok"
