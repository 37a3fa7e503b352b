# A far host across a veth link, for tests and benchmarks that need a link that drops silently.
# Sourced by a script that re-runs itself in a network namespace of its own first:
#
#   source tests/netns/far_host.sh
#   enter_own_namespace "$0" "$@"      # returns only inside the new namespace
#   make_far_host                      # 10.77.0.1 here, 10.77.0.2 over there, link up
#   far CMD ...                        # runs CMD in the far host's namespace (a function)
#   link_up / link_down                # the far end of the link: down drops everything silently
#   fail "why"                         # a test's failure, with the end of each log in $work
#   make_second_link                   # a second link to the same far host: 10.78.0.1 here,
#                                      # $far_address2 over there ("cellular" beside "wifi")
#
# As root the namespace is made directly, otherwise through a user namespace. The far host is
# held by one sleeping process, its id in $far_ns; the caller stops it with the rest.

far_address=10.77.0.2
far_address2=10.78.0.2

enter_own_namespace() {  # script, its arguments
  if [ "${NINES_NETNS_INSIDE:-}" = 1 ]; then
    return 0
  fi
  local as_root=()
  [ "$(id -u)" -ne 0 ] && as_root=(--user --map-root-user)
  exec env NINES_NETNS_INSIDE=1 unshare "${as_root[@]}" --net bash "$@"
}

make_far_host() {
  ip link set lo up
  unshare --net sleep 3600 &  # unshare execs sleep: this id is the holder itself
  far_ns=$!
  local own i
  own=$(readlink /proc/self/ns/net)
  for i in $(seq 1 200); do  # until the holder is in its namespace
    [ "$(readlink "/proc/$far_ns/ns/net" 2>/dev/null)" != "$own" ] && break
    sleep 0.01
  done
  ip link add wifi0 type veth peer name far0
  ip link set far0 netns "$far_ns"
  ip addr add 10.77.0.1/24 dev wifi0
  ip link set wifi0 up
  far ip link set lo up
  far ip addr add "$far_address/24" dev far0
  far ip link set far0 up
  # The far end's address pinned, so that a dropped link stays silent ("host unreachable" after
  # a failed ARP would be an answer of sorts).
  local mac
  mac=$(far ip -o link show far0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  ip neigh replace "$far_address" lladdr "$mac" dev wifi0 nud permanent
}

make_second_link() {
  ip link add cell0 type veth peer name farc0
  ip link set farc0 netns "$far_ns"
  ip addr add 10.78.0.1/24 dev cell0
  ip link set cell0 up
  far ip addr add "$far_address2/24" dev farc0
  far ip link set farc0 up
}

# A test's failure: the reason, then the end of every log in $work (the caller's scratch folder).
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.log; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done
  exit 1
}

# Looks at a condition up to 10 s, 50 ms apart (what other processes do is polled, not slept on).
wait_until() {
  local i
  for i in $(seq 1 200); do
    if "$@"; then return 0; fi
    sleep 0.05
  done
  return 1
}
answers() { curl -sf -o /dev/null "$1"; }  # an HTTP URL answers 2xx

far() { nsenter --target "$far_ns" --net "$@"; }
link_up() { far ip link set far0 up; }
link_down() { far ip link set far0 down; }
