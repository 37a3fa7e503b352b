#!/usr/bin/env bash
# The ADB proxy under blinking links (issue 15), beside plain adb: one phone (a fake adbd) across
# a veth link in a network namespace of its own, attached to Debian's own adb server and kept by
# `nines devices`; the link goes silent for BLINK_S seconds, BLINKS times, GAP_S seconds apart.
# Two agents run at once, each one command after another (`adb shell echo step-N`, PACE_S apart,
# each bounded by 40 s): one through the keeper's ADB proxy, one straight to the adb server. A
# command succeeds when it exits 0 and printed its own step.
#
#   bench/devices_blinks.sh   (knobs: BLINKS 10, BLINK_S 5, GAP_S 4, PACE_S 0.2; OUT)
#
# Runs in namespaces it creates (unshare); every loop is bounded; only the processes it started
# are stopped, by their ids.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."
bin=${BIN:-$PWD/build/nines}
BLINKS=${BLINKS:-10}
BLINK_S=${BLINK_S:-5}
GAP_S=${GAP_S:-4}
PACE_S=${PACE_S:-0.2}
out=${OUT:-bench/results/devices_blinks.md}
# shellcheck source=tests/netns/far_host.sh
source tests/netns/far_host.sh
enter_own_namespace "$self"

work=$(mktemp -d /tmp/nines-blinks.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh
make_far_host
pids+=("$far_ns")
# shellcheck source=tests/netns/kept_phone.sh
source tests/netns/kept_phone.sh
start_kept_phone
await_state online || fail "the phone never came online"

agent() {  # name port: commands until $work/stop exists (at most 100,000)
  local ok=0 failed=0 i
  for i in $(seq 1 100000); do
    [ -e "$work/stop" ] && break
    local out rc=0
    out=$(timeout 40 env HOME="$work/home" adb -P "$2" -s "$serial" shell echo "step-$i" 2>>"$work/$1.err") || rc=$?
    if [ "$out" = "step-$i" ]; then
      ok=$((ok + 1))
    else
      failed=$((failed + 1))
      echo "exit $rc, printed '${out:0:40}' at $(now_ms)" >>"$work/$1.fail"
    fi
    sleep "$PACE_S"
  done
  echo "$ok $failed" >"$work/$1.result"
}
agent proxy 15038 &
pids+=($!)
proxy_agent=$!
agent plain 15037 &
pids+=($!)
plain_agent=$!

started=$(now_ms)
for b in $(seq 1 "$BLINKS"); do
  sleep "$GAP_S"   # the fault schedule: link up this long,
  link_down
  echo "link down at $(now_ms)" >>"$work/links.log"
  sleep "$BLINK_S" # then silent this long
  link_up
  echo "link up at $(now_ms)" >>"$work/links.log"
done
sleep "$GAP_S"
touch "$work/stop"
wait "$proxy_agent" "$plain_agent"
elapsed=$(($(now_ms) - started))
read -r p_ok p_failed <"$work/proxy.result"
read -r a_ok a_failed <"$work/plain.result"
curl -s --max-time 2 -o "$work/all.json" http://127.0.0.1:19903/devices
count() { field "$1" "$(cat "$work/all.json")"; }

[ -n "${KEEP_LOGS:-}" ] && { cp "$work"/*.fail "$work/links.log" "$work/keeper.log" "$KEEP_LOGS/" 2>/dev/null || true; }
mkdir -p "$(dirname "$out")"
{
  echo "# ADB commands under blinking links (bench/devices_blinks.sh)"
  echo
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ), nines $(git rev-parse --short HEAD), $(adb version | head -1)."
  echo "$BLINKS blinks of $BLINK_S s, $GAP_S s apart ($((elapsed / 1000)) s); one command every $PACE_S s per agent."
  echo
  echo "| agent | commands | succeeded | failed | success rate |"
  echo "|---|---:|---:|---:|---:|"
  awk -v o="$p_ok" -v f="$p_failed" 'BEGIN { printf "| through the ADB proxy | %d | %d | %d | %.4f |\n", o + f, o, f, o / (o + f) }'
  awk -v o="$a_ok" -v f="$a_failed" 'BEGIN { printf "| plain adb | %d | %d | %d | %.4f |\n", o + f, o, f, o / (o + f) }'
  echo
  echo "The proxy: $(count held) commands held, $(count held_served) served once the phone was back, $(count held_expired) expired, $(count replayed) sent again (never confirmed by the phone); the keeper reconnected the phone $(field reconnects "$(view)") times."
  echo "Plain adb's failures, first words: $(sort "$work/plain.err" | uniq -c | sort -rn | head -3 | tr -s ' ' | tr '\n' ';')"
  echo "Through the proxy, failures: $(sort "$work/proxy.err" 2>/dev/null | uniq -c | sort -rn | head -3 | tr -s ' ' | tr '\n' ';') $(cut -d' ' -f1-4 "$work/proxy.fail" 2>/dev/null | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
} | tee "$out"
