// The official openai SDK over https to a gateway with TLS and client keys (the README's
// set-up): answers equal the model's, a wrong key is a 401, and a client that does not trust the
// gateway's CA does not get in.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { ninesBinary, startMock, startNines, stopAll } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
let dir, mock, gateway, secret;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'nines-e2e-tls-'));
  execFileSync('bash', [path.join(here, '..', 'integration', 'tls_fixtures.sh'), dir]);
  const made = execFileSync(ninesBinary, ['keys', 'new', '--id', 'agent-7', '--models', 'autoglm*']).toString();
  secret = made.match(/nk-[A-Za-z0-9_-]+/)[0];
  writeFileSync(path.join(dir, 'keys.toml'), made.slice(made.indexOf('[[keys]]')));
  mock = await startMock();
  gateway = await startNines(
    ['gateway', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--workers', '1',
      '--access-log', 'off', '--upstream', mock.url,
      '--tls-cert', path.join(dir, 'chain.pem'), '--tls-key', path.join(dir, 'leaf.key'),
      '--keys', path.join(dir, 'keys.toml')],
    'nines gateway listening on');
});

after(() => {
  stopAll(gateway, mock);
  rmSync(dir, { recursive: true, force: true });
});

// Runs the SDK in a node that trusts `ca` (or only the system's roots).
function sdk(apiKey, prompt, ca) {
  const env = { ...process.env };
  if (ca) env.NODE_EXTRA_CA_CERTS = ca;
  const r = spawnSync(process.execPath, [path.join(here, 'tls_sdk_client.mjs'), `${gateway.tlsUrl}/v1`, apiKey, prompt],
    { env, timeout: 30000 });
  assert.equal(r.status, 0, r.stderr.toString());
  return JSON.parse(r.stdout.toString());
}

test('the SDK over https with a client key gets the model answer, plain and streamed', async () => {
  assert.ok(gateway.tlsPort, 'the gateway speaks TLS');
  assert.equal(gateway.port, undefined, 'and nothing in clear');
  const direct = new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const expected = await direct.chat.completions.create({
    model: 'autoglm-phone', messages: [{ role: 'user', content: 'tap settings' }],
  });
  const got = sdk(secret, 'tap settings', path.join(dir, 'ca.pem'));
  assert.equal(got.error, undefined, JSON.stringify(got.error));
  assert.equal(got.plain, expected.choices[0].message.content);
  assert.equal(got.streamed, expected.choices[0].message.content);
});

test('a wrong key over https is a 401 from the gateway', () => {
  const got = sdk('nk-not-a-key', 'tap settings', path.join(dir, 'ca.pem'));
  assert.equal(got.error?.status, 401, JSON.stringify(got));
});

test('a client that does not trust the CA gets no answer', () => {
  const got = sdk(secret, 'tap settings', null);
  assert.equal(got.error?.status, null, JSON.stringify(got));
  assert.match(got.error.cause + got.error.message, /CERT|certificate|issuer|Connection error/i);
});
