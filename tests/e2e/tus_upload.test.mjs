// tus-js-client, the reference tus client, against the gateway's /v1/uploads: an upload in one
// go and then used as a request's body (Nines-Upload), an upload aborted and resumed with its URL,
// and an upload through a link that drops every connection after 1 MB sent — where the issue
// measured tus-js-client with @tus/server sending 13.0 MB for 3 MB. Here each byte is stored once,
// and every resume starts at the offset the gateway has.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as tus from 'tus-js-client';
import { startMock, startNines, stopAll } from './harness.mjs';

const secret = 'secret-tus-e2e-0123456789';
let mock;
let gateway;
let dir;

before(async () => {
  mock = await startMock();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nines-tus-'));
  const keys = path.join(dir, 'keys.toml');
  const digest = crypto.createHash('sha256').update(secret).digest('hex');
  fs.writeFileSync(keys, `[[keys]]\nid = "tus"\nhash = "sha256:${digest}"\nmodels = ["*"]\n`);
  const config = path.join(dir, 'gateway.toml');
  fs.writeFileSync(config, [
    '[gateway]', 'listen = "127.0.0.1:0"', 'workers = 1', 'access_log = "off"',
    '[admin]', 'listen = "127.0.0.1:0"',
    '[auth]', `keys_file = "${keys}"`,
    '[uploads]', `dir = "${path.join(dir, 'uploads')}"`,
    '[[upstreams]]', `url = "${mock.url}"`, ''].join('\n'));
  gateway = await startNines(['gateway', '--config', config], 'nines gateway listening on');
});

after(() => {
  stopAll(gateway, mock);
  fs.rmSync(dir, { recursive: true, force: true });
});

// A chat request carrying a screenshot of `bytes` base64 characters.
function screenshotBody(bytes, fill) {
  return Buffer.from(JSON.stringify({
    model: 'mock-model', stream: false, temperature: 0,
    messages: [{ role: 'user', content: `tap OK: data:image/png;base64,${fill.repeat(bytes)}` }],
  }));
}

const sha256 = (b) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

function upload(body, endpoint, options = {}) {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(body, {
      endpoint,
      headers: { Authorization: `Bearer ${secret}` },
      metadata: { filename: 'step.json' },
      retryDelays: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      onError: reject,
      onSuccess: () => resolve(u),
      ...options,
    });
    options.onCreated?.(u);
    u.start();
  });
}

async function askWith(uploadUrl) {
  const r = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${secret}`, 'Nines-Upload': uploadUrl,
      'Content-Type': 'application/json', 'x-mock-digest': 'sha256',
    },
  });
  return { status: r.status, digest: r.headers.get('x-mock-body-sha256'), body: await r.json() };
}

async function metric(series) {
  const text = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

test('an upload made by tus-js-client is the body of the request that names it', async () => {
  const body = screenshotBody(1 << 20, 'A');
  const u = await upload(body, `${gateway.url}/v1/uploads`);
  assert.match(u.url, /\/v1\/uploads\/[0-9a-f]{32}$/);
  const answer = await askWith(u.url);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.equal(answer.digest, sha256(body));
  assert.ok(answer.body.choices[0].message.content.length > 0);
  assert.equal((await askWith(u.url)).status, 410); // used once, then ended
});

test('an aborted upload resumes from the offset the gateway stored', async () => {
  const body = screenshotBody(3 << 20, 'B');
  let first;
  let stopped;
  const aborted = new Promise((resolve) => { stopped = resolve; });
  const firstRun = upload(body, `${gateway.url}/v1/uploads`, {
    chunkSize: 512 * 1024,
    onCreated: (u) => { first = u; },
    onChunkComplete: (chunk, sent) => {
      if (sent >= 1024 * 1024) {
        first.abort().then(() => stopped(sent));
      }
    },
  });
  firstRun.catch(() => {});
  const sentBefore = await aborted;
  let resumedFrom;
  const second = await upload(body, `${gateway.url}/v1/uploads`, {
    uploadUrl: first.url,
    onProgress: (sent) => { resumedFrom ??= sent; },
  });
  assert.equal(second.url, first.url);
  assert.ok(resumedFrom > sentBefore - 1, `resumed at ${resumedFrom}, had ${sentBefore}`);
  const answer = await askWith(second.url);
  assert.equal(answer.status, 200);
  assert.equal(answer.digest, sha256(body));
});

// A link to `port` that drops every connection once it has carried `limit` bytes toward it.
function droppingLink(port, limit) {
  const stats = { connections: 0, bytes: 0 };
  const server = net.createServer((client) => {
    stats.connections++;
    const upstream = net.connect(port, '127.0.0.1');
    let carried = 0;
    client.on('data', (chunk) => {
      const room = limit - carried;
      const piece = chunk.length > room ? chunk.subarray(0, room) : chunk;
      carried += piece.length;
      stats.bytes += piece.length;
      upstream.write(piece);
      if (carried >= limit) {
        client.destroy();
        upstream.end();
      }
    });
    upstream.on('data', (chunk) => client.write(chunk));
    for (const s of [client, upstream]) {
      s.on('error', () => { client.destroy(); upstream.destroy(); });
      s.on('close', () => { client.destroy(); upstream.end(); });
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, stats, port: server.address().port }));
  });
}

test('through a link that drops every connection after 1 MB, 3 MB are stored with nothing twice', async () => {
  const body = screenshotBody(3 << 20, 'C');
  const link = await droppingLink(gateway.port, 1 << 20);
  const keptBefore = await metric('nines_upload_bytes_received_total{result="kept"}');
  try {
    const u = await upload(body, `http://127.0.0.1:${link.port}/v1/uploads`);
    const kept = (await metric('nines_upload_bytes_received_total{result="kept"}')) - keptBefore;
    assert.equal(kept, body.length);
    // Everything the link carried: the body once, and the requests' heads.
    assert.ok(link.stats.bytes < body.length + 64 * 1024,
      `${link.stats.bytes} bytes over ${link.stats.connections} connections for ${body.length}`);
    console.log(`tus-js-client: ${body.length} bytes stored, ${link.stats.bytes} carried over ` +
      `${link.stats.connections} connections`);
    const answer = await askWith(u.url.replace(`:${link.port}`, `:${gateway.port}`));
    assert.equal(answer.status, 200);
    assert.equal(answer.digest, sha256(body));
  } finally {
    link.server.close();
  }
});
