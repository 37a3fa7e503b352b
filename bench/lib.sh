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
