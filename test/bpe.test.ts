/**
 * Byte-level BPE and tokenizer.json (Hugging Face `tokenizers` in the addon): round trips, the Python fixture,
 * chunked corpus encoding, save/load, bits per character, streaming.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { corpusStream, tokenizeCorpus } from '../ts/corpus/dataset';
import { CHUNK_BYTES } from '../ts/corpus/read';
import { DataError, ModelFileError } from '../ts/errors';
import { type LstmModel, loadModel } from '../ts/model';
import { mulberry32 } from '../ts/random';
import { BOUNDARY, BpeTokenizer, TextStream, tokenizerFromJSON, type WordTokenizer } from '../ts/tokenizer';
import { train } from '../ts/train/loop';
import { ROOT, shakespeare, TINY, tmpDir } from './helpers';

const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const TEXT = shakespeare(60_000);

/** Strings that break naive tokenizers; each must round-trip exactly. */
const HARD = [
  '',
  ' ',
  '   leading and trailing spaces   ',
  'tabs\tand\ttabs\t\t',
  'CRLF\r\nline\r\n\r\n',
  'NUL \u0000 and controls \u0001\u0007\u001b[31m\u007f\u0085',
  '👍🏽 👩🏽‍🚀 👨‍👩‍👧‍👦 🏳️‍🌈 (skin tones and ZWJ sequences)',
  '中文的文本没有空格，日本語のテキスト、한국어 텍스트',
  'العربية من اليمين إلى اليسار، עברית',
  'combining: e\u0301 a\u0308 Z\u0336\u0337 \u0915\u094d\u0937',
  'special text <|endoftext|> stays text',
  '\uFEFFBOM and \u200b zero width \u2028 line separator',
  'U+FFFD itself: \uFFFD',
];

/** A random string of `n` code points drawn from every plane (no surrogates), seeded. */
function randomUnicode(n: number, seed: number): string {
  const next = mulberry32(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = next();
    let cp: number;
    if (r < 0.4) cp = 0x20 + Math.floor(next() * 0x5f);
    else if (r < 0.5) cp = [0x20, 0x0a, 0x09, 0x0d][Math.floor(next() * 4)];
    else if (r < 0.9) cp = Math.floor(next() * 0xd800);
    else cp = 0xe000 + Math.floor(next() * (0x110000 - 0xe000));
    out.push(String.fromCodePoint(cp));
  }
  return out.join('');
}

let trained: Promise<BpeTokenizer> | undefined;
/** A byte-level BPE of 600 tokens trained on {@link TEXT}. */
const bpe = () => {
  trained ??= BpeTokenizer.fromText(TEXT, 600);
  return trained;
};

describe('byte-level BPE', () => {
  it('is trained to the asked size with the boundary at id 0 and no unknown token', async () => {
    const t = await bpe();
    expect(t.kind).toBe('bpe');
    expect(t.vocabSize).toBe(600);
    expect(t.tokens.length).toBe(600);
    expect(t.boundaryId).toBe(0);
    expect(t.tokens[0]).toBe(BOUNDARY);
    expect(t.unkId).toBeUndefined();
    expect(t.byteLevel).toBe(true);
    // merges learned from English: " the" is one token, and text is shorter in tokens than in characters
    expect(t.encode(' the')).toHaveLength(1);
    expect(t.encode(TEXT.slice(0, 5000)).length).toBeLessThan(0.6 * 5000);
  });

  it('round-trips hard strings and a 1 MB random Unicode string exactly, never producing the boundary', async () => {
    const t = await bpe();
    for (const s of [...HARD, randomUnicode(500_000, 1)]) {
      const ids = t.encode(s);
      expect(t.decode(ids)).toBe(s);
      expect(Array.from(ids)).not.toContain(t.boundaryId);
      expect(t.countChars(ids)).toBe([...s].length);
    }
    expect(Buffer.byteLength(randomUnicode(500_000, 1))).toBeGreaterThan(1_000_000);
  });

  it('encodes a lone surrogate as U+FFFD with one warning, or refuses it under strict', async () => {
    const t = await bpe();
    const warnings: string[] = [];
    const ids = t.encode('a\uD83Db\uDC00', { onWarning: (m) => warnings.push(m) });
    expect(t.decode(ids)).toBe('a\uFFFDb\uFFFD');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/2 symbols that are lone surrogates.*U\+D83D.*U\+DC00.*mapped to U\+FFFD/);
    expect(() => t.encode('x\uD800', { strict: true })).toThrow(DataError);
    // a surrogate pair is not lone
    expect(t.decode(t.encode('\uD83D\uDC4D', { strict: true }))).toBe('👍');
  });

  it('refuses a vocabulary smaller than the boundary and the 256 bytes', async () => {
    await expect(BpeTokenizer.fromText('abc', 256)).rejects.toThrow(/vocabSize >= 257/);
    await expect(train({ ...TINY, tokenizer: 'bpe', vocabSize: 100 })).rejects.toMatchObject({
      code: 'E_CONFIG',
      field: 'vocabSize',
    });
  });

  it('restores from its JSON with the same ids; a corrupt tokenizer.json is a ModelFileError', async () => {
    const t = await bpe();
    const u = tokenizerFromJSON(JSON.stringify(t.toJSON()));
    expect(Array.from(u.encode(TEXT.slice(0, 3000)))).toEqual(Array.from(t.encode(TEXT.slice(0, 3000))));
    expect(() => tokenizerFromJSON({ type: 'bpe', json: '{"model": 3}' })).toThrow(ModelFileError);
  });
});

describe('tokenizer.json from the Python tokenizers package', () => {
  const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'hf-ids.json'), 'utf8')) as {
    texts: string[];
    ids: Record<string, number[][]>;
  };

  // lstmgen-bpe: a BPE trained by lstmgen (scripts/reference/make-lstmgen-bpe.mjs): its Split on the pattern
  // without look-ahead, then ByteLevel, loads in Python and encodes the same ids there
  for (const name of ['hf-bpe', 'hf-wordpiece', 'lstmgen-bpe']) {
    it(`${name}: loads and encodes the ids Python gives`, () => {
      const json = fs.readFileSync(path.join(FIXTURES, name, 'tokenizer.json'), 'utf8');
      const t = BpeTokenizer.fromJSON(json);
      expected.texts.forEach((text, i) => {
        expect(Array.from(t.encode(text))).toEqual(expected.ids[name][i]);
      });
    });
  }

  it('a BPE trained here splits on the pattern without look-ahead, then maps bytes', async () => {
    const t = await bpe();
    const json = JSON.parse(t.toJSON().json);
    expect(json.pre_tokenizer.type).toBe('Sequence');
    const [split, bytes] = json.pre_tokenizer.pretokenizers;
    expect(split).toMatchObject({ type: 'Split', behavior: 'Isolated', invert: false });
    expect(split.pattern.Regex).not.toMatch(/\(\?[=!<]/);
    expect(bytes).toMatchObject({ type: 'ByteLevel', add_prefix_space: false, use_regex: false });
  });

  it('a model whose tokenizer has the GPT-2 pattern (made before the pattern changed) encodes as it did', async () => {
    const dir = path.join(FIXTURES, 'bpe-gpt2-pattern');
    const file = path.join(dir, 'tokenizer.json');
    const before = JSON.parse(fs.readFileSync(path.join(dir, 'ids.json'), 'utf8')) as {
      texts: string[];
      ids: number[][];
    };
    const { model } = await train({ ...TINY, maxSteps: 1, tokenizer: { file } });
    const saved = path.join(tmpDir(), 'old.lstm');
    await model.save(saved);
    const back = await loadModel(saved);
    expect(JSON.parse((back.tokenizer.toJSON() as { json: string }).json).pre_tokenizer).toEqual({
      type: 'ByteLevel',
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    });
    before.texts.forEach((text, i) => {
      expect(Array.from(back.tokenizer.encode(text))).toEqual(before.ids[i]);
      expect(back.tokenizer.decode(back.tokenizer.encode(text))).toBe(text);
    });
  });

  it('keeps a boundary special token it has, adds one it lacks; a WordPiece has [UNK]', () => {
    const read = (name: string) => fs.readFileSync(path.join(FIXTURES, name, 'tokenizer.json'), 'utf8');
    const bpeFile = BpeTokenizer.fromJSON(read('hf-bpe'));
    expect(bpeFile.boundaryId).toBe(0);
    expect(bpeFile.vocabSize).toBe(400);
    const wp = BpeTokenizer.fromJSON(read('hf-wordpiece'));
    const vocab = Object.keys(JSON.parse(read('hf-wordpiece')).model.vocab).length;
    expect(wp.boundaryId).toBe(vocab);
    expect(wp.vocabSize).toBe(vocab + 1);
    expect(wp.unkId).toBe(wp.idOf('[UNK]'));
    expect(wp.byteLevel).toBe(false);
  });

  it('trains a model with tokenizer: { file }', async () => {
    const file = path.join(FIXTURES, 'hf-bpe', 'tokenizer.json');
    const { model } = await train({ ...TINY, maxSteps: 2, tokenizer: { file } });
    expect(model.tokenizer.kind).toBe('bpe');
    expect(model.tokenizer.vocabSize).toBe(400);
    await expect(train({ ...TINY, tokenizer: { file: path.join(FIXTURES, 'hf-ids.json') } })).rejects.toThrow(
      /tokenizer\.file: .*hf-ids\.json.*not a Hugging Face tokenizer\.json/,
    );
  });
});

describe('corpus encoding in chunks', () => {
  it('gives the ids of encoding the whole text, for a file of several chunks and an in-memory text', async () => {
    const t = await bpe();
    // over 2 chunks; emoji straddle the in-memory slice boundaries (surrogate pairs cut in two)
    const unit = `${TEXT.slice(0, 9_997)} 👍🏽\n`;
    let text = '';
    while (text.length < 2.5 * CHUNK_BYTES) text += unit;
    const dir = tmpDir();
    const file = path.join(dir, 'big.txt');
    fs.writeFileSync(file, text);
    const whole = Array.from(t.encode(text));
    for (const source of [file, { text }]) {
      const corpus = await tokenizeCorpus(source, t);
      expect(corpus.framed).toBe(false);
      expect(corpus.ids.length).toBe(whole.length);
      expect(Array.from(corpus.ids)).toEqual(whole);
    }
  });

  it('trains the same vocabulary from a file in chunks as from the whole text', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'c.txt');
    let text = '';
    while (text.length < 1.5 * CHUNK_BYTES) text += TEXT;
    fs.writeFileSync(file, text);
    const corpus = await tokenizeCorpus(file, { kind: 'bpe', vocabSize: 400, lowercase: false });
    const whole = await BpeTokenizer.fromText(text, 400);
    expect(corpus.tokenizer.toJSON()).toEqual(whole.toJSON());
    expect(Array.from(corpus.ids)).toEqual(Array.from(whole.encode(text)));
  });

  it('a BPE trained on records encodes them once: the lengths come out of the encoding', async () => {
    const lines = Array.from(
      { length: 300 },
      (_, i) => `${TEXT.slice(i * 97, i * 97 + 40 + (i % 50)).replace(/\n/g, ' ')}  \t${i}`,
    );
    const phases: string[] = [];
    const corpus = await tokenizeCorpus(
      { text: `${lines.join('\n')}\n` },
      { kind: 'bpe', vocabSize: 400, lowercase: false },
      { format: 'lines', onProgress: (p) => void phases.push(p.phase) },
    );
    // one reading pass (pre-tokens), the merges, one encoding pass
    expect([...new Set(phases)]).toEqual(['scan', 'merges', 'encode']);
    const t = corpus.tokenizer;
    expect(corpus.framed).toBe(true);
    expect(corpus.starts.length).toBe(lines.length + 1);
    expect(corpus.starts.at(-1)).toBe(corpus.ids.length);
    lines.forEach((line, r) => {
      const record = corpus.ids.subarray(corpus.starts[r], corpus.starts[r + 1]);
      expect(Array.from(record)).toEqual([...t.encode(line), t.boundaryId]);
    });
  });

  it('frames records with the boundary token', async () => {
    const corpus = await tokenizeCorpus({ text: 'one two\nthree four\n' }, await bpe(), { format: 'lines' });
    const ids = new Uint32Array(corpusStream(corpus).length);
    corpusStream(corpus).read(0, ids.length, ids, 0);
    expect(ids[0]).toBe(0);
    expect(ids[ids.length - 1]).toBe(0);
    expect((await bpe()).decode(ids)).toBe('\none two\nthree four\n');
  });
});

const BPE_RUN = { ...TINY, corpus: { text: TEXT.slice(0, 30_000) }, tokenizer: 'bpe' as const, vocabSize: 400 };

describe('BPE models', () => {
  let model: Promise<LstmModel> | undefined;
  const bpeModel = () => {
    model ??= train(BPE_RUN).then((r) => r.model);
    return model;
  };

  it('save/load gives identical logits and seeded text; a corrupt tokenizer in the file is refused', async () => {
    const m = await bpeModel();
    const dir = tmpDir();
    const file = path.join(dir, 'm.lstm');
    await m.save(file);
    const back = await loadModel(file);
    expect(back.tokenizer.toJSON()).toEqual(m.tokenizer.toJSON());
    const ids = m.tokenizer.encode(TEXT.slice(0, 400)).slice(0, 32);
    expect(await back.logits(ids, 2, 16)).toEqual(await m.logits(ids, 2, 16));
    const opts = { prompt: 'ROMEO:', maxTokens: 60, seed: 5, temperature: 1 };
    expect(await back.generate(opts)).toEqual(await m.generate(opts));

    const bad = path.join(dir, 'bad.lstm');
    const json = JSON.stringify({ type: 'bpe', json: '{"version":"1.0","model":{"type":"BPE","vocab":' });
    fs.writeFileSync(bad, m.toBytes({ tokenizer: json }));
    await expect(loadModel(bad)).rejects.toThrow(ModelFileError);
    await expect(loadModel(bad)).rejects.toThrow(/bad\.lstm: tokenizer metadata is invalid/);
  });

  it('streams the text generate() gives, with no piece holding part of a character', async () => {
    const m = await bpeModel();
    for (const seed of [1, 2, 3]) {
      const opts = { prompt: 'To be', maxTokens: 80, seed, temperature: 1.3 };
      const [text] = await m.generate(opts);
      const pieces: string[] = [];
      for await (const p of m.stream(opts)) pieces.push(p);
      expect(pieces.join('')).toBe(text);
      // U+FFFD only where the model sampled bytes that are not UTF-8 (generate() has them too)
      for (const p of pieces) if (p.includes('\uFFFD')) expect(text).toContain(p);
    }
  });

  it('TextStream holds back byte tokens until their character is complete', async () => {
    const t = await bpe();
    const s = 'emoji 👩🏽‍🚀 and 中文 end';
    const ids = t.encode(s);
    expect(ids.length).toBeGreaterThan(12); // the 4-byte characters are several byte tokens each
    const stream = new TextStream(t);
    const pieces = Array.from(ids, (id) => stream.push([id]));
    pieces.push(stream.end());
    expect(pieces.join('')).toBe(s);
    for (const p of pieces) expect(p).not.toContain('\uFFFD');
    expect(pieces.filter((p) => p === '').length).toBeGreaterThan(0);
  });

  it('bitsPerChar = total nats / characters predicted / ln 2, by hand on a small text', async () => {
    const m = await bpeModel();
    const text = 'To be, or not to be, that is the question.';
    const ids = m.tokenizer.encode(text);
    // one stream of all the ids: every token but the first is predicted
    const r = await m.evaluate(ids, { batchSize: 1, seqLen: ids.length - 1 });
    expect(r.tokens).toBe(ids.length - 1);
    const first = m.tokenizer.decode([ids[0]]); // ASCII text: whole characters
    expect(r.chars).toBe(text.length - first.length);
    expect(r.bitsPerChar).toBeCloseTo((r.loss * r.tokens) / (text.length - first.length) / Math.LN2, 10);
  });
});

describe('bitsPerChar of word and char models', () => {
  it('word: counts the characters of the decoded words with their spaces', async () => {
    const { model } = await train({ ...TINY, tokenizer: 'word', vocabSize: 50, maxSteps: 2 });
    const t = model.tokenizer as WordTokenizer;
    const ids = t.encode('the and . the and', { strict: true });
    expect(ids).toHaveLength(5);
    const r = await model.evaluate(ids, { batchSize: 1, seqLen: 4 });
    // predicted: " and" (4), "." (1), " the" (4), " and" (4)
    expect(r.chars).toBe(13);
    expect(r.bitsPerChar).toBeCloseTo((r.loss * 4) / 13 / Math.LN2, 10);
  });

  it('char: equals loss / ln 2', async () => {
    const { model } = await train({ ...TINY, maxSteps: 2 });
    const r = await model.evaluate({ text: TEXT.slice(0, 3000) });
    expect(r.chars).toBe(r.tokens);
    expect(r.bitsPerChar).toBeCloseTo(r.loss / Math.LN2, 10);
  });

  it('validation metrics carry bitsPerChar', async () => {
    const { history } = await train({ ...BPE_RUN, maxSteps: 3 });
    const e = history.epochs.at(-1);
    expect(e?.valBitsPerChar).toBeGreaterThan(0);
    expect(e?.valBitsPerChar).toBeLessThan(e?.valLoss ?? 0);
  });
});
