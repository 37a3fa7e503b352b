#!/usr/bin/env bash
# `make demo`: a gateway on 127.0.0.1:8080 in front of three mock model servers, one of which
# refuses connections and one of which answers 503 half of the time and breaks streams half-way.
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/nines
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

"$bin" mock-llm --listen 127.0.0.1:9001 --refuse 2>"$dir/a.log" & pids+=($!)
"$bin" mock-llm --listen 127.0.0.1:9002 --faults error_rate=0.5,break_rate=0.3,tpot_ms=30 2>"$dir/b.log" & pids+=($!)
"$bin" mock-llm --listen 127.0.0.1:9003 --faults tpot_ms=30 2>"$dir/c.log" & pids+=($!)
cat > "$dir/gateway.toml" <<TOML
[gateway]
listen = "127.0.0.1:8080"
access_log = "$dir/access.log"

[[upstreams]]
name = "gpu-a (refuses connections)"
url = "http://127.0.0.1:9001/v1"
priority = 0

[[upstreams]]
name = "gpu-b (503 half of the time, breaks 30% of its streams)"
url = "http://127.0.0.1:9002/v1"
priority = 0

[[upstreams]]
name = "gpu-c (healthy, 30 ms per token)"
url = "http://127.0.0.1:9003/v1"
priority = 0
TOML
"$bin" gateway --config "$dir/gateway.toml" 2>"$dir/gateway.log" & gateway=$!; pids+=($gateway)
for _ in $(seq 1 100); do
  curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break
  sleep 0.1
done
# A light load for the dashboard to show: 5 streamed requests a second for ten minutes.
"$bin" bench --url http://127.0.0.1:8080 --stream true --rate 5 --duration 600 --requests 3000 \
  --max-seconds 660 --progress 0 \
  >/dev/null 2>&1 & pids+=($!)

cat <<TXT

nines gateway is listening on http://127.0.0.1:8080 in front of three mock model servers:
  gpu-a refuses connections, gpu-b answers 503 half of the time and breaks 30% of its streams
  half-way (the gateway continues them on gpu-c), gpu-c is healthy.

Try a streamed completion (every one succeeds):

  curl -N http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"mock-model","stream":true,"messages":[{"role":"user","content":"hello"}]}'

Or with the openai SDK (npm install openai):

  import OpenAI from 'openai';
  const client = new OpenAI({ baseURL: 'http://127.0.0.1:8080/v1', apiKey: 'unused' });
  const stream = await client.chat.completions.create({
    model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'hello' }] });
  for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? '');

See it (a light load of 5 streamed requests a second is running for ten minutes):

  SLA dashboard:  http://127.0.0.1:9901/dashboard   (the admin listener)
  Prometheus:     http://127.0.0.1:9901/metrics
  JSON status:    http://127.0.0.1:9901/status   (or: $bin status http://127.0.0.1:9901)
  Access log:     $dir/access.log   (one JSON line per request)

Here is one streamed request through the gateway now:

TXT
curl -sN http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \
  -d '{"model":"mock-model","stream":true,"messages":[{"role":"user","content":"hello"}]}'
echo
echo "Press Ctrl-C to stop."
wait "$gateway"
