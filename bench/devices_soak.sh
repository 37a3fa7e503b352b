#!/usr/bin/env bash
# False verdicts with Debian's own adb server (issue 15): PHONES fake phones (one `nines
# fake-adbd --phones N`) across a veth link in a network namespace, `adb connect`ed to the real adb
# server and kept by `nines devices`, for SOAK_MINUTES with 1% of the phones' shell commands
# unanswered (each probe the keeper sends through adb has that chance of being lost). Counts every
# state change of every phone (a false suspicion is online -> suspect -> online: two), beside the
# probes and misses; bench/devices.sh does the same for 500 phones against the fake adb server.
#
#   bench/devices_soak.sh [NINES_BINARY]   (knobs: PHONES 50, SOAK_MINUTES 10, LOSS 0.01; OUT
#                                           bench/results/devices_soak.md)
#
# Runs in namespaces it creates (unshare), on fixed ports only they see; every loop is bounded;
# only the processes it started are stopped, by id.
set -euo pipefail
self=$(readlink -f "$0")
bin=$(readlink -f "${1:-${BIN:-$(dirname "$self")/../build/nines}}")
cd "$(dirname "$self")/.."
# shellcheck source=tests/netns/far_host.sh
source tests/netns/far_host.sh
enter_own_namespace "$self" "$bin"
[ -x "$bin" ] || { echo "no nines binary at $bin" >&2; exit 2; }
PHONES=${PHONES:-50}
SOAK_MINUTES=${SOAK_MINUTES:-10}
LOSS=${LOSS:-0.01}
out=${OUT:-bench/results/devices_soak.md}

work=$(mktemp -d /tmp/nines-soak.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh
# shellcheck source=tests/netns/kept_phone.sh
source tests/netns/kept_phone.sh  # start_phone_fleet (not its one phone)
make_far_host
pids+=("$far_ns")

start_phone_fleet "$PHONES" 16001 16037 4096
"$bin" devices --adb-port 16037 --admin-listen 127.0.0.1:16903 >"$work/keeper.log" 2>&1 &
keeper_pid=$!
pids+=($!)
wait_port 16903 || fail "nines devices did not start"
fleet() {  # online phones, state changes, probes, misses
  curl -s --max-time 5 http://127.0.0.1:16903/devices | python3 -c 'import json, sys
d = json.load(sys.stdin)
print(sum(x["state"] == "online" for x in d["devices"]), sum(x["transitions"] for x in d["devices"]),
      d["fleet"]["probes"], d["fleet"]["misses"])'
}
for i in $(seq 1 600); do  # every phone online, at most 60 s
  read -r online _ _ _ <<<"$(fleet)"
  [ "$online" = "$PHONES" ] && break
  sleep 0.1
done
[ "$online" = "$PHONES" ] || fail "$online of $PHONES phones came online"

read -r _ tr0 p0 m0 <<<"$(fleet)"
echo "loss $LOSS" >&7
t0=$(date +%s)
sleep $((SOAK_MINUTES * 60))  # the soak's length
echo "loss 0" >&7
read -r online tr1 p1 m1 <<<"$(fleet)"
t1=$(date +%s)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$keeper_pid/status")

mkdir -p "$(dirname "$out")"
{
  echo "# False verdicts with the real adb server: $PHONES phones × $SOAK_MINUTES min at $LOSS loss (bench/devices_soak.sh)"
  echo
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, nines $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(adb version | head -1)."
  echo
  awk -v tr=$((tr1 - tr0)) -v p=$((p1 - p0)) -v m=$((m1 - m0)) -v n="$PHONES" -v s=$((t1 - t0)) -v on="$online" -v rss="$rss_kb" 'BEGIN {
    h = n * s / 3600
    printf "| device-hours | probes | misses (share) | state changes | per device-hour | online at the end | goal |\n|---:|---:|---:|---:|---:|---:|---|\n"
    printf "| %.2f | %d | %d (%.2f%%) | %d | %.4f | %d of %d | suspect ≤ 1e-3, offline ≤ 1e-5 per device-hour |\n\n", h, p, m, p ? m / p * 100 : 0, tr, tr / h, on, n
    printf "Keeper resident memory at the end: %d KiB.\n", rss
  }'
  echo
  echo "A suspect episode is two state changes (online -> suspect -> online). Each miss is a probe"
  echo "whose shell command the phone never answered; the keeper probes again at once after one."
} | tee "$out"
