// What agents run now, with the official openai SDK unchanged: the Responses API
// (responses.create({stream: true}), the OpenAI Agents SDK's default) and reasoning models, whose
// thought streams in delta.reasoning_content before the answer.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startGateway, stopAll } from './harness.mjs';

let thinker, gateway, direct, client;

before(async () => {
  thinker = await startMock(['--thought-tokens', '10']);
  gateway = await startGateway([thinker.url]);
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'k', maxRetries: 0 });
  direct = new OpenAI({ baseURL: `${thinker.url}/v1`, apiKey: 'k', maxRetries: 0 });
});

after(() => stopAll(gateway, thinker));

// Reads a Responses stream as the SDK gives it: the event types, the thought and the answer, and
// the final response.
async function readResponse(stream) {
  const seen = { types: [], thought: '', answer: '', final: null, sequence: [] };
  for await (const event of stream) {
    seen.types.push(event.type);
    seen.sequence.push(event.sequence_number);
    if (event.type === 'response.reasoning_text.delta') seen.thought += event.delta;
    if (event.type === 'response.output_text.delta') seen.answer += event.delta;
    if (event.type === 'response.completed') seen.final = event.response;
  }
  return seen;
}

test('10 of 10 healthy Responses streams complete through the gateway', async () => {
  for (let i = 0; i < 10; i++) {
    const input = `open the settings ${i}`;
    const expected = await direct.responses.create({ model: 'm', input });
    const stream = await client.responses.create({ model: 'm', input, stream: true });
    const seen = await readResponse(stream);
    assert.equal(seen.types.at(-1), 'response.completed', `stream ${i}`);
    assert.equal(seen.types.filter((t) => t === 'response.created').length, 1);
    assert.equal(seen.answer, expected.output_text, `stream ${i}`);
    assert.equal(seen.final.output_text ?? seen.final.output.at(-1).content[0].text, expected.output_text);
    assert.ok(seen.thought.length > 0, 'the thought streams too');
    // The upstream's sequence numbers, passed on: strictly increasing from 0, no gaps.
    assert.deepEqual(seen.sequence, seen.sequence.map((_, k) => k));
  }
});

test("the SDK's own stream helper accumulates the same response", async () => {
  const input = 'tap the wifi icon';
  const expected = await direct.responses.create({ model: 'm', input });
  const stream = client.responses.stream({ model: 'm', input });
  const final = await stream.finalResponse();
  assert.equal(final.output_text, expected.output_text);
  assert.equal(final.status, 'completed');
});

test('a Responses stream that breaks ends with an error the SDK raises, never response.completed', async () => {
  const breaking = await startMock(['--thought-tokens', '10', '--faults', 'die_after=6']);
  const gw = await startGateway([breaking.url]);
  try {
    const sdk = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'k', maxRetries: 0 });
    const stream = await sdk.responses.create({ model: 'm', input: 'x', stream: true });
    const types = [];
    await assert.rejects(async () => {
      for await (const event of stream) types.push(event.type);
    }, (err) => /stream_incomplete|incomplete/.test(`${err.code ?? ''} ${err.message}`));
    assert.ok(!types.includes('response.completed'));
    assert.ok(types.includes('response.reasoning_text.delta'));
  } finally {
    stopAll(gw, breaking);
  }
});

test('a Responses stream broken in its thought or its answer is continued: the SDK sees one response', async () => {
  const breaking = await startMock(['--thought-tokens', '10', '--faults', 'die_after=4']);
  const late = await startMock(['--thought-tokens', '10', '--faults', 'die_after=15']);
  const gw = await startGateway([breaking.url, late.url, thinker.url]);
  try {
    const sdk = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'k', maxRetries: 0 });
    for (let i = 0; i < 5; i++) {
      const input = `continue response ${i}`;
      const expected = await direct.responses.create({ model: 'm', input });
      // The SDK's accumulating helper checks item and content indexes as it goes.
      const final = await sdk.responses.stream({ model: 'm', input }).finalResponse();
      assert.equal(final.output_text, expected.output_text, `response ${i}`);
      assert.equal(final.status, 'completed');
      const thought = (r) => r.output.find((o) => o.type === 'reasoning').content[0].text;
      assert.equal(thought(final), thought(expected), `response ${i}`);
      assert.equal(final.usage.output_tokens, expected.usage.output_tokens);
    }
  } finally {
    stopAll(gw, breaking, late);
  }
});

test('a reasoning chat stream broken in its thought is continued: the SDK sees one ordinary stream', async () => {
  const breaking = await startMock(['--thought-tokens', '10', '--faults', 'die_after=5']);
  const gw = await startGateway([breaking.url, thinker.url]);
  try {
    const sdk = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'k', maxRetries: 0 });
    for (let i = 0; i < 5; i++) {
      const messages = [{ role: 'user', content: `think ${i}` }];
      const expected = await direct.chat.completions.create({ model: 'm', messages });
      const stream = await sdk.chat.completions.create({ model: 'm', messages, stream: true });
      let thought = '';
      let answer = '';
      let finishes = 0;
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (!choice) continue;
        thought += choice.delta?.reasoning_content ?? '';
        answer += choice.delta?.content ?? '';
        if (choice.finish_reason) finishes++;
      }
      assert.equal(thought, expected.choices[0].message.reasoning_content, `stream ${i}`);
      assert.equal(answer, expected.choices[0].message.content, `stream ${i}`);
      assert.equal(finishes, 1);
    }
  } finally {
    stopAll(gw, breaking);
  }
});
