/**
 * The browser example (examples/browser/) in headless Chromium: it loads a TF.js export with the tfjs browser bundle
 * served from node_modules, checks its step-by-step LSTM cell against `model.predict`, and samples text. Skips, with
 * the reason, where no Chromium is installed (Debian: `apt-get install chromium`; elsewhere set LSTMGEN_CHROMIUM).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer } from '../examples/browser/serve.mjs';
import { exportModel } from '../ts/export/write';
import { train } from '../ts/train/loop';
import { launchChromium } from './browser-helpers';
import { shakespeare, TINY, tmpDir } from './helpers';

const chromium = await launchChromium();
const skip = 'skip' in chromium ? chromium.skip : undefined;

describe.skipIf(skip !== undefined)(`browser example${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const dir = tmpDir();
  const browser = (chromium as { browser: Browser }).browser;
  const servers: Array<{ close: () => Promise<void> }> = [];
  afterAll(async () => {
    await browser?.close();
    for (const s of servers) await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Opens the page on an export of `model` and waits until it is ready; fails on any page error. */
  async function open(name: string, options: Parameters<typeof train>[0]): Promise<{ page: Page; errors: string[] }> {
    const { model } = await train(options);
    const out = path.join(dir, name);
    await exportModel(model, { format: 'tfjs', out });
    model.dispose();
    const server = await startServer({ modelDir: out });
    servers.push(server);
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    await page.goto(`${server.url}?model=model/model.json`);
    await page.waitForSelector('body[data-state="ready"], body[data-state="error"]', { timeout: 60_000 });
    const status = await page.$eval('#status', (e) => e.textContent ?? '');
    expect(await page.$eval('body', (b) => b.dataset.state), status).toBe('ready');
    return { page, errors };
  }

  /** Fills the form, clicks Generate, waits for the end; the output text. */
  async function generate(page: Page, prompt: string, seed: number, maxTokens: number): Promise<string> {
    await page.$eval('#prompt', (e, v) => ((e as HTMLTextAreaElement).value = v), prompt);
    await page.$eval('#seed', (e, v) => ((e as HTMLInputElement).value = v), String(seed));
    await page.$eval('#max-tokens', (e, v) => ((e as HTMLInputElement).value = v), String(maxTokens));
    await page.click('#generate');
    await page.waitForSelector('body[data-state="done"]', { timeout: 60_000 });
    const text = await page.$eval('#output', (e) => e.textContent ?? '');
    await page.$eval('body', (b) => (b.dataset.state = 'ready'));
    return text;
  }

  it('samples text from a char model in the page, seeded, after the cell check against predict', async () => {
    const { page, errors } = await open('char', { ...TINY, maxSteps: 30 });
    expect(Number(await page.$eval('body', (b) => b.dataset.check))).toBeLessThan(1e-4);
    const text = await generate(page, 'ROMEO:', 5, 80);
    expect(text.startsWith('ROMEO:')).toBe(true);
    const sampled = [...text.slice('ROMEO:'.length)];
    expect(sampled.length).toBe(80); // one character per token
    const vocab = new Set(JSON.parse(fs.readFileSync(path.join(dir, 'char', 'tokenizer.json'), 'utf8')).tokens);
    expect(sampled.every((c) => vocab.has(c))).toBe(true); // never <unk> (U+FFFD)
    expect(await generate(page, 'ROMEO:', 5, 80)).toBe(text);
    expect(await generate(page, 'ROMEO:', 6, 80)).not.toBe(text);
    expect(errors).toEqual([]);
  });

  it('samples words from a 2-layer word model', async () => {
    const { page, errors } = await open('word', {
      ...TINY,
      corpus: { text: shakespeare(30_000) },
      tokenizer: 'word',
      vocabSize: 200,
      numLayers: 2,
      maxSteps: 20,
    });
    expect(Number(await page.$eval('body', (b) => b.dataset.check))).toBeLessThan(1e-4);
    const text = await generate(page, 'and the', 3, 30);
    expect(text.startsWith('and the')).toBe(true);
    const vocab = new Set(JSON.parse(fs.readFileSync(path.join(dir, 'word', 'tokenizer.json'), 'utf8')).tokens);
    const words = text.split(/\s+/).filter(Boolean);
    expect(words.length).toBeGreaterThan(5);
    // every space-separated piece is vocabulary tokens (punctuation may be attached without a space)
    for (const w of words)
      expect(
        w.match(/[\p{L}\p{M}\p{N}_]+(?:['’][\p{L}\p{M}\p{N}_]+)*|[^\p{L}\p{M}\p{N}_]/gu)?.every((t) => vocab.has(t)),
        w,
      ).toBe(true);
    expect(errors).toEqual([]);
  });
});
