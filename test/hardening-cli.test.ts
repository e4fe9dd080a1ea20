// Needs the native addon and the compiled CLI (npm run build). The edges between the CLI, files and
// processes: an output that names an input, an unwritable output, temp files of killed saves, a closed
// stdout, interrupts.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildProgram } from '../ts/cli/program';
import { ConfigError, type LstmModel, loadModel, NumericError, train } from '../ts/index';
import { CLI, exited, lstmgen, startLstmgen, TINY_FLAGS, waitFor } from './cli-helpers';
import { ROOT, shakespeare, TINY, tmpDir } from './helpers';

let dir: string;
let corpus: string;
let model: LstmModel;
let modelFile: string;

beforeAll(async () => {
  dir = tmpDir();
  corpus = path.join(dir, 'corpus.txt');
  fs.writeFileSync(corpus, shakespeare(20_000));
  ({ model } = await train({ ...TINY, maxSteps: 5 }));
  modelFile = path.join(dir, 'm.lstm');
  await model.save(modelFile);
}, 120_000);

// A fresh copy per test: a test that fails today overwrites the corpus it names.
beforeEach(() => {
  fs.writeFileSync(corpus, shakespeare(20_000));
});

describe('an output path never replaces an input', () => {
  it('train --out equal to --corpus is refused before anything is written', () => {
    const before = fs.readFileSync(corpus);
    const r = lstmgen('train', '--corpus', corpus, ...TINY_FLAGS, '--max-steps', '2', '--out', corpus);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--out/);
    expect(fs.readFileSync(corpus).equals(before)).toBe(true);
  });

  it('--log equal to the corpus, or --out a symlink to it, is refused', () => {
    const before = fs.readFileSync(corpus);
    const link = path.join(dir, 'link.lstm');
    fs.symlinkSync(corpus, link);
    for (const extra of [
      ['--log', corpus, '--out', path.join(dir, 'x.lstm')],
      ['--out', link],
    ]) {
      const r = lstmgen('train', '--corpus', corpus, ...TINY_FLAGS, '--max-steps', '2', ...extra);
      expect(r.code).not.toBe(0);
      expect(fs.readFileSync(corpus).equals(before)).toBe(true);
    }
  });

  it('--resume FILE with --out FILE is refused', () => {
    const before = fs.readFileSync(modelFile);
    const r = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...TINY_FLAGS,
      '--max-steps',
      '8',
      '--resume',
      modelFile,
      '--out',
      modelFile,
    );
    expect(r.code).not.toBe(0);
    expect(fs.readFileSync(modelFile).equals(before)).toBe(true);
  });
});

/** Escape `text` for a RegExp. */
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The stdout lines of a `--json` run, parsed. */
const records = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('an output path never replaces an input: more ways in', () => {
  it('train() refuses a logFile or checkpointDir that would replace the corpus, before writing anything', async () => {
    const before = fs.readFileSync(corpus);
    const log = await train({ ...TINY, corpus: { path: corpus }, logFile: corpus }).catch((e: unknown) => e);
    expect(log).toBeInstanceOf(ConfigError);
    expect((log as ConfigError).field).toBe('logFile');
    const ckdir = path.join(dir, 'ck-holds-corpus');
    fs.mkdirSync(ckdir, { recursive: true });
    const inside = path.join(ckdir, 'best.lstm');
    fs.copyFileSync(corpus, inside);
    const ck = await train({ ...TINY, corpus: inside, checkpointDir: ckdir }).catch((e: unknown) => e);
    expect(ck).toBeInstanceOf(ConfigError);
    expect((ck as ConfigError).field).toBe('checkpointDir');
    expect(fs.readFileSync(corpus).equals(before)).toBe(true);
    expect(fs.readFileSync(inside).equals(before)).toBe(true);
  });

  it('--out through a symlinked directory, --out equal to --log, and plot -o equal to its log are refused', () => {
    const before = fs.readFileSync(corpus);
    const linkDir = path.join(dir, 'link-dir');
    fs.symlinkSync(dir, linkDir);
    const viaLink = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...TINY_FLAGS,
      '--max-steps',
      '2',
      '--out',
      path.join(linkDir, 'corpus.txt'),
    );
    expect(viaLink.code).toBe(2);
    expect(viaLink.stderr).toMatch(/^lstmgen: --out: .* is the same file as the corpus/);
    expect(fs.readFileSync(corpus).equals(before)).toBe(true);

    const same = path.join(dir, 'same.out');
    const both = lstmgen('train', '--corpus', corpus, ...TINY_FLAGS, '--max-steps', '2', '--log', same, '--out', same);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^lstmgen: --out: .* is also the metrics log/);
    expect(fs.existsSync(same)).toBe(false);

    const log = path.join(dir, 'plot-self.jsonl');
    fs.writeFileSync(log, '{"type":"step","step":1,"epoch":1,"loss":2,"tokensPerSec":1,"gradNorm":1,"lr":0.01}\n');
    const logBefore = fs.readFileSync(log);
    const plot = lstmgen('plot', log, '-o', log);
    expect(plot.code).toBe(2);
    expect(plot.stderr).toMatch(/^lstmgen: --out: .* is the same file as the run log/);
    expect(fs.readFileSync(log).equals(logBefore)).toBe(true);
  });

  it('eval of a model whose weights diverged (finite weights, a NaN or overflowing loss) is a NumericError, exit 1', async () => {
    const diverged = path.join(dir, 'diverged.lstm');
    const flags = ['--lr', '1e30', '--clip-norm', '1e30', '--on-non-finite', 'skip', '--max-steps', '6'];
    const t = lstmgen('train', '--corpus', corpus, ...TINY_FLAGS, ...flags, '--out', diverged);
    expect(t.code, t.stderr).toBe(0);
    const r = lstmgen('eval', '--model', diverged, '--corpus', corpus, '--json');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lstmgen: the model's loss on this corpus is .* nats\/token: its weights have diverged/);
    expect(r.stdout).toBe('');
    const model = await loadModel(diverged);
    try {
      await expect(model.evaluate(corpus)).rejects.toThrow(NumericError);
    } finally {
      model.dispose();
    }
  });

  it('a real checkpoint resumed with --out naming it is refused; resuming inside its own --checkpoint-dir is not', () => {
    const ck = path.join(dir, 'ck-resume');
    const first = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...TINY_FLAGS,
      '--max-steps',
      '4',
      '--checkpoint-dir',
      ck,
      '--out',
      path.join(dir, 'r0.lstm'),
    );
    expect(first.code, first.stderr).toBe(0);
    const file = path.join(ck, 'step-00000004.lstm');
    const before = fs.readFileSync(file);
    /** `lstmgen train` resuming from `resume` to step 6, with `more` flags. */
    const resumeTo6 = (resume: string, ...more: string[]) =>
      lstmgen('train', '--corpus', corpus, '--device', 'cpu', '--max-steps', '6', '--resume', resume, ...more);
    // resuming the file, or the directory (its newest checkpoint and the older ones it falls back to are inputs too)
    for (const resume of [file, ck]) {
      const r = resumeTo6(resume, '--out', file);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^lstmgen: --out: .* is the same file as the checkpoint resumed from/);
      expect(fs.readFileSync(file).equals(before)).toBe(true);
    }
    const cont = resumeTo6(file, '--checkpoint-dir', ck, '--out', path.join(dir, 'r1.lstm'));
    expect(cont.code, cont.stderr).toBe(0);
    expect(fs.existsSync(path.join(ck, 'step-00000006.lstm'))).toBe(true);
  });
});

describe('outputs that cannot be written', () => {
  it('train --out in an unwritable place fails before training and names the real problem', () => {
    const r = lstmgen('train', '--corpus', corpus, ...TINY_FLAGS, '--max-steps', '2', '--out', '/proc/x.lstm');
    expect(r.code).not.toBe(0);
    expect(r.stderr).not.toMatch(/training on/);
    expect(r.stderr).not.toMatch(/does not exist/);
  });

  it("model.save('') is a ConfigError", async () => {
    await expect(model.save('')).rejects.toBeInstanceOf(ConfigError);
  });

  it('plot -o into a missing directory is a clear error, not an internal one', async () => {
    const log = path.join(dir, 'run.jsonl');
    const r = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...TINY_FLAGS,
      '--max-steps',
      '3',
      '--log',
      log,
      '--out',
      path.join(dir, 'p.lstm'),
    );
    expect(r.code).toBe(0);
    const p = lstmgen('plot', log, '-o', path.join(dir, 'nodir', 'a.svg'));
    expect(p.code).toBe(2); // a bad output path is a usage error, as for train --out
    expect(p.stderr).toMatch(/^lstmgen: --out: .* does not exist\n$/);
    expect(p.stderr).toMatch(/^lstmgen: /);
    expect(p.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it('a save removes the temp files that killed processes left beside the target, and only those', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(dead.stdout);
    const target = path.join(dir, 'stale.lstm');
    const stale = `${target}.tmp-${deadPid}-0badf00d`;
    const live = `${target}.tmp-${process.pid}-00c0ffee`;
    fs.writeFileSync(stale, 'partial');
    fs.writeFileSync(live, 'in progress');
    await model.save(target);
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(live)).toBe(true);
    fs.rmSync(live);
  });
});

describe('unwritable outputs: more of them, checked before training', () => {
  it('--checkpoint-dir and --log where no file can be created fail at once with the real reason', () => {
    const t0 = Date.now();
    const ck = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...TINY_FLAGS,
      '--max-steps',
      '2',
      '--checkpoint-dir',
      '/proc/lstmgen-ck/a',
    );
    expect(ck.code).toBe(2);
    expect(ck.stderr).toMatch(/^lstmgen: --checkpoint-dir: .*"\/proc" does not accept new directories/);
    const log = lstmgen('train', '--corpus', corpus, ...TINY_FLAGS, '--max-steps', '2', '--log', '/proc/x.jsonl');
    expect(log.code).toBe(2);
    expect(log.stderr).toMatch(
      /^lstmgen: --log: cannot write "\/proc\/x.jsonl": directory "\/proc" does not accept new files\n$/,
    );
    expect(Date.now() - t0).toBeLessThan(20_000); // mkdir -p under /proc must not spin
  });
});

describe('messages and output of the CLI', () => {
  it('name the flags the user typed, and blame --corpus for a resumed vocabulary mismatch', async () => {
    const keep = lstmgen('train', '--corpus', corpus, '--keep', '3');
    expect(keep.code).toBe(2);
    expect(keep.stderr).toBe('lstmgen: --keep: needs --checkpoint-dir, got 3\n');
    const strict = lstmgen('generate', '--model', modelFile, '--prompt', '\u{1F600}', '--strict');
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/without --strict/);

    const ck = path.join(dir, 'ck-vocab');
    const first = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...TINY_FLAGS,
      '--max-steps',
      '2',
      '--checkpoint-dir',
      ck,
      '--out',
      path.join(dir, 'v0.lstm'),
    );
    expect(first.code, first.stderr).toBe(0);
    const upper = path.join(dir, 'upper.txt');
    fs.writeFileSync(upper, shakespeare(20_000).toUpperCase());
    const r = lstmgen(
      'train',
      '--corpus',
      upper,
      '--device',
      'cpu',
      '--max-steps',
      '4',
      '--resume',
      ck,
      '--out',
      path.join(dir, 'v1.lstm'),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^lstmgen: --corpus: gives a different vocabulary than the checkpoint/);
    expect(r.stderr).not.toMatch(/--tokenizer/);
  });

  it('--json carries the eval records, gradNorm and lr of each step and the kind of each checkpoint', () => {
    const r = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...TINY_FLAGS,
      '--max-steps',
      '4',
      '--eval-every',
      '2',
      '--checkpoint-dir',
      path.join(dir, 'ck-json'),
      '--checkpoint-every',
      '2',
      '--out',
      path.join(dir, 'j.lstm'),
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const lines = records(r.stdout);
    expect(lines.filter((l) => l.type === 'eval').map((l) => l.step)).toEqual([2, 4]);
    for (const s of lines.filter((l) => l.type === 'step')) {
      expect(Number.isFinite(s.gradNorm)).toBe(true);
      expect(s.lr).toBe(0.01);
    }
    const kinds = lines.filter((l) => l.type === 'checkpoint').map((l) => l.kind);
    expect(kinds).toContain('periodic');
    expect(kinds).toContain('best');
  });

  it('--no-lowercase keeps the case of words; --lowercase (the default) folds it', async () => {
    const run = (flag: string[], out: string) =>
      lstmgen(
        'train',
        '--corpus',
        corpus,
        ...TINY_FLAGS,
        '--tokenizer',
        'word',
        '--vocab-size',
        '200',
        '--max-steps',
        '1',
        ...flag,
        '--out',
        out,
      );
    const kept = path.join(dir, 'case.lstm');
    const folded = path.join(dir, 'nocase.lstm');
    expect(run(['--no-lowercase'], kept).code).toBe(0);
    expect(run(['--lowercase'], folded).code).toBe(0);
    const lowercase = async (file: string) =>
      ((await loadModel(file, { device: 'cpu' })).tokenizer.toJSON() as { lowercase?: boolean }).lowercase;
    expect(await lowercase(kept)).toBe(false);
    expect(await lowercase(folded)).toBe(true);
  });

  it('the README synopsis lists every flag of every command', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const synopsis = /## CLI\n\n```\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const missing = buildProgram()
      .commands.flatMap((c) => c.options.map((o) => `${c.name()} ${o.long}`))
      .filter((flag) => !new RegExp(`${literal(flag.split(' ')[1])}(?![-\\w])`).test(synopsis));
    expect(missing).toEqual([]);
  });
});

/** Starts `lstmgen train` on the corpus with more steps than a test waits for, writing `out`. */
const startEndlessTraining = (out: string, ...extra: string[]) =>
  startLstmgen('train', '--corpus', corpus, ...TINY_FLAGS, '--max-steps', '100000', ...extra, '--out', out);

describe('the process', () => {
  it('a closed stdout does not lose the run: the model is saved, or the exit status says it was not', () => {
    const out = path.join(dir, 'piped.lstm');
    const r = spawnSync(
      'bash',
      [
        '-c',
        `set -o pipefail; "${process.execPath}" "${CLI}" train --corpus "${corpus}" ${TINY_FLAGS.join(' ')} --max-steps 2000 --json --out "${out}" | head -1 >/dev/null; echo "status=\${PIPESTATUS[0]}"`,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    const status = Number(/status=(\d+)/.exec(r.stdout)?.[1]);
    expect(fs.existsSync(out) || status !== 0).toBe(true);
    // lstmgen keeps training without printing and saves: the run is complete
    expect(fs.existsSync(out)).toBe(true);
    expect(status).toBe(0);
    expect(r.stderr).toMatch(/stdout was closed/);
  });

  it('Ctrl-C saves, says where, and exits 130; a second Ctrl-C exits at once', async () => {
    const out = path.join(dir, 'int.lstm');
    const child = startEndlessTraining(out);
    const done = exited(child);
    await waitFor(child, /training on/);
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(130);
    expect(r.out).toMatch(
      new RegExp(`interrupted at step \\d+, saved to ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    expect(r.out).not.toMatch(/stopped early/);
    expect(fs.existsSync(out)).toBe(true);

    const twice = startEndlessTraining(path.join(dir, 'int2.lstm'));
    const done2 = exited(twice);
    await waitFor(twice, /training on/);
    twice.kill('SIGINT');
    twice.kill('SIGINT');
    const t0 = Date.now();
    expect((await done2).code).toBe(130);
    expect(Date.now() - t0).toBeLessThan(5_000);
  }, 60_000);

  it('an interrupted run prints the validation figure of the saved weights when it has one', async () => {
    const out = path.join(dir, 'int-val.lstm');
    const child = startEndlessTraining(out, '--eval-every', '1');
    const done = exited(child);
    await waitFor(child, /training on/);
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(130);
    // every step is validated, so the saved weights have a validation loss
    expect(r.out).toMatch(/interrupted at step \d+, saved to .*int-val\.lstm \(validation loss \d+\.\d+, perplexity/);
    expect(fs.existsSync(out)).toBe(true);
  }, 60_000);

  it('--version prints the package version', () => {
    const r = lstmgen('--version');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });
});
