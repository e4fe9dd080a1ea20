// Needs the native addon (the tokenizer.json checks load through it). Errors that say what to change: tied weights of
// different widths, a JSON file that is no tokenizer.json, an unknown learning-rate schedule.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { LR_SCHEDULE_SYNTAX, parseLrSchedule } from '../ts/cli/flags';
import { parseTrainConfig } from '../ts/config';
import { ConfigError } from '../ts/errors';
import { tokenizerFromFile } from '../ts/tokenizer';
import { lstmgen } from './cli-helpers';
import { tmpDir } from './helpers';

/** The error `fn` throws. */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('error messages that say what to change', () => {
  it('tieWeights of different widths names both sizes and the two fixes, without ", got true"', () => {
    const err = thrown(() => parseTrainConfig({ corpus: 'x', tieWeights: true, embeddingDim: 64, hiddenSize: 128 }));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('tieWeights');
    expect(err.message).toContain('tieWeights: needs embeddingDim == the last layer');
    expect(err.message).toContain('embeddingDim 64, output width 128');
    expect(err.message).toMatch(/set projSize to 64 .* or hiddenSize to 64$/);
    const cli = lstmgen(
      'train',
      '--corpus',
      'moby-dick',
      '--tie-weights',
      '--embedding-dim',
      '64',
      '--hidden-size',
      '128',
    );
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/^lstmgen: --tie-weights: needs --embedding-dim == the last layer/);
    expect(cli.stderr).toMatch(/set --proj-size to 64 .* or --hidden-size to 64\n$/);
    expect(cli.stderr).not.toContain('got true');
  });

  it('a JSON file that is no tokenizer.json: a ConfigError naming the file, why, and what a tokenizer.json holds', () => {
    const dir = tmpDir();
    const cases: Record<string, [string, RegExp]> = {
      'text.json': ['hello', /is not a Hugging Face tokenizer\.json: it is not JSON \(/],
      'array.json': ['[1, 2]', /is not a Hugging Face tokenizer\.json: it holds an array, not an object/],
      'package.json': ['{"name": "x"}', /is not a Hugging Face tokenizer\.json: it has no "model" object/],
      'own.json': ['{"type": "char", "tokens": ["a"]}', /it is lstmgen's own char tokenizer JSON/],
      'bad-model.json': ['{"model": {"type": "Nonsense"}}', /: not a Hugging Face tokenizer\.json: /],
    };
    for (const [name, [content, why]] of Object.entries(cases)) {
      const file = path.join(dir, name);
      fs.writeFileSync(file, content);
      const err = thrown(() => tokenizerFromFile(file));
      expect(err, name).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe('tokenizer.file');
      expect(err.message, name).toContain(JSON.stringify(file));
      expect(err.message, name).toMatch(why);
      expect(err.message, name).toMatch(/a tokenizer\.json is the file that Hugging Face tokenizers writes .*"model"/);
    }
    const cli = lstmgen('train', '--corpus', 'moby-dick', '--tokenizer', path.join(dir, 'package.json'));
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(
      /^lstmgen: --tokenizer \(file\): ".*package\.json" is not a Hugging Face tokenizer\.json/,
    );
  });

  it('an unknown schedule or option of --lr-schedule lists every schedule with its syntax', () => {
    expect(LR_SCHEDULE_SYNTAX).toBe(
      'constant | step:stepSize=N[,gamma=X] | cosine[:warmupSteps=N,minLr=X,totalSteps=N] | ' +
        'plateau[:factor=X,patience=N,minDelta=X,minLr=X] | a JSON object ({"type":"cosine","warmupSteps":100})',
    );
    for (const [spec, why] of [
      ['bogus:1', 'unknown schedule "bogus"'],
      ['bogus', 'unknown schedule "bogus"'],
      ['step:size=3', 'the step schedule has no option "size"'],
      ['cosine:100', 'expected key=value, got "100"'],
      ['{"type":', 'not valid JSON'],
    ]) {
      const err = thrown(() => parseLrSchedule(spec));
      expect(err, spec).toBeInstanceOf(InvalidArgumentError);
      expect(err.message, spec).toBe(`${why}; give one of: ${LR_SCHEDULE_SYNTAX}.`);
    }
    expect(parseLrSchedule('cosine:warmupSteps=10,minLr=0.001')).toEqual({
      type: 'cosine',
      warmupSteps: 10,
      minLr: 0.001,
    });
    const cli = lstmgen('train', '--corpus', 'moby-dick', '--lr-schedule', 'bogus:1');
    expect(cli.code).toBe(2);
    expect(cli.stderr).toBe(
      `lstmgen: option '--lr-schedule <spec>' argument 'bogus:1' is invalid. unknown schedule "bogus"; give one of: ${LR_SCHEDULE_SYNTAX}.\n`,
    );
  });
});
