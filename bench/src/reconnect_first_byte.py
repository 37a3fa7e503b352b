#!/usr/bin/env python3
"""Reconnect to first replayed byte, for bench/shared_journal.sh.

For each of N streams: a streamed chat request to replica A with its own X-Request-Id, read until
event K has arrived, the connection closed (the client "dropped"); AWAY ms later the same request to
replica B with `Last-Event-ID: <id>:K`, timed from the moment its last byte is sent to the first
byte of the replayed body, and read to its end (checked: it ends with [DONE]). Prints one JSON
object: the percentiles in ms and how many reconnects were whole. Loopback only; bounded by N and
per-socket timeouts.
"""
import json
import socket
import sys
import time

host = "127.0.0.1"
port_a, port_b, count, after = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
away_s = float(sys.argv[5]) / 1000 if len(sys.argv) > 5 else 0.0


def request(port, body, headers):
    s = socket.create_connection((host, port), timeout=30)
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n" % host
    for k, v in headers.items():
        head += "%s: %s\r\n" % (k, v)
    head += "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    s.sendall(head.encode() + body)
    return s


def read_until(s, marker, seen=b""):
    while marker not in seen:
        chunk = s.recv(65536)
        if not chunk:
            break
        seen += chunk
    return seen


firsts, whole = [], 0
for i in range(count):
    rid = "rc-%d-%d" % (time.monotonic_ns(), i)
    body = json.dumps({"model": "mock-model", "stream": True, "temperature": 0,
                       "messages": [{"role": "user", "content": "reconnect %d" % i}]}).encode()
    a = request(port_a, body, {"X-Request-Id": rid})
    read_until(a, ("id: %s:%d\n" % (rid, after)).encode())
    a.close()
    time.sleep(away_s)  # the client is away: the producer goes on
    t0 = time.perf_counter()
    b = request(port_b, body, {"X-Request-Id": rid, "Last-Event-ID": "%s:%d" % (rid, after)})
    got = read_until(b, b"\r\n\r\n")
    while len(got) <= got.find(b"\r\n\r\n") + 4:  # the first byte of the body
        more = b.recv(65536)
        if not more:
            break
        got += more
    firsts.append((time.perf_counter() - t0) * 1000)
    got = read_until(b, b"[DONE]", got)
    whole += 1 if b" 200 " in got[:16] and b"[DONE]" in got else 0
    b.close()

firsts.sort()
pct = lambda p: round(firsts[min(len(firsts) - 1, int(p * len(firsts)))], 3)
print(json.dumps({"count": count, "whole": whole, "p50": pct(0.50), "p90": pct(0.90),
                  "p99": pct(0.99), "max": round(firsts[-1], 3)}))
