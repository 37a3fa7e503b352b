# A phone behind a link that can go silent, attached to Debian's own adb server, kept by
# `nines devices`: what tests/netns/devices_blackhole_test.sh and bench/devices_blinks.sh share.
# Sourced after far_host.sh and bench/lib.sh, inside the namespace, with $bin and $work set:
#
#   start_phone_fleet N PORT ADB_PORT BYTES  # N phones in one fake, attached to an adb server
#   start_kept_phone         # fake adbd at $far_address:5555 ($serial) across the veth link; the
#                            # adb server on 127.0.0.1:15037 (private HOME), `adb connect`ed; the
#                            # keeper (admin 127.0.0.1:19903, ADB proxy 127.0.0.1:15038, hold 30 s)
#   echo "mode hang" >&7     # the phone's commands (mode ok|hang)
#   adb_ ARGS...             # the real adb client under the private HOME
#   view / field NAME JSON   # GET /devices/$serial, one field of a JSON text
#   await_state STATE...     # polls until the phone is in one of them; the view in $seen
#   verdict_ms               # how long after the last good probe the verdict in $seen came
#   now_ms

start_kept_phone() {
  mkfifo "$work/phone.in"
  nsenter --target "$far_ns" --net "$bin" fake-adbd --listen "$far_address:5555" \
    --screenshot-bytes 65536 <"$work/phone.in" >"$work/phone.log" 2>&1 &
  pids+=($!)
  exec 7>"$work/phone.in"  # the phone's commands (mode ok|hang)
  await_listening "$work/phone.log" || fail "the phone does not listen: $(cat "$work/phone.log")"
  mkdir -p "$work/home"
  env HOME="$work/home" ADB_LOCAL_TRANSPORT_MAX_PORT=0 adb -P 15037 nodaemon server \
    >"$work/adb-server.log" 2>&1 &
  pids+=($!)
  wait_port 15037 || fail "the adb server does not listen"
  adb_ -P 15037 connect "$serial" >"$work/connect.log" 2>&1 || fail "adb connect failed"
  grep -q "connected to $serial" "$work/connect.log" || fail "adb connect: $(cat "$work/connect.log")"

  "$bin" devices --adb-port 15037 --admin-listen 127.0.0.1:19903 --adb-proxy 127.0.0.1:15038 \
    --hold-ms 30000 >"$work/keeper.log" 2>&1 &
  pids+=($!)
  wait_port 19903 || fail "nines devices did not start"
}

# Many phones in one fake (`fake-adbd --phones COUNT` at $far_address:FIRST_PORT and on),
# attached to Debian's adb server on 127.0.0.1:ADB_PORT (private HOME), each `adb connect`ed.
# The phones' stdout (their listening line, then `tap SERIAL X Y` per tap) is appended to
# $work/phones.log; fd 7 takes their commands (mode ok|hang, loss P); their serials in $serials.
start_phone_fleet() {  # count first-port adb-port screenshot-bytes
  local i s
  serials=()
  for i in $(seq 0 $(($1 - 1))); do serials+=("$far_address:$(($2 + i))"); done
  mkfifo "$work/phones.in"
  nsenter --target "$far_ns" --net "$bin" fake-adbd --listen "$far_address:$2" --phones "$1" \
    --screenshot-bytes "$4" <"$work/phones.in" >>"$work/phones.log" 2>"$work/phones-err.log" &
  pids+=($!)
  exec 7>"$work/phones.in"
  await_listening "$work/phones.log" || fail "the phones do not listen"
  mkdir -p "$work/home"
  env HOME="$work/home" ADB_LOCAL_TRANSPORT_MAX_PORT=0 adb -P "$3" nodaemon server \
    >"$work/adb-server.log" 2>&1 &
  pids+=($!)
  wait_port "$3" || fail "the adb server does not listen"
  for s in "${serials[@]}"; do
    adb_ -P "$3" connect "$s" >"$work/connect.log" 2>&1 || fail "adb connect $s failed"
    grep -q "connected to $s" "$work/connect.log" || fail "adb connect $s: $(cat "$work/connect.log")"
  done
}

serial="$far_address:5555"
adb_() { HOME="$work/home" adb "$@"; }
view() { curl -s --max-time 2 "http://127.0.0.1:19903/devices/$serial" || true; }
field() { grep -o "\"$1\":[^,}]*" <<<"$2" | head -1 | cut -d: -f2- | tr -d '"'; }
# Polls (20 ms apart, at most 20 s) until a fake's log says it listens (a sanitizer build starts
# slowly, and \`adb connect\` to a port nobody holds yet is refused at once).
await_listening() {
  local i
  for i in $(seq 1 1000); do
    grep -q "listening on" "$1" 2>/dev/null && return 0
    sleep 0.02
  done
  return 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# Polls (20 ms apart, at most 30 s) until the phone is in one of the states; the view seen then in
# $seen. Returns 1 on timeout.
await_state() {
  local i v s
  for i in $(seq 1 1500); do
    v=$(view)
    s=$(field state "$v")
    for want in "$@"; do
      if [ "$s" = "$want" ]; then seen=$v; return 0; fi
    done
    sleep 0.02
  done
  return 1
}
# How long after the last good probe the verdict in $seen came, in ms.
verdict_ms() {
  awk -v a="$(field since_good_probe_s "$seen")" -v b="$(field state_for_s "$seen")" \
    'BEGIN { printf "%d", (a - b) * 1000 }'
}

