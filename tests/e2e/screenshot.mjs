// Saves a screenshot of a running gateway's dashboard (the README's picture):
//   node tests/e2e/screenshot.mjs http://127.0.0.1:8080 docs/dashboard.png
// Headless Debian chromium through playwright-core, as in dashboard.test.mjs.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [base, out] = process.argv.slice(2);
if (!base || !out) {
  console.error('usage: node screenshot.mjs GATEWAY_URL OUTPUT.png');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM ??
  ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p));
const browser = await chromium.launch({
  executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  await page.goto(`${base}/dashboard`);
  await page.waitForFunction(() => window.__nines?.updates >= 2, null, { timeout: 20000 });
  await page.screenshot({ path: out, fullPage: true });
} finally {
  await browser.close();
}
