// The dashboard's phones view in a real browser (headless Chromium driven by playwright-core):
// `nines devices` in front of `nines fake-adb` serves the page alone (data-role="devices": the
// phones, no gateway sections, no /status), and an edge with a [devices] table shows its phones
// under its uplinks. A phone whose commands start to hang must turn zombie and sort first.
// A screenshot is saved to build/test-artifacts/devices-dashboard.png.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, ninesBinary, startMock, startNines, stopAll, watchedPage } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const screenshotPath = path.join(here, '..', '..', 'build', 'test-artifacts',
  'devices-dashboard.png');

let fakeAdb, adbPort, keeper, mock, edge, browser, page;
const pageErrors = [];

// `nines fake-adb --devices 3`: its port once it listens; faults go to its standard input.
function startFakeAdb() {
  return new Promise((resolve, reject) => {
    const child = spawn(ninesBinary, ['fake-adb', '--devices', '3'],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => reject(new Error(`fake-adb did not start: ${output}`)), 15000);
    child.stdout.on('data', (chunk) => {
      output += chunk.toString();
      const m = output.match(/listening on 127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
  });
}

before(async () => {
  fakeAdb = await startFakeAdb();
  adbPort = fakeAdb.port;
  keeper = await startNines(['devices', '--adb-port', String(adbPort), '--admin-listen',
    '127.0.0.1:0'], 'nines admin listening on');
  mock = await startMock();
  const dir = mkdtempSync(path.join(tmpdir(), 'nines-devices-dashboard-'));
  const config = path.join(dir, 'edge.toml');
  writeFileSync(config, `
[edge]
listen = "127.0.0.1:0"
workers = 1
access_log = "off"
[admin]
listen = "127.0.0.1:0"
[devices]
adb_server = "127.0.0.1:${adbPort}"
[[uplinks]]
name = "wifi"
url = "${mock.url}/v1"
`);
  edge = await startNines(['edge', '--config', config], 'nines edge listening on');
  browser = await launchChromium();
  page = await watchedPage(browser, { width: 1440, height: 900 }, pageErrors);
});

after(async () => {
  await browser?.close();
  stopAll(edge, mock, keeper, fakeAdb);
});

const until = (predicate, arg) =>
  page.waitForFunction(predicate, arg, { timeout: 20000, polling: 100 });

test('nines devices serves the phones view alone, and a hanging phone turns zombie and sorts first', async () => {
  const res = await page.goto(`${keeper.adminUrl}/dashboard`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-security-policy'], /default-src 'none'/);
  await until(() => {
    const rows = [...document.querySelectorAll('#devices tbody tr')];
    return rows.length === 3 && rows.every((r) => r.dataset.state === 'online');
  });
  // Only the phones: the gateway's cards, upstreams, charts and incidents are not shown.
  for (const label of ['Client-visible availability', 'Upstreams', 'The last hour', 'Recent incidents']) {
    assert.equal(await page.locator(`section[aria-label="${label}"]`).isVisible(), false, label);
  }
  assert.match(await page.locator('[data-testid="devices-fleet"]').innerText(),
    /^3 phones \(3 online\) · online [\d.]+% of the last hour/);

  fakeAdb.child.stdin.write('mode fake-0002 hang\n');
  await until(() => {
    const first = document.querySelector('#devices tbody tr');
    return first && first.dataset.serial === 'fake-0002' && first.dataset.state === 'zombie';
  });
  const badge = page.locator('tr[data-serial="fake-0002"] .badge');
  assert.equal(await badge.innerText(), 'zombie');
  assert.match(await badge.getAttribute('class'), /badge zombie/);
  // What the row says is the keeper's own figures (the page computes nothing).
  const { shown, served } = await page.evaluate(async () => ({
    shown: document.querySelector('tr[data-serial="fake-0002"] td:last-child').textContent,
    served: (await (await fetch('devices/fake-0002')).json()).last_problem,
  }));
  assert.equal(shown, served);
  assert.match(shown, /did not finish/);
  mkdirSync(path.dirname(screenshotPath), { recursive: true });
  await page.screenshot({ path: screenshotPath, fullPage: true });
  fakeAdb.child.stdin.write('mode fake-0002 ok\n');
  await until(() => document.querySelector('tr[data-serial="fake-0002"]')?.dataset.state === 'online');
  assert.deepEqual(pageErrors, []);
});

test('an edge with a [devices] table shows its phones under its uplinks', async () => {
  await page.goto(`${edge.adminUrl}/dashboard`);
  await until(() => window.__nines.status?.devices === true &&
    document.querySelectorAll('#devices tbody tr').length === 3 &&
    document.querySelectorAll('#upstreams tbody tr').length === 1);
  assert.equal(await page.locator('#links-title').innerText(), 'UPLINKS');
  assert.equal(await page.locator('[data-testid="devices-section"]').isVisible(), true);
  assert.deepEqual(pageErrors, []);
});
