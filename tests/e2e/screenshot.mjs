// Saves a screenshot of a running gateway's dashboard (the README's picture):
//   node tests/e2e/screenshot.mjs http://127.0.0.1:8080 docs/dashboard.png
// Headless Debian chromium through playwright-core, as in dashboard.test.mjs.
import { launchChromium } from './harness.mjs';

const [base, out] = process.argv.slice(2);
if (!base || !out) {
  console.error('usage: node screenshot.mjs GATEWAY_URL OUTPUT.png');
  process.exit(2);
}
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  await page.goto(`${base}/dashboard`);
  await page.waitForFunction(() => window.__nines?.updates >= 2, null, { timeout: 20000 });
  await page.screenshot({ path: out, fullPage: true });
} finally {
  await browser.close();
}
