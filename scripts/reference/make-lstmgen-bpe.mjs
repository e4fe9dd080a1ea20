#!/usr/bin/env node
/**
 * Writes test/fixtures/lstmgen-bpe/tokenizer.json: a byte-level BPE of 400 tokens trained by lstmgen (the Split on
 * the pattern without look-ahead, then ByteLevel) on the training text of make-tokenizer-fixture.py. Run it before
 * that script, which adds the ids the Python `tokenizers` package gives for this file to test/fixtures/hf-ids.json:
 *
 *   npm run build && node scripts/reference/make-lstmgen-bpe.mjs && "$VENV/bin/python" scripts/reference/make-tokenizer-fixture.py
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const lib = createRequire(import.meta.url)(path.join(repo, 'dist'));

// the TRAIN lines of make-tokenizer-fixture.py, with runs of spaces and tabs (where the patterns differ)
const TRAIN = [
  'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse,',
  'and nothing particular to interest me on shore, I thought I would sail about a little and see the',
  'watery part of the world. It is a way I have of driving off the spleen and regulating the circulation.',
  'Whenever I find myself growing grim about the mouth; whenever it is a damp, drizzly November in my soul;',
  'Café, naïve, 東京, مرحبا, 👍🏽 and 1234567890 — numbers, punctuation!? (brackets) [more] {braces}',
  '    indented  lines   with\truns\t\tof  spaces',
];
const text = Array.from({ length: 20 }, () => TRAIN.join('\n')).join('\n');
const tokenizer = await lib.BpeTokenizer.fromText(text, 400);
const out = path.join(repo, 'test', 'fixtures', 'lstmgen-bpe');
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'tokenizer.json'), tokenizer.toJSON().json);
process.stderr.write(`wrote ${path.join(out, 'tokenizer.json')}\n`);
