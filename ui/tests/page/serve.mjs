// The built page-test harness (test-output/ui-harness) over HTTP on a free loopback port,
// and the headless Chromium both the page tests and the fleet-table benchmark drive.
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';

const dist = resolve(import.meta.dirname, '../../../test-output/ui-harness');
const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };

/** Serves the harness; `base` is its page's URL, `close()` stops the server. */
export async function serveHarness() {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    try {
      const body = await readFile(join(dist, path === '/' ? 'harness.html' : path));
      res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${server.address().port}/harness.html`, close: () => server.close() };
}

/** Debian's Chromium (or $CHROMIUM), headless. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage',
      '--no-first-run', '--disable-extensions', '--disable-sync', '--metrics-recording-only', '--mute-audio'],
  });
}
