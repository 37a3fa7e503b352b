// A real POST-SSE client reconnecting with Last-Event-ID through a link that resets mid-event:
// @microsoft/fetch-event-source records an event's id as soon as it reads the `id:` field, before
// the event is complete, so a gateway that writes `id:` first makes it skip that event on
// reconnect. nines writes `id:` last, so only a break exactly between the id line and the blank
// line could cost an event: the link here resets anywhere else inside an event, and every answer
// must arrive exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { fetchEventSource } from '@microsoft/fetch-event-source';
import { startMock, startGateway, stopAll } from './harness.mjs';

// fetch-event-source is written for browsers: it reaches for window and document.
globalThis.window ??= globalThis;
globalThis.document ??= { hidden: false, addEventListener() {}, removeEventListener() {} };

// A deterministic generator, so that a failing run can be repeated.
function generator(seed) {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

// A TCP proxy on loopback in front of `port`. For each connection, once the client's request head
// is in, `plan(reconnect)` gives a cut: null (relay everything) or { event, offset } — reset the
// link `offset` parts of the way into the `event`-th SSE event from the gateway, anywhere from its
// first byte to the byte before its id line's end (never in the one-byte window after it).
function resettingProxy(port, plan) {
  const stats = { connections: 0, cuts: 0 };
  const server = net.createServer((client) => {
    stats.connections++;
    const upstream = net.connect(port, '127.0.0.1');
    let request = '';
    let cut;
    client.on('data', (chunk) => {
      if (cut === undefined) {
        request += chunk.toString('latin1');
        if (request.includes('\r\n\r\n')) {
          cut = plan(/\r\nlast-event-id:/i.test(request));
        }
      }
      upstream.write(chunk);
    });
    let raw = '';
    let written = 0;
    let done = false;
    const close = () => {
      upstream.destroy();
      client.destroy();
    };
    upstream.on('data', (chunk) => {
      if (done) return;
      raw += chunk.toString('latin1');
      let end = raw.length;
      if (cut) {
        // Where the cut-th event starts and where its id line ends.
        let at = -1;
        for (let k = 0; k < cut.event; ++k) {
          at = raw.indexOf('data: ', at + 1);
          if (at < 0) break;
        }
        const blank = at < 0 ? -1 : raw.indexOf('\n\n', at);
        if (blank >= 0) {
          // Positions from `at` to `blank` (the byte before the id line's newline) are inside the
          // event; `blank + 1` would be the window, and is never chosen.
          const position = at + Math.floor(cut.offset * (blank + 1 - at));
          client.write(Buffer.from(raw.slice(written, position), 'latin1'), () => {
            client.resetAndDestroy();
            upstream.destroy();
          });
          written = position;
          done = true;
          stats.cuts++;
          return;
        }
        end = at < 0 ? raw.length : Math.max(written, at);  // hold the event until it is whole
      }
      client.write(Buffer.from(raw.slice(written, end), 'latin1'));
      written = end;
      if (!cut && raw.includes('data: [DONE]') && raw.endsWith('\r\n0\r\n\r\n')) {
        // One answer per connection: the next request comes on a connection of its own, with
        // a plan of its own.
        client.end();
        upstream.end();
        done = true;
      }
    });
    upstream.on('end', () => {
      if (!done) {
        client.end(Buffer.from(raw.slice(written), 'latin1'));
      }
    });
    upstream.on('error', close);
    client.on('error', close);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, port: server.address().port, stats }));
  });
}

function chatBody(i) {
  return JSON.stringify({
    model: 'm',
    stream: true,
    messages: [{ role: 'user', content: `step ${i}: where is the settings button?` }],
  });
}

// The text of a stream read straight from the gateway, unbroken.
async function straightText(url, body) {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  let text = '';
  for (const block of (await res.text()).split('\n\n')) {
    const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    if (data && data !== '[DONE]') text += JSON.parse(data).choices[0].delta.content ?? '';
  }
  return text;
}

test('fetch-event-source reconnecting with Last-Event-ID through a resetting link: 60 of 60 exact', async () => {
  const mock = await startMock(['--tokens', '40', '--faults', 'tpot_ms=2']);
  const gw = await startGateway([mock.url], ['--journal', 'keyed']);
  const random = generator(2026);
  // Every first connection of an answer is cut inside one of its events 2 to 29; a third of the
  // reconnects are cut again.
  const proxy = await resettingProxy(gw.port, (reconnect) =>
    !reconnect || random(3) === 0 ? { event: 2 + random(28), offset: random(1000) / 1000 } : null);
  try {
    const answers = 60;
    const results = [];
    for (let batch = 0; batch < answers; batch += 6) {
      results.push(...await Promise.all(Array.from({ length: 6 }, async (_, j) => {
        const i = batch + j;
        const body = chatBody(i);
        const expected = await straightText(gw.url, body);
        let text = '';
        let done = false;
        let reconnects = -1;
        await fetchEventSource(`http://127.0.0.1:${proxy.port}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': `fes-${i}` },
          body,
          openWhenHidden: true,
          fetch: globalThis.fetch,
          onopen: async (res) => {
            ++reconnects;
            assert.equal(res.status, 200);
          },
          onmessage: (ev) => {
            if (ev.data === '[DONE]') {
              done = true;
            } else if (ev.data) {
              text += JSON.parse(ev.data).choices[0].delta.content ?? '';
            }
          },
          onclose: () => {
            if (!done) throw new Error('the stream closed before [DONE]: reconnect');
          },
          onerror: (err) => {
            if (reconnects > 10) throw err;
            return 5;  // ms before reconnecting
          },
        });
        return { i, exact: text === expected, text, expected, reconnects };
      })));
    }
    const wrong = results.filter((r) => !r.exact);
    assert.equal(wrong.length, 0, `answers not exact: ${JSON.stringify(wrong.slice(0, 3))}`);
    const reconnected = results.reduce((n, r) => n + r.reconnects, 0);
    assert.ok(proxy.stats.cuts >= answers, `every answer was cut at least once (${proxy.stats.cuts})`);
    assert.equal(reconnected, proxy.stats.cuts, 'every cut was followed by one reconnect');
  } finally {
    proxy.server.close();
    stopAll(gw, mock);
  }
});
