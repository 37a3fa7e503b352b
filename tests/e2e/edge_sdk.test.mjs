// The official openai SDK, unchanged and without retries of its own, through `nines edge` →
// `nines gateway` → mock-llm, with faults on both hops (issue 14): the edge's "wifi" uplink runs
// through the chaos proxy, which cuts half of its connections after a few kilobytes toward the
// edge (mid-answer), beside a direct "cellular" uplink; behind the gateway, one model server resets
// every stream after 5 tokens and another answers 503 half of the time. Every answer must be the
// healthy model's, exactly; then the same through the edge's answer cache.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { collect, startMock, startGateway, startNines, stopAll } from './harness.mjs';

const messages = (text) => [{ role: 'user', content: text }];

async function post(url, body) {
  const r = await fetch(url, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  const text = await r.text();
  assert.ok(r.ok, `${url}: ${r.status} ${text}`);
  return JSON.parse(text);
}

async function metric(adminUrl, series) {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

let breaking, overloaded, healthy, gateway, chaos, edge, cachedEdge, direct, work;

function startEdge(name, wifiPort, extra = '') {
  const file = path.join(work, `${name}.toml`);
  writeFileSync(file, `[edge]
listen = "127.0.0.1:0"
workers = 1
access_log = "off"
[admin]
listen = "127.0.0.1:0"
[retry]
backoff_base_ms = 1
${extra}
[[uplinks]]
name = "wifi"
url = "http://127.0.0.1:${wifiPort}/v1"
priority = 0
[[uplinks]]
name = "cellular"
url = "${gateway.url}/v1"
priority = 1
`);
  return startNines(['edge', '--config', file], 'nines edge listening on');
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'nines-edge-sdk-'));
  breaking = await startMock(['--faults', 'die_after=5']);
  overloaded = await startMock(['--faults', 'error_rate=0.5']);
  healthy = await startMock();
  gateway = await startGateway([breaking.url, overloaded.url, healthy.url]);
  chaos = await startNines(['chaos', '--api', '127.0.0.1:0', '--seed', '7'],
    'nines chaos api listening on');
  const proxy = await post(`${chaos.url}/proxies`,
    { name: 'wifi', listen: '127.0.0.1:0', upstream: `127.0.0.1:${gateway.port}` });
  const wifiPort = Number(proxy.listen.split(':')[1]);
  // Half of the wifi connections are cut after 3 KB toward the edge: in the middle of an answer.
  await post(`${chaos.url}/proxies/wifi/toxics`, {
    name: 'cut', type: 'limit_data', stream: 'downstream', toxicity: 0.5,
    attributes: { bytes: 3000 },
  });
  edge = await startEdge('edge', wifiPort);
  cachedEdge = await startEdge('cached', wifiPort, '[cache]\nmax_bytes = 16777216');
  direct = new OpenAI({ baseURL: `${healthy.url}/v1`, apiKey: 'k', maxRetries: 0 });
});

after(() => {
  stopAll(edge, cachedEdge, chaos, gateway, breaking, overloaded, healthy);
  rmSync(work, { recursive: true, force: true });
});

test('30 streamed and 10 whole answers through edge and gateway, faults on both hops: all exact', async () => {
  // maxRetries: 0: every success is nines' doing, not the SDK's.
  const sdk = new OpenAI({ baseURL: `${edge.url}/v1`, apiKey: 'k', maxRetries: 0, timeout: 60000 });
  for (let i = 0; i < 30; i++) {
    const prompt = `step ${i}: tap the settings icon`;
    const expected = await direct.chat.completions.create({
      model: 'mock-model', messages: messages(prompt), temperature: 0,
    });
    const stream = await sdk.chat.completions.create({
      model: 'mock-model', messages: messages(prompt), temperature: 0, stream: true,
    });
    const { text, finish } = await collect(stream);
    assert.equal(text, expected.choices[0].message.content, `stream ${i}`);
    assert.equal(finish, 'stop', `stream ${i}`);
  }
  for (let i = 0; i < 10; i++) {
    const prompt = `whole ${i}: read the screen`;
    const expected = await direct.chat.completions.create({
      model: 'mock-model', messages: messages(prompt), temperature: 0,
    });
    const answer = await sdk.chat.completions.create({
      model: 'mock-model', messages: messages(prompt), temperature: 0,
    });
    assert.equal(answer.choices[0].message.content, expected.choices[0].message.content, `whole ${i}`);
  }
  // The faults happened on both hops: the edge resumed streams cut on wifi, the gateway resumed
  // streams its model server reset.
  const edgeResumes = (await (await fetch(`${edge.adminUrl}/status`)).json()).resumes;
  const gatewayResumes = (await (await fetch(`${gateway.adminUrl}/status`)).json()).resumes;
  console.log(`edge resumes ${edgeResumes}, gateway resumes ${gatewayResumes}`);
  assert.ok(edgeResumes > 0, `the edge resumed ${edgeResumes} streams`);
  assert.ok(gatewayResumes > 0, `the gateway resumed ${gatewayResumes} streams`);
});

test('through the edge\'s answer cache: the repeat is a hit, the same stream, without the model', async () => {
  const sdk = new OpenAI({ baseURL: `${cachedEdge.url}/v1`, apiKey: 'k', maxRetries: 0, timeout: 60000 });
  const prompt = 'open the gallery and pick the first photo';
  const expected = await direct.chat.completions.create({
    model: 'mock-model', messages: messages(prompt), temperature: 0,
  });
  const verdicts = [];
  for (let i = 0; i < 3; i++) {
    const { data, response } = await sdk.chat.completions.create({
      model: 'mock-model', messages: messages(prompt), temperature: 0, stream: true,
    }).withResponse();
    verdicts.push(response.headers.get('x-nines-cache'));
    const { text, finish } = await collect(data);
    assert.equal(text, expected.choices[0].message.content, `try ${i}`);
    assert.equal(finish, 'stop');
  }
  assert.deepEqual(verdicts, ['miss', 'hit', 'hit']);
  // Counted when each exchange ends, just after its answer went out: looked at until it shows.
  const deadline = Date.now() + 10000;
  let hits = 0;
  while ((hits = await metric(cachedEdge.adminUrl, 'nines_cache_requests_total{result="hit"}')) < 2 &&
         Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(hits, 2);
});
