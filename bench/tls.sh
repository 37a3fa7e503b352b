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

body='{"object":"list","data":[{"id":"mock-model","object":"model","owned_by":"nines"}]}'
start_nginx "$work/up" "
  server {
    listen 127.0.0.1:19301 reuseport backlog=4096;
    keepalive_requests 1000000;
    location / { default_type application/json; return 200 '$body'; }
  }"
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

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
cat > "$work/close.lua" <<'LUA'
wrk.headers["Connection"] = "close"
LUA
printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$(cat "$work/secret")" > "$work/key.lua"

# One run: prints "requests/s p99 cpu-us-per-request".
run() {  # pid url [script]
  local pid=$1 url=$2 script=${3:-}
  local args=(-t1 -c50 -d"${DURATION}s" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  local before after
  before=$(ticks "$pid")
  wrk "${args[@]}" "$url" > "$work/wrk.txt"
  after=$(ticks "$pid")
  if grep -qE 'Non-2xx|Socket errors' "$work/wrk.txt"; then
    echo "$url: $(grep -E 'Non-2xx|Socket errors' "$work/wrk.txt")" >&2
  fi
  awk -v b="$before" -v a="$after" -v hz="$hz" '
    /Requests\/sec/ {rps=$2}
    $1=="99%" {p99=$2}
    /requests in/ {n=$1}
    END {printf "%s %s %.2f\n", rps, p99, (a-b)/hz*1e6/n}' "$work/wrk.txt"
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

declare -A out
for kind in keepalive close; do
  script=""
  [ $kind = close ] && script="$work/close.lua"
  for name in nginx nines; do : > "$work/$name-$kind"; done
  for round in $(seq 1 "$ROUNDS"); do
    # Alternate which goes first.
    order="nginx nines"; [ $((round % 2)) = 0 ] && order="nines nginx"
    for name in $order; do
      if [ $name = nginx ]; then
        run "$nginx_worker" https://127.0.0.1:19302/v1/models "$script" >> "$work/$name-$kind"
      else
        run "$nines_tls" https://127.0.0.1:19303/v1/models "$script" >> "$work/$name-$kind"
      fi
    done
  done
  for name in nginx nines; do
    out[$name-$kind]="$(awk '{print $1}' "$work/$name-$kind" | median) | $(awk '{print $2}' "$work/$name-$kind" | sort -V | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}') | $(awk '{print $3}' "$work/$name-$kind" | median)"
  done
done

for name in open keys; do : > "$work/auth-$name"; done
for round in $(seq 1 "$ROUNDS"); do
  order="open keys"; [ $((round % 2)) = 0 ] && order="keys open"
  for name in $order; do
    if [ $name = open ]; then
      run "$nines_open" http://127.0.0.1:19304/v1/models "$work/key.lua" >> "$work/auth-open"
    else
      run "$nines_keys" http://127.0.0.1:19305/v1/models "$work/key.lua" >> "$work/auth-keys"
    fi
  done
done
open_cpu=$(awk '{print $3}' "$work/auth-open" | median)
keys_cpu=$(awk '{print $3}' "$work/auth-keys" | median)

echo "### TLS termination beside nginx (same ECDSA P-256 certificate, one worker each)"
echo
echo "(wrk -t1 -c50 -d${DURATION}s GET /v1/models over https, static upstream; median of ${ROUNDS} rounds in alternating order; CPU is the proxy process's user + system time per request. Without keep-alive every request is a full TLS handshake.)"
echo
echo "| proxy | connections | requests/s | p99 | CPU µs per request |"
echo "|---|---|---:|---:|---:|"
for kind in keepalive close; do
  label="keep-alive"; [ $kind = close ] && label="one handshake per request"
  echo "| nginx | $label | ${out[nginx-$kind]} |"
  echo "| nines | $label | ${out[nines-$kind]} |"
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
