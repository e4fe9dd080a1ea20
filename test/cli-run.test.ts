// Needs the native addon; compiles ts/ into a temporary stage first. The CLI of long runs: checkpoints and resume,
// guards, metrics log and plot, the end-of-training summary, streamed generate.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readRunLog } from '../ts/train/runlog';
import { compileTs, jsonLines, runCli, TINY_FLAGS } from './cli-helpers';
import { CLI_ENTRY, ROOT, shakespeare, tensorBytes, tmpDir } from './helpers';

let CLI: string;

/**
 * Compile ts/ into a fresh stage (other test files rewrite the repo's dist/ concurrently): `stage/dist`, with
 * `stage/index.js` and `stage/node_modules` linking to the repo's, as dist/ expects them next to it.
 */
function buildStage(): string {
  const stage = tmpDir();
  compileTs(path.join(stage, 'dist'));
  fs.symlinkSync(path.join(ROOT, 'index.js'), path.join(stage, 'index.js'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(stage, 'node_modules'));
  return path.join(stage, CLI_ENTRY);
}

/** `lstmgen ...args` with the staged CLI. */
const lstmgen = (...args: string[]) => runCli(CLI, args);

describe('lstmgen CLI: long runs', () => {
  let dir: string;
  let corpus: string;
  const tiny = [...TINY_FLAGS, '--lr', '0.01', '--dropout', '0.2'];

  beforeAll(() => {
    CLI = buildStage();
    dir = tmpDir();
    corpus = path.join(dir, 'corpus.txt');
    fs.writeFileSync(corpus, shakespeare(20_000));
  }, 120_000);

  it('--checkpoint-dir/--checkpoint-every/--keep print checkpoint lines; --resume continues exactly', () => {
    const ckpt = path.join(dir, 'ckpt');
    const log = path.join(dir, 'run.jsonl');
    const args = ['train', '--corpus', corpus, ...tiny, '--json', '--lr-schedule', 'step:stepSize=5,gamma=0.5'];
    const first = lstmgen(
      ...args,
      '--max-steps',
      '10',
      '--checkpoint-dir',
      ckpt,
      '--checkpoint-every',
      '4',
      '--keep',
      '2',
      '--log',
      log,
      '--out',
      path.join(dir, 'a.lstm'),
    );
    expect(first.code, first.stderr).toBe(0);
    const lines = jsonLines(first.stdout);
    const checkpoints = lines.filter((l) => l.type === 'checkpoint');
    expect(checkpoints).toEqual(
      [4, 8, 10].map((step) => ({
        type: 'checkpoint',
        step,
        path: path.join(ckpt, `step-${String(step).padStart(8, '0')}.lstm`),
        kind: step === 10 ? 'final' : 'periodic',
      })),
    );
    expect(fs.readdirSync(ckpt).sort()).toEqual(['step-00000008.lstm', 'step-00000010.lstm']);
    expect(lines.at(-1)).toMatchObject({
      type: 'done',
      files: { log, checkpoint: path.join(ckpt, 'step-00000010.lstm') },
    });

    // --resume takes the shape from the checkpoint; --max-steps counts from the start of the run
    const rest = lstmgen(
      'train',
      '--corpus',
      corpus,
      '--device',
      'cpu',
      '--lr-schedule',
      'step:stepSize=5,gamma=0.5',
      '--json',
      '--max-steps',
      '16',
      '--resume',
      ckpt,
      '--log',
      log,
      '--out',
      path.join(dir, 'b.lstm'),
    );
    expect(rest.code, rest.stderr).toBe(0);
    const whole = lstmgen(...args, '--max-steps', '16', '--out', path.join(dir, 'c.lstm'));
    const losses = (out: string) =>
      jsonLines(out)
        .filter((l) => l.type === 'step')
        .map((l) => [l.step, l.loss]);
    expect([...losses(first.stdout), ...losses(rest.stdout)]).toEqual(losses(whole.stdout));
    expect(readRunLog(log).filter((r) => r.type === 'step')).toHaveLength(16);

    const changed = lstmgen(
      'train',
      '--corpus',
      corpus,
      '--device',
      'cpu',
      '--hidden-size',
      '64',
      '--resume',
      ckpt,
      '--out',
      path.join(dir, 'd.lstm'),
    );
    expect(changed.code).toBe(2);
    expect(changed.stderr).toBe(
      'lstmgen: --hidden-size: cannot change when resuming (the checkpoint has 32, got 64); start a new run instead\n',
    );
    const schedule = lstmgen('train', '--corpus', corpus, '--lr-schedule', 'linear');
    expect(schedule.code).toBe(2);
    expect(schedule.stderr).toMatch(
      /^lstmgen: option '--lr-schedule <spec>' argument 'linear' is invalid\. unknown schedule "linear"; give one of: constant \| step:stepSize=N\[,gamma=X\] \| cosine\[/,
    );
  });

  it('the summary names the files written; plot draws the log as SVG', () => {
    const log = path.join(dir, 'summary.jsonl');
    const ckpt = path.join(dir, 'ckpt2');
    const out = path.join(dir, 's.lstm');
    const r = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...tiny,
      '--max-steps',
      '6',
      '--eval-every',
      '3',
      '--checkpoint-dir',
      ckpt,
      '--log',
      log,
      '--out',
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`model saved to ${out}`);
    expect(r.stdout).toContain(`metrics log written to ${log}`);
    expect(r.stdout).toContain(`checkpoint written to ${path.join(ckpt, 'step-00000006.lstm')}`);
    expect(r.stdout).toContain(`best checkpoint written to ${path.join(ckpt, 'best.lstm')}`);

    const svg = path.join(dir, 'curves.svg');
    const p = lstmgen('plot', log, '-o', svg);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toBe(`wrote ${svg}\n`);
    const text = fs.readFileSync(svg, 'utf8');
    expect(text.startsWith('<svg')).toBe(true);
    expect(text).toContain('>validation loss<');
    const missing = lstmgen('plot', path.join(dir, 'none.jsonl'), '-o', svg);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^lstmgen: cannot read run log .*no such file/);
  });

  it('a non-finite loss stops naming the step, or is skipped; the model file never gets non-finite weights', () => {
    const out = path.join(dir, 'keep.lstm');
    expect(lstmgen('train', '--corpus', corpus, ...tiny, '--max-steps', '3', '--out', out).code).toBe(0);
    const before = fs.readFileSync(out);
    const stop = lstmgen('train', '--corpus', corpus, ...tiny, '--lr', '1e39', '--max-steps', '5', '--out', out);
    expect(stop.code).toBe(1);
    expect(stop.stderr).toMatch(/^lstmgen: step 1 \(epoch 1\): .*non-finite.*parameters were not updated/m);
    expect(fs.readFileSync(out).equals(before)).toBe(true); // a stopped run writes nothing
    // With 'skip', every update is refused, so the weights stay finite (the initial ones) and are saved.
    const skip = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...tiny,
      '--lr',
      '1e39',
      '--max-steps',
      '5',
      '--on-non-finite',
      'skip',
      '--out',
      out,
    );
    expect(skip.code).toBe(0);
    expect(skip.stdout + skip.stderr).toMatch(/skipped 5 steps with a non-finite/);
    for (const data of Object.values(tensorBytes(fs.readFileSync(out)))) {
      expect(
        new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)).every(Number.isFinite),
      ).toBe(true);
    }
  });

  it('generate prints the text as it streams: the same text as --json for the seed', () => {
    const model = path.join(dir, 'g.lstm');
    expect(lstmgen('train', '--corpus', corpus, ...tiny, '--max-steps', '20', '--out', model).code).toBe(0);
    const args = [
      'generate',
      '--model',
      model,
      '--prompt',
      'ROMEO:',
      '--max-tokens',
      '60',
      '--seed',
      '4',
      '--stop',
      '\n\n',
    ];
    const streamed = lstmgen(...args);
    expect(streamed.code, streamed.stderr).toBe(0);
    const [json] = jsonLines(lstmgen(...args, '--json').stdout);
    expect(streamed.stdout).toBe(`ROMEO:${(json.samples as string[])[0]}\n`);
  });

  it('output piped into a reader that stops early ends quietly, exit 0 (no EPIPE stack)', () => {
    const model = path.join(dir, 'p.lstm');
    expect(lstmgen('train', '--corpus', corpus, ...tiny, '--max-steps', '5', '--out', model).code).toBe(0);
    const cmd =
      `set -o pipefail; "${process.execPath}" "${CLI}" ` +
      `generate --model "${model}" --max-tokens 200000 --seed 1 | head -c 20`;
    // Bytes, not characters: head cuts at byte 20, which may fall inside a multi-byte character.
    const r = spawnSync('bash', ['-c', cmd], { cwd: ROOT, timeout: 120_000 });
    expect(r.stdout.length).toBe(20);
    expect(r.stderr.toString()).toBe('');
    expect(r.status).toBe(0);
  });

  it("--resume with --max-steps at or below the checkpoint's step fails before training, naming the flag", () => {
    const ck = path.join(dir, 'ck-resume');
    const out = path.join(dir, 'r.lstm');
    expect(
      lstmgen('train', '--corpus', corpus, ...tiny, '--max-steps', '6', '--checkpoint-dir', ck, '--out', out).code,
    ).toBe(0);
    const before = fs.readFileSync(out);
    const r = lstmgen('train', '--corpus', corpus, ...tiny, '--max-steps', '3', '--resume', ck, '--out', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^lstmgen: --max-steps: the checkpoint .* is at step 6, already at or past the end of the run \(--max-steps 3\)/m,
    );
    expect(fs.readFileSync(out).equals(before)).toBe(true);
  });
});
