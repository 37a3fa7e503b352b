// The SLA dashboard in a real browser: headless Chromium (Debian's package) driven by
// playwright-core loads /dashboard while `nines bench` sends load, one upstream is killed, and the
// page must show real figures, draw its charts and mark the dead upstream as sick.
// A screenshot is saved to build/test-artifacts/dashboard.png (NINES_DASHBOARD_SCREENSHOT
// overrides the path: the README's picture is made this way).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, ninesBinary, startMock, startNines, stopAll, watchedPage } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const screenshotPath = process.env.NINES_DASHBOARD_SCREENSHOT ??
  path.join(here, '..', '..', 'build', 'test-artifacts', 'dashboard.png');

let healthy, doomed, gateway, load, browser, page;
const pageErrors = [];

before(async () => {
  healthy = await startMock(['--faults', 'tpot_ms=2']);
  doomed = await startMock(['--faults', 'tpot_ms=2']);
  const dir = mkdtempSync(path.join(tmpdir(), 'nines-dashboard-'));
  const config = path.join(dir, 'gateway.toml');
  // Fast probes and a short "down for" so the test sees the sick upstream within seconds.
  writeFileSync(config, `
[gateway]
listen = "127.0.0.1:0"
workers = 1
access_log = "off"
[admin]
listen = "127.0.0.1:0"
[health]
interval_ms = 200
jitter_ms = 20
timeout_ms = 200
unhealthy_threshold = 2
[alerting]
evaluation_interval_ms = 200
upstream_down_for_ms = 500
[cache]
max_bytes = 16777216
[[upstreams]]
name = "gpu-healthy"
url = "${healthy.url}/v1"
[[upstreams]]
name = "gpu-doomed"
url = "${doomed.url}/v1"
`);
  gateway = await startNines(['gateway', '--config', config], 'nines gateway listening on');
  // Bounded load: 30 streamed requests/s for at most 40 s, every answer validated by bench.
  load = spawn(ninesBinary, ['bench', '--url', gateway.url, '--stream', 'true', '--rate', '30',
    '--duration', '40', '--max-seconds', '45', '--progress', '0'], { stdio: 'ignore' });
  browser = await launchChromium();
  page = await watchedPage(browser, { width: 1440, height: 1100 }, pageErrors);
});

after(async () => {
  await browser?.close();
  load?.kill('SIGKILL');
  stopAll(gateway, healthy, doomed);
});

// Waits, by polling the page, until `predicate` (run in the page) holds; fails after 20 s.
const until = (predicate, arg) =>
  page.waitForFunction(predicate, arg, { timeout: 20000, polling: 100 });

async function rowState(name) {
  return page.locator(`tr[data-upstream="${name}"]`).getAttribute('data-state');
}

test('the dashboard shows live availability, upstreams and charts, and marks a killed upstream as sick', async () => {
  const res = await page.goto(`${gateway.adminUrl}/dashboard`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-type'], /^text\/html/);
  assert.match(res.headers()['content-security-policy'], /default-src 'none'/);

  // Real traffic shows up: an availability figure, requests counted, both upstreams, a rate.
  await until(() => {
    const s = window.__nines.status;
    const rate = window.__nines.chartData?.rate[1] ?? [];
    return s && s.sla.windows['5m'].good > 20 && rate.some((v) => v > 0) &&
      document.querySelectorAll('#upstreams tbody tr').length === 2;
  });
  assert.equal(await rowState('gpu-healthy'), 'healthy');
  assert.equal(await rowState('gpu-doomed'), 'healthy');

  // The fault: one model server dies under load.
  doomed.child.kill('SIGKILL');
  await until(() => {
    const row = document.querySelector('tr[data-upstream="gpu-doomed"]');
    return row && row.dataset.state !== 'healthy' &&
      document.querySelector('[data-alert="NinesUpstreamDown"]') !== null &&
      document.querySelector('#incidents li[data-kind="unhealthy"], #incidents li[data-kind="ejected"]');
  });
  assert.ok(['unhealthy', 'ejected'].includes(await rowState('gpu-doomed')));
  // The answer cache's line: the load repeats its 64 prompts at temperature 0, so it hits.
  await until(() => {
    const line = document.querySelector('[data-testid="cache"]');
    return line && !line.hidden && /cache: [1-9]\d* hits/.test(line.textContent);
  });
  assert.match(await page.locator('[data-testid="cache"]').innerText(), /answers, [\d.]+ of 17 MB/);
  assert.equal(await rowState('gpu-healthy'), 'healthy');
  const badge = page.locator('tr[data-upstream="gpu-doomed"] [data-testid="state"]');
  assert.match(await badge.getAttribute('class'), /badge (unhealthy|ejected)/);
  assert.match(await page.locator('[data-alert="NinesUpstreamDown"]').innerText(), /gpu-doomed/);

  // Let a few more requests through after the fault, then compare what the page shows with the
  // gateway's own figures (the page computes nothing itself).
  const goodAtFault = await page.evaluate(() => window.__nines.status.sla.windows['5m'].good);
  await until((n) => window.__nines.status.sla.windows['5m'].good > n + 30, goodAtFault);
  const shown = await page.evaluate(() => ({
    status: window.__nines.status,
    text: document.querySelector('[data-testid="availability-5m"]').textContent,
    requests: document.querySelector('[data-testid="requests-5m"]').textContent,
    budget: document.querySelector('[data-testid="budget"]').textContent,
    healthyAvailability: document.querySelector(
      'tr[data-upstream="gpu-healthy"] [data-testid="availability"]').textContent,
    charts: Object.fromEntries(['chart-rate', 'chart-ttft', 'chart-availability'].map((id) => {
      const canvas = document.querySelector(`#${id} canvas`);
      return [id, canvas ? { width: canvas.width, height: canvas.height } : null];
    })),
    chartData: window.__nines.chartData,
  }));
  const w5 = shown.status.sla.windows['5m'];
  assert.match(shown.text, /^\d{1,3}\.\d+%$/);
  assert.equal(Number(shown.text.replace('%', '')),
    Number((w5.availability * 100).toFixed(shown.text.split('.')[1].length - 1)));
  assert.match(shown.requests, new RegExp(`^${(w5.good + w5.bad).toLocaleString('en-US')} requests`));
  assert.match(shown.budget, /^-?\d+\.\d%$|^—$/);
  // Failover hides the dead upstream from clients: the streams it broke were continued elsewhere.
  assert.equal(w5.bad, 0, 'requests failed as clients saw them');
  assert.equal(shown.text, '100.000%');
  assert.match(shown.healthyAvailability, /^\d{1,3}\.\d+%$/);
  for (const [id, canvas] of Object.entries(shown.charts)) {
    assert.ok(canvas && canvas.width > 100 && canvas.height > 100, `${id} has a drawn canvas`);
  }
  const [xs, rate] = shown.chartData.rate;
  assert.equal(xs.length, rate.length);
  assert.ok(rate.some((v) => v > 0), 'the request-rate chart has real values');
  assert.ok(shown.chartData.ttft[1].some((v) => v !== null && v > 0), 'the TTFT chart has values');
  assert.ok(shown.chartData.availability[1].some((v) => v === 100), 'the availability chart has values');
  assert.deepEqual(pageErrors, []);

  mkdirSync(path.dirname(screenshotPath), { recursive: true });
  await page.screenshot({ path: screenshotPath, fullPage: true });
});

test('the dashboard says so when the gateway stops answering', async () => {
  stopAll(gateway);
  await until(() => window.__nines.errors > 0 &&
    document.querySelector('[data-testid="meta"]').className === 'bad');
  assert.match(await page.locator('[data-testid="meta"]').innerText(), /cannot read the gateway's status/);
});
