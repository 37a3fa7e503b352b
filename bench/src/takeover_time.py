#!/usr/bin/env python3
"""Takeover time, for bench/shared_journal.sh.

N streamed chat requests run on replica A (each with its own X-Request-Id); once each has had
event K, A is SIGKILLed (by its pid, which the bench started). Each client had read A until it
died; it reconnects at once to replica B or C with `Last-Event-ID: <id>:<the last event it had>`.
The stream there stands still until B or C takes it over (the lease of A ran out) and continues the
generation on the upstream. Measured per client: from the kill to the first byte of the next event,
and whether the stream then ends with [DONE] and no error event. Prints one JSON object: the
percentiles in ms and the counts. Loopback only; bounded by N and per-socket timeouts.
"""
import json
import os
import signal
import socket
import sys
import threading
import time

host = "127.0.0.1"
port_a, pid_a = int(sys.argv[1]), int(sys.argv[2])
takers = [int(p) for p in sys.argv[3].split(",")]
count, after = int(sys.argv[4]), int(sys.argv[5])


def request(port, body, headers):
    s = socket.create_connection((host, port), timeout=30)
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n" % host
    for k, v in headers.items():
        head += "%s: %s\r\n" % (k, v)
    head += "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    s.sendall(head.encode() + body)
    return s


def last_event(seen, rid):
    marker = ("id: %s:" % rid).encode()
    at = seen.rfind(marker)
    if at < 0:
        return 0
    end = seen.find(b"\n", at)
    return int(seen[at + len(marker):end]) if end > 0 else 0


killed_at = [None]
kill_now = threading.Event()
ready = threading.Semaphore(0)
results = [None] * count


def client(i):
    rid = "takeover-%d-%d" % (time.monotonic_ns(), i)
    body = json.dumps({"model": "mock-model", "stream": True, "temperature": 0,
                       "messages": [{"role": "user", "content": "takeover %d" % i}]}).encode()
    a = request(port_a, body, {"X-Request-Id": rid})
    seen, told = b"", False
    while True:
        try:
            chunk = a.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        seen += chunk
        if not told and ("id: %s:%d\n" % (rid, after)).encode() in seen:
            told = True
            ready.release()
    if not told:
        ready.release()
    a.close()
    kill_now.wait()
    had = last_event(seen, rid)
    if b"[DONE]" in seen or had == 0:
        results[i] = {"ok": False, "why": "ended before the kill" if had else "nothing from A"}
        return
    b = request(takers[i % len(takers)], body, {"X-Request-Id": rid, "Last-Event-ID": "%s:%d" % (rid, had)})
    got = b""
    while b"\r\n\r\n" not in got:
        more = b.recv(65536)
        if not more:
            break
        got += more
    while len(got) <= got.find(b"\r\n\r\n") + 4:  # the first byte of the next event
        more = b.recv(65536)
        if not more:
            break
        got += more
    first_ms = (time.perf_counter() - killed_at[0]) * 1000
    while b"[DONE]" not in got:
        more = b.recv(65536)
        if not more:
            break
        got += more
    b.close()
    whole = b" 200 " in got[:16] and b"[DONE]" in got and b'"error"' not in got
    results[i] = {"ok": whole, "first_ms": first_ms, "from": had}


threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
for t in threads:
    t.start()
for _ in range(count):
    ready.acquire(timeout=30)
os.kill(pid_a, signal.SIGKILL)
killed_at[0] = time.perf_counter()
kill_now.set()
for t in threads:
    t.join(60)

firsts = sorted(r["first_ms"] for r in results if r and r["ok"])
pct = lambda p: round(firsts[min(len(firsts) - 1, int(p * len(firsts)))], 1) if firsts else None
print(json.dumps({"count": count, "whole": len(firsts), "p50": pct(0.50), "p90": pct(0.90),
                  "p99": pct(0.99), "max": round(firsts[-1], 1) if firsts else None,
                  "problems": [r for r in results if not r or not r["ok"]][:5]}))
