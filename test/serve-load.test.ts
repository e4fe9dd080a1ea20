// Needs the native addon and the compiled CLI. `lstmgen serve` under load, as a child process: rounds of 200
// concurrent streaming clients (the openai client) all complete with well-formed chunks, seeded texts do not
// depend on the batch they were sampled in, and the server's resident memory stays flat.
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { train } from '../ts/train/loop';
import { compileTs, startLstmgen } from './cli-helpers';
import { TINY, tmpDir } from './helpers';

const CLIENTS = 200;
const TOKENS = 32;
/**
 * Most the server's RSS may grow from the end of the first round to the end of the last (MB). The JS heap stays
 * flat; the native allocator keeps freed pages (see crates/lstmgen-node/src/lib.rs), so RSS creeps up over the
 * first rounds and levels off (10 rounds here: 126 -> 166 MB, +0.6 MB over the last three).
 */
const RSS_GROWTH_MB = 64;

/** Resident memory of process `pid`, MB (Linux). */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

describe.skipIf(process.platform !== 'linux')('lstmgen serve under load', () => {
  let child: ChildProcess;
  let client: OpenAI;
  let base: string;

  beforeAll(async () => {
    compileTs();
    const { model } = await train({ ...TINY, maxSteps: 20 });
    const file = path.join(tmpDir(), 'load.lstm');
    await model.save(file);
    child = startLstmgen('serve', '--model', file, '--port', '0', '--device', 'cpu');
    const url = await new Promise<string>((resolve, reject) => {
      let seen = '';
      child.stdout?.on('data', (d: Buffer) => {
        seen += d.toString();
        const m = /at (http:\/\/\S+)/.exec(seen);
        if (m) resolve(m[1]);
      });
      child.stderr?.on('data', (d: Buffer) => {
        seen += d.toString();
      });
      child.on('exit', () => reject(new Error(`serve exited: ${seen}`)));
    });
    base = url;
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
  }, 180_000);

  afterAll(() => {
    child?.kill('SIGTERM');
  });

  /** One round: CLIENTS concurrent streams (seed = client index); the text of each. */
  async function round(): Promise<string[]> {
    return Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const stream = await client.completions.create({
          prompt: `client ${i % 7}`,
          max_tokens: TOKENS,
          seed: i,
          temperature: 1,
          stream: true,
        });
        let text = '';
        let reason: string | null = null;
        for await (const chunk of stream) {
          expect(chunk.object).toBe('text_completion');
          expect(chunk.choices).toHaveLength(1);
          const [c] = chunk.choices;
          expect(c.index).toBe(0);
          expect(reason).toBeNull();
          text += c.text;
          reason = c.finish_reason;
        }
        expect(reason).toBe('length');
        expect(text).toHaveLength(TOKENS);
        return text;
      }),
    );
  }

  it(`${CLIENTS} concurrent streaming clients complete, texts independent of the batch, RSS flat`, async () => {
    const first = await round();
    const rss = [rssMb(child.pid as number)];
    for (let r = 0; r < 3; r++) {
      expect(await round()).toEqual(first);
      rss.push(rssMb(child.pid as number));
    }
    // every request's rows have left the engine
    const health = await (await fetch(`${base}/health`)).json();
    expect(health).toMatchObject({ active: 0, queued: 0, rows: 0 });
    const growth = Math.max(...rss) - rss[0];
    console.log(
      `serve-load: server RSS after each round of ${CLIENTS} streams (MB): ${rss.map((x) => x.toFixed(1)).join(', ')}`,
    );
    expect(growth, `RSS per round (MB): ${rss.map((x) => x.toFixed(1)).join(', ')}`).toBeLessThan(RSS_GROWTH_MB);
  }, 240_000);
});
