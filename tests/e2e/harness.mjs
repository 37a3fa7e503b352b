// Starts real nines processes on ephemeral loopback ports for the end-to-end tests.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ninesBinary = process.env.NINES_BIN ?? path.join(here, '..', '..', 'build', 'nines');

// Spawns `nines ...args` and resolves with { child, port, url } once it prints the line holding
// `marker` (for a gateway, also { adminPort, adminUrl } from its admin listener's line, printed
// before it, and { tlsPort, tlsUrl } when it speaks TLS).
export function startNines(args, marker) {
  return new Promise((resolve, reject) => {
    const child = spawn(ninesBinary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nines ${args[0]} did not start:\n${output}`));
    }, 15000);
    const onData = (chunk) => {
      output += chunk.toString();
      const lines = output.split('\n');
      const line = lines.find((l) => l.includes(marker));
      if (line) {
        clearTimeout(timer);
        const match = line.match(/http:\/\/[\d.]+:(\d+)/);
        const tls = line.match(/https:\/\/[\d.]+:(\d+)/);
        const admin = lines.find((l) => l.includes('nines admin listening on'))
          ?.match(/http:\/\/[\d.]+:(\d+)/);
        resolve({
          child,
          port: match ? Number(match[1]) : undefined,
          url: match ? `http://127.0.0.1:${match[1]}` : undefined,
          tlsPort: tls ? Number(tls[1]) : undefined,
          tlsUrl: tls ? `https://localhost:${tls[1]}` : undefined,
          adminPort: admin ? Number(admin[1]) : undefined,
          adminUrl: admin ? `http://127.0.0.1:${admin[1]}` : undefined,
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== null) reject(new Error(`nines ${args[0]} exited with ${code}:\n${output}`));
    });
  });
}

export const startMock = (extra = []) =>
  startNines(['mock-llm', '--listen', '127.0.0.1:0', ...extra], 'mock-llm ');

export const startGateway = (upstreams, extra = []) =>
  startNines(
    ['gateway', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--workers', '1',
      '--access-log', 'off', ...upstreams.flatMap((u) => ['--upstream', u]), ...extra],
    'nines gateway listening on',
  );

// The text and finish reason of an openai SDK chat stream.
export async function collect(stream) {
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    text += choice.delta?.content ?? '';
    finish = choice.finish_reason ?? finish;
  }
  return { text, finish };
}

export function stopAll(...servers) {
  for (const s of servers) s?.child.kill('SIGKILL');
}

// Debian's headless Chromium (/usr/bin/chromium is a shell wrapper around the binary), launched by
// playwright-core with what a test box needs; CHROMIUM overrides the path.
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  const executablePath = process.env.CHROMIUM ??
    ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p));
  return chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      '--disable-background-networking', '--no-first-run', '--disable-extensions'],
  });
}

// A page that records the page's errors and console errors in `errors`.
export async function watchedPage(browser, viewport, errors) {
  const page = await browser.newPage({ viewport });
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
  return page;
}
