// Needs the native addon. `serve()`: the OpenAI completions API (the official `openai` client as the client),
// the info endpoints, and bad input, disconnects, slow readers, limits and a replaced model file.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../ts/errors';
import type { LstmModel } from '../ts/model';
import { type Server, serve } from '../ts/serve/server';
import { train } from '../ts/train/loop';
import { TINY, tmpDir } from './helpers';

/** A raw HTTP request to the server: status, headers and body text. */
function request(
  url: string,
  init: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

const post = (url: string, body: unknown) =>
  request(`${url}/v1/completions`, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });

/** Polls `/health` until no sequence is active (at most ~10 s). */
async function settled(url: string): Promise<{ active: number; queued: number; rows: number }> {
  let h = { active: -1, queued: -1, rows: -1 };
  for (let i = 0; i < 200; i++) {
    h = JSON.parse((await request(`${url}/health`)).body);
    if (h.active === 0 && h.queued === 0 && h.rows === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return h;
}

describe('serve()', () => {
  let model: LstmModel;
  let file: string;
  let server: Server;
  let client: OpenAI;

  beforeAll(async () => {
    ({ model } = await train({ ...TINY, maxSteps: 30 }));
    file = path.join(tmpDir(), 'tiny.lstm');
    await model.save(file);
    server = await serve({ model: file, port: 0, device: 'cpu', maxTokens: 1_000_000 });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  }, 120_000);

  afterAll(async () => {
    await server?.close();
  });

  it('answers the openai client: a seeded completion is generate() for that seed; usage counts tokens', async () => {
    const r = await client.completions.create({
      model: 'tiny',
      prompt: 'ROMEO:',
      max_tokens: 40,
      temperature: 0.8,
      top_p: 0.95,
      seed: 7,
    });
    const [want] = await model.generate({ prompt: 'ROMEO:', maxTokens: 40, temperature: 0.8, topP: 0.95, seed: 7 });
    expect(r.object).toBe('text_completion');
    expect(r.model).toBe('tiny');
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0].text).toBe(want);
    expect(r.choices[0].finish_reason).toBe('length');
    expect(r.usage).toEqual({ prompt_tokens: 6, completion_tokens: 40, total_tokens: 46 });
  });

  it('n sequences are generate()s samples; stop strings end them with finish_reason "stop"', async () => {
    const r = await client.completions.create({ prompt: 'KING', max_tokens: 30, n: 3, seed: 4, stop: ['e'] });
    const want = await model.generate({ prompt: 'KING', maxTokens: 30, numSamples: 3, seed: 4, stop: ['e'] });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(r.choices.map((c) => c.text)).toEqual(want);
    for (const c of r.choices) {
      expect(c.text).not.toContain('e');
      expect(c.finish_reason).toBe(c.text.length < 30 ? 'stop' : 'length');
    }
  });

  it('streams server-sent events in the API chunk format; joined they equal the plain response', async () => {
    const options = { prompt: 'First', max_tokens: 60, seed: 11, temperature: 1, n: 2 };
    const plain = await client.completions.create(options);
    const stream = await client.completions.create({
      ...options,
      stream: true,
      stream_options: { include_usage: true },
    });
    const texts = ['', ''];
    const reasons: Array<string | null> = [null, null];
    let usage: unknown;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('text_completion');
      expect(chunk.id).toMatch(/^cmpl-/);
      for (const c of chunk.choices) {
        expect(reasons[c.index]).toBeNull(); // nothing after a choice's last chunk
        texts[c.index] += c.text;
        reasons[c.index] = c.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(texts).toEqual(plain.choices.map((c) => c.text));
    expect(reasons).toEqual(['length', 'length']);
    expect(usage).toEqual(plain.usage);
    const raw = await post(server.url, { ...options, stream: true });
    expect(raw.type).toContain('text/event-stream');
    expect(raw.body.trimEnd().endsWith('data: [DONE]')).toBe(true);
    for (const event of raw.body.trim().split('\n\n')) expect(event.startsWith('data: ')).toBe(true);
  });

  it('GET /v1/models, /v1/model and /health describe the model and the server', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['tiny']);
    const info = JSON.parse((await request(`${server.url}/v1/model`)).body);
    const s = model.summary();
    expect(info).toMatchObject({
      id: 'tiny',
      tokenizer: 'char',
      vocabSize: s.vocabSize,
      parameters: s.parameters,
      config: { hiddenSize: 32, numLayers: 1, embeddingDim: 16 },
    });
    const health = JSON.parse((await request(`${server.url}/health`)).body);
    expect(health.status).toBe('ok');
  });

  it('a port in use or a host not of this machine is a ConfigError naming the option, not a raw listen error', async () => {
    const port = Number(new URL(server.url).port);
    const taken = serve({ model: file, port, host: '127.0.0.1', device: 'cpu' });
    await expect(taken).rejects.toThrow(ConfigError);
    await expect(taken).rejects.toMatchObject({ field: 'port', message: expect.stringMatching(/already in use/) });
    const foreign = serve({ model: file, port: 0, host: '203.0.113.7', device: 'cpu' });
    await expect(foreign).rejects.toMatchObject({ field: 'host' });
  });

  it('the web page and its script are served from the package, with no outside resources', async () => {
    const page = await request(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(page.type).toContain('text/html');
    expect(page.body).toContain('/v1/completions');
    expect(page.body).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\//);
  });

  it('bad requests get a 4xx JSON error naming the field; the server lives on', async () => {
    const cases: Array<[body: unknown, status: number, param: string | null]> = [
      ['{"prompt": "a", ', 400, null], // malformed JSON
      ['[1, 2]', 400, null],
      [{ prompt: 'a', temperature: 'hot' }, 400, 'temperature'],
      [{ prompt: 42 }, 400, 'prompt'],
      [{ prompt: 'a', max_tokens: -1 }, 400, 'max_tokens'],
      [{ prompt: 'a', max_tokens: 10 ** 9 }, 400, 'max_tokens'],
      [{ prompt: 'a', n: 100_000 }, 400, 'n'],
      [{ prompt: 'a', top_p: 0 }, 400, 'top_p'],
      [{ prompt: 'a', stop: ['a', 'b', 'c', 'd', 'e'] }, 400, 'stop'],
      [{ prompt: 'a', frobnicate: true }, 400, 'frobnicate'],
      [{ prompt: 'a', banned_tokens: ['ab'] }, 400, 'banned_tokens.0'],
      [{ prompt: 'a', logprobs: 5 }, 400, 'logprobs'],
      [{ prompt: 'a', stream: 'yes' }, 400, 'stream'],
      [{ prompt: 'a', seed: -3 }, 400, 'seed'],
      [{ prompt: 'a', repetition_penalty: 0 }, 400, 'repetition_penalty'],
    ];
    for (const [body, status, param] of cases) {
      const r = await post(server.url, body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      const err = JSON.parse(r.body).error;
      expect(err.type).toBe('invalid_request_error');
      expect(err.param, JSON.stringify(body)).toBe(param);
      if (param) expect(err.message).toContain(param.split('.')[0]);
    }
    const huge = await post(server.url, { prompt: 'a'.repeat(10 * 1024 * 1024) });
    expect(huge.status).toBe(413);
    expect(JSON.parse(huge.body).error.message).toMatch(/body/i);
    const notFound = await request(`${server.url}/v1/chat/completions`, { method: 'POST' });
    expect(notFound.status).toBe(404);
    expect(JSON.parse(notFound.body).error.message).toContain('/v1/chat/completions');
    await expect(client.completions.create({ prompt: 'a', max_tokens: 10 ** 9 })).rejects.toMatchObject({
      status: 400,
    });
    const ok = await client.completions.create({ prompt: 'a', max_tokens: 5 });
    expect(ok.choices[0].text).toHaveLength(5);
  });

  it('checks a request by the rules of the generate options and says what is wrong with it', async () => {
    const cases: Array<[body: unknown, param: string, message: RegExp]> = [
      // the CLI's and generate()'s rules: top_k 0 is not "off" there, and a positive temperature below 1e-30
      // would overflow the float32 sampling (a 500 NumericError blaming the model)
      [{ prompt: 'a', top_k: 0 }, 'top_k', /^top_k: must be an integer >= 1, got 0$/],
      [{ prompt: 'a', temperature: 1e-40 }, 'temperature', /^temperature: must be 0 \(greedy\) or .*, got 1e-40$/],
      [{ prompt: 'a', temperature: 2.5 }, 'temperature', /^temperature: must be <= 2, got 2.5$/],
      [{ prompt: 'a', max_tokens: 0 }, 'max_tokens', /^max_tokens: must be a positive integer, got 0$/],
      [{ prompt: 'a', stop: '' }, 'stop', /^stop: must not hold the empty string ""/],
      [{ prompt: 'a', stop: ['a', ''] }, 'stop', /^stop: must not hold the empty string ""/],
      [{ prompt: 'a', stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop', /^stop: must be at most 4 strings, got 5$/],
      // valid JSON whose keys would reach an object's prototype if merged: refused as unknown fields
      ['{"prompt": "a", "__proto__": {"polluted": true}}', '__proto__', /^unknown field __proto__$/],
      ['{"prompt": "a", "stream_options": {"__proto__": {"polluted": true}}}', 'stream_options.__proto__', /__proto__/],
      [
        '{"prompt": "a", "constructor": {"prototype": {"polluted": true}}}',
        'constructor',
        /^unknown field constructor$/,
      ],
    ];
    for (const [body, param, message] of cases) {
      const r = await post(server.url, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      const err = JSON.parse(r.body).error;
      expect(err.param, JSON.stringify(body)).toBe(param);
      expect(err.message, JSON.stringify(body)).toMatch(message);
      expect(err.message).not.toMatch(/not valid JSON/);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    // malformed JSON is still called so; the smallest temperature taken, and a top_k of 1, answer
    const malformed = await post(server.url, '{"prompt": "a", ');
    expect(JSON.parse(malformed.body).error.message).toMatch(/not valid JSON/);
    const cold = await post(server.url, { prompt: 'a', max_tokens: 5, temperature: 1e-30, top_k: 1 });
    expect(cold.status, cold.body).toBe(200);
  });

  it('a client that disconnects mid-stream stops its generation', async () => {
    const controller = new AbortController();
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a', max_tokens: 1_000_000, stream: true }),
      signal: controller.signal,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const busy = JSON.parse((await request(`${server.url}/health`)).body);
    expect(busy.active).toBe(1);
    controller.abort();
    const h = await settled(server.url);
    expect(h).toMatchObject({ active: 0, queued: 0, rows: 0 });
    // and nothing is stepped any more
    const steps = JSON.parse((await request(`${server.url}/health`)).body).rowSteps;
    await new Promise((r) => setTimeout(r, 300));
    expect(JSON.parse((await request(`${server.url}/health`)).body).rowSteps).toBe(steps);
  });

  it('a slow reader gets its whole stream, and does not hold up other requests', async () => {
    const slow = new Promise<string>((resolve, reject) => {
      const req = http.request(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      });
      req.on('response', (res) => {
        res.pause();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve(body));
        setTimeout(() => res.resume(), 1500);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ prompt: 'a', max_tokens: 3000, stream: true, seed: 1 }));
    });
    const quick = await client.completions.create({ prompt: 'b', max_tokens: 20 });
    expect(quick.choices[0].text).toHaveLength(20);
    const body = await slow;
    expect(body.trimEnd().endsWith('data: [DONE]')).toBe(true);
    const text = body
      .trim()
      .split('\n\n')
      .filter((e) => e !== 'data: [DONE]')
      .map((e) =>
        JSON.parse(e.slice(6))
          .choices.map((c: { text: string }) => c.text)
          .join(''),
      )
      .join('');
    expect(text).toHaveLength(3000);
  });

  it('keeps serving the loaded model when its file is replaced', async () => {
    const before = await client.completions.create({ prompt: 'x', max_tokens: 20, seed: 3 });
    fs.writeFileSync(file, 'not a model any more');
    const after = await client.completions.create({ prompt: 'x', max_tokens: 20, seed: 3 });
    expect(after.choices[0].text).toBe(before.choices[0].text);
  });

  it('limits: a full queue answers 429; the time limit ends a request with finish_reason "length"', async () => {
    const small = await serve({ model: path.join(tmpDir(), 'm.lstm'), port: 0 }).catch((e) => e);
    expect(String(small)).toMatch(/m\.lstm/); // no such file: a ModelFileError naming it
    const f = path.join(tmpDir(), 'limits.lstm');
    await model.save(f);
    const s = await serve({
      model: f,
      port: 0,
      device: 'cpu',
      maxConcurrent: 1,
      maxQueued: 0,
      requestTimeout: 400,
      maxTokens: 1_000_000,
    });
    try {
      const first = post(s.url, { prompt: 'a', max_tokens: 1_000_000 });
      await new Promise((r) => setTimeout(r, 100));
      const second = await post(s.url, { prompt: 'a', max_tokens: 5 });
      expect(second.status).toBe(429);
      expect(JSON.parse(second.body).error.type).toBe('rate_limit_error');
      const r = JSON.parse((await first).body);
      expect(r.choices[0].finish_reason).toBe('length');
      expect(r.choices[0].text.length).toBeLessThan(1_000_000);
    } finally {
      await s.close();
    }
  });
});
