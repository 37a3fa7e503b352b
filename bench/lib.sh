# Shared by the benchmark scripts (sourced after `work` names their scratch folder): the processes
# they start are stopped at exit, by their ids, and the folder removed; waiting for a port; an nginx
# with one worker.

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() {  # port
  for _ in $(seq 1 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  return 1
}

# Writes and starts an nginx with one worker whose http block holds $2; its files live in $1.
start_nginx() {  # dir http-block
  mkdir -p "$1"
  cat > "$1/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $1;
  proxy_temp_path $1;
$2
}
CONF
  nginx -c "$1/nginx.conf" -p "$1" & pids+=($!)
}

# The small-request upstream of every benchmark: nginx, one worker, answering a fixed JSON body.
start_static_upstream() {  # dir port
  local body='{"object":"list","data":[{"id":"mock-model","object":"model","owned_by":"nines"}]}'
  start_nginx "$1" "
  server {
    listen 127.0.0.1:$2 reuseport backlog=4096;
    keepalive_requests 1000000;
    client_max_body_size 8m;  # the 2 MB body row of bench/lean.sh
    location / { default_type application/json; return 200 '$body'; }
  }"
}

# CPU time (user + system) of a process so far, in clock ticks (getconf CLK_TCK per second).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# nginx as the proxy of the small-request rows: one worker, keep-alive to the upstream, retries as
# an operator would set them, bodies up to 8 MiB (the 2 MB body row).
start_nginx_proxy() {  # dir port upstream-port
  start_nginx "$1" "
  upstream models { server 127.0.0.1:$3; keepalive 128; }
  server {
    listen 127.0.0.1:$2 reuseport backlog=4096;
    keepalive_requests 1000000;
    client_max_body_size 8m;
    client_body_buffer_size 4m;
    location / {
      proxy_pass http://models;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_next_upstream error timeout http_502 http_503 http_504 http_429;
    }
  }"
}

# HAProxy as the proxy: one thread, keep-alive and connection reuse, retries as an operator would
# set them (retry-on has no 429 in HAProxy 2.6). Sets haproxy_pid.
start_haproxy() {  # dir port upstream-port
  mkdir -p "$1"
  cat > "$1/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response response-timeout 502 503 504
frontend fe
  bind 127.0.0.1:$2
  default_backend models
backend models
  server up 127.0.0.1:$3
CONF
  haproxy -db -f "$1/haproxy.cfg" 2>"$1/haproxy.log" & pids+=($!)
  haproxy_pid=$!
}

to_ms() {  # wrk latency like 1.23ms / 850.00us / 1.2s -> ms
  awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.3f", n }'
}

median_spread() {  # values... -> "median (min–max)"
  printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
    m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2;
    printf "%.2f (%.2f–%.2f)", m, v[1], v[NR] }'
}

median() {  # values... -> median
  printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END { printf "%.2f", NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
}
