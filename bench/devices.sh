#!/usr/bin/env bash
# The device keeper (issue 15): what following DEVICES phones costs (each probed once a second),
# and how long a silent link, a zombie and a return take, with Debian's own adb server.
#
#   bench/devices.sh        (knobs: DEVICES 500, CPU_SECONDS 30, SOAK_MINUTES 10, ROUNDS 10,
#                            LONG_OUTAGE_S 60)
#
# Method:
#   - `nines fake-adb --devices DEVICES` stands in for the adb server (synthetic phones that
#     answer `shell:echo` at once); `nines devices` follows it with its defaults;
#   - CPU: the keeper's whole process (every thread) from /proc/PID/task/TID/schedstat over
#     CPU_SECONDS once every phone is online; as a share of one core and of the machine
#     (nproc cores); the fake's own CPU beside it (a real adb server's cost differs);
#   - false verdicts: the same phones for SOAK_MINUTES with 1% of probes unanswered (`loss 0.01`
#     to the fake, at random): every state change counted from /devices (each phone's
#     `transitions`), beside the probes and misses of the soak;
#   - detection and recovery: tests/netns/devices_blackhole_test.sh, ROUNDS rounds, then one
#     round whose link stays down LONG_OUTAGE_S more after the offline verdict: a phone (a fake
#     adbd) across a veth link in a namespace, attached to Debian's adb server with `adb connect`;
#     its link goes silent, comes back, then its commands hang and answer again. Verdicts are
#     timed on the keeper's clock from the phone's last good probe (the goals' reference: suspect
#     ≤ 2.5 s, offline ≤ 5 s, zombie ≤ 3 s), recovery on the script's from the link's return
#     (online ≤ 1 s), to its 20 ms polls.
# Loopback only; every wait is bounded; only the processes started here are stopped, by their ids.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/build/nines
DEVICES=${DEVICES:-500}
CPU_SECONDS=${CPU_SECONDS:-30}
ROUNDS=${ROUNDS:-10}
SOAK_MINUTES=${SOAK_MINUTES:-10}
LONG_OUTAGE_S=${LONG_OUTAGE_S:-60}
out=${OUT:-bench/results/devices.md}
work=$(mktemp -d /tmp/nines-devices.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh

mkfifo "$work/ctl"
"$bin" fake-adb --devices "$DEVICES" < "$work/ctl" > "$work/fake.out" 2>&1 & pids+=($!)
fake_pid=$!
exec 3>"$work/ctl"
for _ in $(seq 1 200); do grep -q "listening on" "$work/fake.out" && break; sleep 0.05; done
adb_port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\) .*/\1/p' "$work/fake.out" | head -1)
"$bin" devices --adb-port "$adb_port" --admin-listen 127.0.0.1:0 > "$work/keeper.out" 2>&1 &
pids+=($!)
keeper_pid=$!
for _ in $(seq 1 200); do grep -q "admin listening on" "$work/keeper.out" && break; sleep 0.05; done
admin_port=$(sed -n 's/.*admin listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/keeper.out" | head -1)
admin="http://127.0.0.1:$admin_port"

online() { curl -s "$admin/devices" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fleet"]["states"]["online"])'; }
for _ in $(seq 1 600); do [ "$(online)" = "$DEVICES" ] && break; sleep 0.1; done
[ "$(online)" = "$DEVICES" ] || { echo "not every phone came online" >&2; exit 1; }

cpu_ns() {
  local total=0 t
  for t in /proc/"$1"/task/*/schedstat; do
    [ -r "$t" ] && total=$((total + $(cut -d' ' -f1 "$t")))
  done
  echo "$total"
}
probes() { curl -s "$admin/devices" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fleet"]["probes"])'; }
k0=$(cpu_ns "$keeper_pid"); f0=$(cpu_ns "$fake_pid"); p0=$(probes); t0=$(date +%s%N)
sleep "$CPU_SECONDS"
k1=$(cpu_ns "$keeper_pid"); f1=$(cpu_ns "$fake_pid"); p1=$(probes); t1=$(date +%s%N)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$keeper_pid/status")
cores=$(nproc)

# The soak at 1% probe loss: state changes over every phone, probes and misses.
fleet() { curl -s --max-time 5 "$admin/devices" | python3 -c 'import json,sys
d = json.load(sys.stdin)
print(sum(x["transitions"] for x in d["devices"]), d["fleet"]["probes"], d["fleet"]["misses"])'; }
read -r s_tr0 s_p0 s_m0 <<< "$(fleet)"
echo "loss 0.01" >&3
sleep $((SOAK_MINUTES * 60))  # the soak's length
echo "loss 0" >&3
read -r s_tr1 s_p1 s_m1 <<< "$(fleet)"

# Detection and recovery with the real adb server, in namespaces of their own.
bash tests/netns/devices_blackhole_test.sh "$bin" "$ROUNDS" > "$work/rounds.out" 2>&1 ||
  { tail -30 "$work/rounds.out" >&2; exit 1; }
bash tests/netns/devices_blackhole_test.sh "$bin" 1 "$LONG_OUTAGE_S" > "$work/long.out" 2>&1 ||
  { tail -30 "$work/long.out" >&2; exit 1; }
# "round N: silent link: suspect A ms, offline B ms ...; link back: online C ms, held command done
# D ms after; zombie E ms ..." -> one column per measure.
column() {  # file, the words before the number
  grep '^round ' "$1" | sed -n "s/.*$2 \([0-9-]*\) ms.*/\1/p"
}
stats() {  # numbers on stdin -> "p50 / p99 / max (n)"
  sort -n | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "-"; exit }
    i50 = int((NR - 1) * 0.50) + 1; i99 = int((NR - 1) * 0.99) + 1
    printf "%d / %d / %d (%d)", v[i50], v[i99], v[NR], NR }'
}

mkdir -p "$(dirname "$out")"
{
  echo "# Device keeper: $DEVICES phones (bench/devices.sh)"
  echo
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $cores cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), nines $(git rev-parse --short HEAD)."
  echo
  echo "## CPU, every phone online and probed once a second ($CPU_SECONDS s)"
  echo
  awk -v k=$((k1 - k0)) -v f=$((f1 - f0)) -v p=$((p1 - p0)) -v t=$((t1 - t0)) -v c="$cores" -v n="$DEVICES" -v rss="$rss_kb" 'BEGIN {
    printf "| process | CPU, %% of one core | %% of the machine (%d cores) | µs per probe |\n|---|---:|---:|---:|\n", c
    printf "| nines devices | %.2f | %.2f | %.1f |\n", k / t * 100, k / t * 100 / c, k / 1000 / p
    printf "| nines fake-adb (the adb server stand-in) | %.2f | %.2f | %.1f |\n\n", f / t * 100, f / t * 100 / c, f / 1000 / p
    printf "- probes: %d in %.1f s (%.1f per second for %d phones)\n", p, t / 1e9, p / (t / 1e9), n
    printf "- keeper resident memory: %d KiB (%.1f KiB per phone, with the process itself)\n", rss, rss / n
  }'
  echo
  echo "## False verdicts at 1% probe loss ($DEVICES phones × $SOAK_MINUTES min)"
  echo
  awk -v tr=$((s_tr1 - s_tr0)) -v p=$((s_p1 - s_p0)) -v m=$((s_m1 - s_m0)) -v n="$DEVICES" -v min="$SOAK_MINUTES" 'BEGIN {
    h = n * min / 60
    printf "| device-hours | probes | misses (share) | state changes | per device-hour | goal |\n|---:|---:|---:|---:|---:|---|\n"
    printf "| %.1f | %d | %d (%.2f%%) | %d | %.4f | suspect ≤ 1e-3, offline ≤ 1e-5 |\n\n", h, p, m, p ? m / p * 100 : 0, tr, tr / h
  }'
  echo "A suspect episode is two state changes (online → suspect → online). 1,000 device-hours of the"
  echo "same loss on simulated time: tests/unit/core/devices/device_lifecycle_test.cpp."
  echo
  echo "## Detection and recovery, Debian's adb server and a phone in a netns ($ROUNDS rounds)"
  echo
  echo "| event | p50 / p99 / max ms (rounds) | goal |"
  echo "|---|---|---|"
  echo "| silent link → suspect, after the last good probe | $(column "$work/rounds.out" suspect | stats) | ≤ 2,500 |"
  echo "| silent link → offline, after the last good probe | $(column "$work/rounds.out" offline | stats) | ≤ 5,000 |"
  echo "| commands hang → zombie, after the last good probe | $(column "$work/rounds.out" zombie | stats) | ≤ 3,000 |"
  echo "| link back → online | $(column "$work/rounds.out" 'online' | stats) | ≤ 1,000 |"
  echo "| link back → the command held through the outage done | $(column "$work/rounds.out" 'held command done' | stats) | |"
  echo "| link back after $LONG_OUTAGE_S s more → online | $(column "$work/long.out" 'online' | stats) | ≤ 1,000 |"
  echo
  echo "Verdicts on the keeper's clock (since_good_probe_s - state_for_s on /devices/SERIAL, to its"
  echo "20 ms tick); recovery on the script's, from \`ip link set up\` to the first poll (20 ms apart)"
  echo "that saw the phone online."
} | tee "$out"
exec 3>&-
