#!/usr/bin/env bash
# TLS termination beside nginx, and what client keys cost (`make bench` runs it after run.sh;
# alone: bench/tls.sh). The same static upstream (nginx, one worker, fixed JSON), the same
# certificate (an ECDSA P-256 leaf and its intermediate, from tests/integration/tls_fixtures.sh),
# one worker each, access logs off:
#   - https with keep-alive: wrk -t1 -c50, GET /v1/models: requests/s, p99, proxy CPU per request;
#   - https without keep-alive (Connection: close: one full handshake per request): handshakes/s
#     and proxy CPU per handshake;
#   - plain http through nines open and with a keys file of 1,000 keys, every request carrying a
#     valid key: the CPU the key check adds per request.
# CPU is user + system of the proxy's process from /proc/PID/stat over the wrk run (nginx: its
# one worker). Each load is bounded in time; everything is on 127.0.0.1. Prints Markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/build/nines
work=$(mktemp -d /tmp/nines-bench-tls.XXXXXX)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}

# shellcheck source=bench/lib.sh
source bench/lib.sh

bash tests/integration/tls_fixtures.sh "$work/certs" >/dev/null
cert=$work/certs/chain.pem
key=$work/certs/leaf.key

start_static_upstream "$work/up" 19301
start_nginx "$work/px" "
  upstream models { server 127.0.0.1:19301; keepalive 128; }
  server {
    listen 127.0.0.1:19302 ssl reuseport backlog=4096;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://models;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }
  }"
nginx_master=$!

"$bin" gateway --admin-listen 127.0.0.1:0 --upstream http://127.0.0.1:19301/v1 \
  --listen 127.0.0.1:19303 --workers 1 --access-log off --tls-cert "$cert" --tls-key "$key" \
  2>"$work/nines-tls.log" & pids+=($!)
nines_tls=$!

# 1,000 keys; the benchmark's client holds the last one.
python3 - "$work/keys.toml" "$work/secret" <<'PY'
import hashlib, secrets, sys
with open(sys.argv[1], "w") as f:
    for i in range(1000):
        s = "nk-" + secrets.token_urlsafe(32)
        f.write(f'[[keys]]\nid = "agent-{i}"\nhash = "sha256:{hashlib.sha256(s.encode()).hexdigest()}"\nmodels = ["*"]\n')
open(sys.argv[2], "w").write(s)
PY
"$bin" gateway --admin-listen 127.0.0.1:0 --upstream http://127.0.0.1:19301/v1 \
  --listen 127.0.0.1:19304 --workers 1 --access-log off 2>"$work/nines-open.log" & pids+=($!)
nines_open=$!
"$bin" gateway --admin-listen 127.0.0.1:0 --upstream http://127.0.0.1:19301/v1 \
  --listen 127.0.0.1:19305 --workers 1 --access-log off --keys "$work/keys.toml" \
  2>"$work/nines-keys.log" & pids+=($!)
nines_keys=$!
wait_port 19301; wait_port 19302; wait_port 19303; wait_port 19304; wait_port 19305
nginx_worker=$(pgrep -P "$nginx_master" | head -1)

hz=$(getconf CLK_TCK)
cat > "$work/close.lua" <<'LUA'
wrk.headers["Connection"] = "close"
LUA
printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$(cat "$work/secret")" > "$work/key.lua"

# One run: prints "requests/s p99(ms) cpu-us-per-request".
run() {  # pid url [script]
  local pid=$1 url=$2 script=${3:-}
  local args=(-t1 -c50 -d"${DURATION}s" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  local before after
  before=$(cpu_ticks "$pid")
  wrk "${args[@]}" "$url" > "$work/wrk.txt"
  after=$(cpu_ticks "$pid")
  if grep -qE 'Non-2xx|Socket errors' "$work/wrk.txt"; then
    echo "$url: $(grep -E 'Non-2xx|Socket errors' "$work/wrk.txt")" >&2
  fi
  awk -v b="$before" -v a="$after" -v hz="$hz" '
    /Requests\/sec/ {rps=$2}
    $1=="99%" {p99=$2+0; if ($2 ~ /us$/) p99/=1000; else if ($2 ~ /[^m]s$/) p99*=1000; p99=sprintf("%.2fms", p99)}
    /requests in/ {n=$1}
    END {printf "%s %s %.2f\n", rps, p99, (a-b)/hz*1e6/n}' "$work/wrk.txt"
}

# ROUNDS rounds of two runs, which goes first alternating; each run's line is appended to
# $work/NAME.
alternate() {  # script name-a pid-a url-a name-b pid-b url-b
  local script=$1
  : > "$work/$2"; : > "$work/$5"
  for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then
      run "$3" "$4" "$script" >> "$work/$2"; run "$6" "$7" "$script" >> "$work/$5"
    else
      run "$6" "$7" "$script" >> "$work/$5"; run "$3" "$4" "$script" >> "$work/$2"
    fi
  done
}
column() { awk -v c="$2" '{print $c}' "$work/$1" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
row() { echo "$(column "$1" 1) | $(column "$1" 2) | $(column "$1" 3)"; }

alternate "" nginx-keepalive "$nginx_worker" https://127.0.0.1:19302/v1/models \
  nines-keepalive "$nines_tls" https://127.0.0.1:19303/v1/models
alternate "$work/close.lua" nginx-close "$nginx_worker" https://127.0.0.1:19302/v1/models \
  nines-close "$nines_tls" https://127.0.0.1:19303/v1/models
alternate "$work/key.lua" auth-open "$nines_open" http://127.0.0.1:19304/v1/models \
  auth-keys "$nines_keys" http://127.0.0.1:19305/v1/models
open_cpu=$(column auth-open 3)
keys_cpu=$(column auth-keys 3)

echo "### TLS termination beside nginx (same ECDSA P-256 certificate, one worker each)"
echo
echo "(wrk -t1 -c50 -d${DURATION}s GET /v1/models over https, static upstream; median of ${ROUNDS} rounds in alternating order; CPU is the proxy process's user + system time per request. Without keep-alive every request is a full TLS handshake.)"
echo
echo "| proxy | connections | requests/s | p99 | CPU µs per request |"
echo "|---|---|---:|---:|---:|"
for kind in keepalive close; do
  label="keep-alive"; [ $kind = close ] && label="one handshake per request"
  echo "| nginx | $label | $(row "nginx-$kind") |"
  echo "| nines | $label | $(row "nines-$kind") |"
done
echo
echo "### Client keys: what the key check costs"
echo
echo "(plain http, the same load, every request with \`Authorization: Bearer\` of a valid key; nines open against nines with a keys file of 1,000 keys: a SHA-256 of the presented secret, one hash-table lookup, the limits.)"
echo
echo "| nines | CPU µs per request |"
echo "|---|---:|"
echo "| open | $open_cpu |"
echo "| 1,000 keys | $keys_cpu |"
echo "| the key check | $(awk -v a="$keys_cpu" -v b="$open_cpu" 'BEGIN {printf "%.2f", a-b}') |"
echo
echo "### Client keys: the digest compare takes the same time wherever digests differ"
echo
echo "(build/bench_digest_timing: dudect-style, 2,000,000 timings of 64 compares each, digests differing in their first byte against digests differing only in their last, in random order; Welch's t over the timings under their 90th percentile. |t| < 4.5: no leak found. The early-exit compare beside it shows what a leak looks like.)"
echo
echo "| compare | Welch's t | ns, first byte differs | ns, last byte differs |"
echo "|---|---:|---:|---:|"
for mode in "" --naive; do
  # shellcheck disable=SC2086
  line=$("$PWD/build/bench_digest_timing" $mode 2000000)
  name="core::same_digest (CRYPTO_memcmp)"; [ -n "$mode" ] && name="early-exit loop (contrast)"
  echo "| $name | $(echo "$line" | sed -E 's/.*t=([^ ]+).*/\1/') | $(echo "$line" | sed -E 's/.*early_ns=([^ ]+).*/\1/') | $(echo "$line" | sed -E 's/.*late_ns=([^ ]+).*/\1/') |"
done
