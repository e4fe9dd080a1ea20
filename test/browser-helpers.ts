// Headless Chromium for browser tests: puppeteer-core driving the system's Chromium (Debian's `chromium`), so
// nothing is downloaded at test time. Tests skip with the reason where no Chromium is installed.
import * as fs from 'node:fs';
import type { Browser } from 'puppeteer-core';

/** Where Chromium may be: `LSTMGEN_CHROMIUM`, then the usual paths. */
export const CHROMIUM_CANDIDATES: readonly string[] = [
  ...(process.env.LSTMGEN_CHROMIUM ? [process.env.LSTMGEN_CHROMIUM] : []),
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
];

/** The first Chromium executable found, or undefined. */
export function chromiumPath(): string | undefined {
  return CHROMIUM_CANDIDATES.find((p) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Launch headless Chromium, or say why not: `{ browser }`, or `{ skip }` with the reason (no executable found,
 * or it failed to start) for `it.skipIf` / `describe.skipIf`. The caller closes the browser.
 */
export async function launchChromium(): Promise<{ browser: Browser } | { skip: string }> {
  const executablePath = chromiumPath();
  if (!executablePath)
    return { skip: `no Chromium found (looked at ${CHROMIUM_CANDIDATES.join(', ')}; apt-get install chromium)` };
  const puppeteer = await import('puppeteer-core');
  try {
    const browser = await puppeteer.launch({
      executablePath,
      headless: true,
      // --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      timeout: 60_000,
    });
    return { browser };
  } catch (err) {
    return { skip: `Chromium at ${executablePath} did not start: ${(err as Error).message}` };
  }
}
