// Needs the native addon and Chromium (skips with the reason without it). The server's web page, driven in
// headless Chromium: type a prompt, set the controls, generate, and watch the text stream in.
import * as path from 'node:path';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Server, serve } from '../ts/serve/server';
import { train } from '../ts/train/loop';
import { launchChromium } from './browser-helpers';
import { TINY, tmpDir } from './helpers';

const chromium = await launchChromium();
const skip = 'skip' in chromium ? chromium.skip : undefined;

describe.skipIf(skip !== undefined)(`the web page at / ${skip ? `(skipped: ${skip})` : ''}`, () => {
  let server: Server;
  const browser = (chromium as { browser: Browser }).browser;

  beforeAll(async () => {
    const { model } = await train({ ...TINY, maxSteps: 20 });
    const file = path.join(tmpDir(), 'page.lstm');
    await model.save(file);
    server = await serve({ model: file, port: 0, device: 'cpu' });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('streams generated text into the page as it is sampled', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const outside: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(server.url)) outside.push(r.url());
    });
    await page.goto(server.url, { waitUntil: 'networkidle0' });
    await page.waitForFunction(() => document.getElementById('model')?.textContent?.includes('char model'));
    await page.type('#prompt', 'ROMEO:');
    await page.$eval('#temperature', (e) => {
      (e as HTMLInputElement).value = '0.7';
    });
    await page.$eval('#top_k', (e) => {
      (e as HTMLInputElement).value = '20';
    });
    await page.$eval('#max_tokens', (e) => {
      (e as HTMLInputElement).value = '3000';
    });
    await page.click('#generate');
    // text appears while the request is still running, then the whole of it
    const during = await page.waitForFunction(
      () =>
        (document.getElementById('generated')?.textContent ?? '').length > 0 &&
        document.getElementById('status')?.textContent,
      { polling: 'mutation' },
    );
    expect(await during.jsonValue()).toBe('generating...');
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('done'), {
      timeout: 30_000,
    });
    const text = await page.$eval('#generated', (e) => e.textContent ?? '');
    expect(text).toHaveLength(3000);
    expect(await page.$eval('#output .prompt', (e) => e.textContent)).toBe('ROMEO:');
    expect(errors).toEqual([]);
    expect(outside).toEqual([]);
    await page.close();
  });
});
