// The official openai npm SDK, unchanged, pointed at the gateway: what an agent sees.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { collect, startMock, startGateway, stopAll } from './harness.mjs';

const messages = (text) => [{ role: 'user', content: text }];

let refusing, overloaded, healthy, gateway, direct, client;

before(async () => {
  refusing = await startMock(['--refuse']);
  overloaded = await startMock(['--faults', 'error_rate=0.5']);
  healthy = await startMock();
  gateway = await startGateway([refusing.url, overloaded.url, healthy.url]);
  // maxRetries: 0, so that every success is the gateway's doing and not the SDK's own retries.
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'test-key', maxRetries: 0 });
  direct = new OpenAI({ baseURL: `${healthy.url}/v1`, apiKey: 'test-key', maxRetries: 0 });
});

after(() => stopAll(gateway, refusing, overloaded, healthy));

test('a streamed chat completion through the gateway equals the model answer', async () => {
  const expected = await direct.chat.completions.create({
    model: 'mock-model', messages: messages('open the camera'), temperature: 0,
  });
  const stream = await client.chat.completions.create({
    model: 'mock-model', messages: messages('open the camera'), temperature: 0, stream: true,
  });
  const { text, finish } = await collect(stream);
  assert.equal(text, expected.choices[0].message.content);
  assert.equal(finish, 'stop');
});

test('failures before the first byte are invisible: 30 streams over refused and 503 upstreams', async () => {
  for (let i = 0; i < 30; i++) {
    const prompt = `step ${i}`;
    const expected = await direct.chat.completions.create({ model: 'm', messages: messages(prompt) });
    const stream = await client.chat.completions.create({
      model: 'm', messages: messages(prompt), stream: true,
    });
    const { text } = await collect(stream);
    assert.equal(text, expected.choices[0].message.content, `request ${i}`);
  }
});

test('models and non-streamed completions work through the SDK', async () => {
  const models = await client.models.list();
  assert.equal(models.data[0].id, 'mock-model');
  const completion = await client.completions.create({ model: 'm', prompt: 'Say:' });
  assert.ok(completion.choices[0].text.length > 0);
});

test('a stream broken half-way is continued on another upstream: the SDK sees one ordinary stream', async () => {
  const breaking = await startMock(['--faults', 'die_after=7']);
  const gw = await startGateway([breaking.url, healthy.url]);
  try {
    const sdk = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'k', maxRetries: 0 });
    for (let i = 0; i < 10; i++) {
      const prompt = `continue ${i}`;
      const expected = await direct.chat.completions.create({ model: 'm', messages: messages(prompt) });
      const stream = await sdk.chat.completions.create({
        model: 'm', messages: messages(prompt), stream: true, stream_options: { include_usage: true },
      });
      let usage = null;
      let text = '';
      let finishes = 0;
      for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices[0];
        if (!choice) continue;
        text += choice.delta?.content ?? '';
        if (choice.finish_reason) finishes++;
      }
      assert.equal(text, expected.choices[0].message.content, `request ${i}`);
      assert.equal(finishes, 1);
      assert.equal(usage.completion_tokens, expected.usage.completion_tokens);
    }
  } finally {
    stopAll(gw, breaking);
  }
});

test('a stream that cannot be continued surfaces as an SDK error, never a silent end', async () => {
  const breaking = await startMock(['--faults', 'die_after=2']);
  // One upstream that always breaks: resumes on it run out, and the stream ends with the error.
  const gw = await startGateway([breaking.url]);
  try {
    const sdk = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'k', maxRetries: 0 });
    const stream = await sdk.chat.completions.create({
      model: 'm', messages: messages('break'), stream: true,
    });
    await assert.rejects(collect(stream), (err) => {
      assert.match(String(err.message ?? err), /upstream stream broke/);
      return true;
    });
  } finally {
    stopAll(gw, breaking);
  }
});

test('an SDK retry that repeats its Idempotency-Key gets the first answer, not a second generation', async () => {
  const counted = await startMock(['--faults', 'tpot_ms=5']);
  const gw = await startGateway([counted.url], ['--journal', 'keyed']);
  try {
    const sdk = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'k', maxRetries: 0 });
    const ask = () => sdk.chat.completions.create(
      { model: 'm', messages: messages('idempotent step'), stream: true },
      { headers: { 'Idempotency-Key': 'agent-1-step-9' } },
    );
    // Two concurrent copies, as an agent that timed out and retried would send.
    const [a, b] = await Promise.all([ask().then(collect), ask().then(collect)]);
    assert.equal(a.text, b.text);
    assert.equal(a.finish, 'stop');
    const stats = await (await fetch(`${counted.url}/mock/stats`)).json();
    assert.equal(stats.streams, 1);
  } finally {
    stopAll(gw, counted);
  }
});
