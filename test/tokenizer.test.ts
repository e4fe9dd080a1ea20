import { describe, expect, it, vi } from 'vitest';
import { DataError, ModelFileError } from '../ts/errors';
import { buildTokenizer, CharTokenizer, EOS, tokenizerFromJSON, UNK, WordTokenizer } from '../ts/tokenizer';

const MIXED = 'Hello, 世界! 👋🏽 naïve café — 🐳 whale\nsecond line 日本語 🇯🇵';

describe('char tokenizer', () => {
  it('round-trips emoji, CJK and mixed text by code point', () => {
    for (const text of ['🐳🐋💧', '白鯨は海を泳ぐ。', MIXED]) {
      const tok = CharTokenizer.fromText(text);
      const ids = tok.encode(text);
      expect(ids.length).toBe([...text].length); // one id per code point, not per UTF-16 unit
      expect(tok.decode(ids)).toBe(text);
    }
  });

  it('never stores UTF-16 halves in the vocabulary', () => {
    const tok = CharTokenizer.fromText('a🐳b');
    expect(tok.tokens).toEqual([UNK, 'a', 'b', '🐳']);
    for (const t of tok.tokens.slice(1)) expect([...t]).toHaveLength(1);
    expect(tok.tokens.some((t) => /^[\uD800-\uDFFF]$/.test(t))).toBe(false);
  });

  it('sorts the vocabulary by code point with <unk> at id 0, independent of text order', () => {
    const a = CharTokenizer.fromText('cba😀\uFFFF');
    const b = CharTokenizer.fromText('😀\uFFFFabc');
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens).toEqual([UNK, 'a', 'b', 'c', '\uFFFF', '😀']); // U+FFFF < U+1F600 although '\uD83D' < '\uFFFF'
    expect(a.encode('abc')).toEqual(Uint32Array.of(1, 2, 3));
  });

  it('maps unknown symbols to <unk> with exactly one warning per call', () => {
    const tok = CharTokenizer.fromText('abc');
    const warnings: string[] = [];
    const ids = tok.encode('a😀xb😀', { onWarning: (m) => warnings.push(m) });
    expect(Array.from(ids)).toEqual([1, 0, 0, 2, 0]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('3 symbols');
    expect(warnings[0]).toContain('"😀"');
    expect(warnings[0]).toContain('"x"');
    expect(tok.decode(ids)).toBe('a\uFFFD\uFFFDb\uFFFD');
  });

  it('warns through process.emitWarning by default', () => {
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      CharTokenizer.fromText('abc').encode('abz');
      expect(spy).toHaveBeenCalledTimes(1);
      expect(String(spy.mock.calls[0][0])).toContain('"z"');
    } finally {
      spy.mockRestore();
    }
  });

  it('throws DataError for unknown symbols with strict', () => {
    const tok = CharTokenizer.fromText('abc');
    expect(() => tok.encode('ab🦄', { strict: true })).toThrow(DataError);
    expect(() => tok.encode('ab🦄', { strict: true })).toThrow(/🦄/);
    expect(tok.encode('cab', { strict: true })).toEqual(Uint32Array.of(3, 1, 2));
  });

  it('rejects ids outside the vocabulary in decode', () => {
    const tok = CharTokenizer.fromText('ab');
    expect(() => tok.decode([0, 3])).toThrow(DataError);
    expect(() => tok.decode([-1])).toThrow(DataError);
  });

  it('survives toJSON -> JSON text -> tokenizerFromJSON with identical ids', () => {
    const tok = CharTokenizer.fromText(MIXED);
    const back = tokenizerFromJSON(JSON.stringify(tok.toJSON()));
    expect(back.kind).toBe('char');
    expect(back.tokens).toEqual(tok.tokens);
    expect(back.encode(MIXED)).toEqual(tok.encode(MIXED));
  });
});

describe('word tokenizer', () => {
  const text = 'The whale! The sea, the whale.\nCall me Ishmael.\n';

  it('splits words and punctuation, lower-cases, and ends lines with <eos>', () => {
    const tok = WordTokenizer.fromText(text, { vocabSize: 100, lowercase: true });
    const words = Array.from(tok.encode(text)).map((i) => tok.tokens[i]);
    expect(words).toEqual([
      'the',
      'whale',
      '!',
      'the',
      'sea',
      ',',
      'the',
      'whale',
      '.',
      EOS,
      'call',
      'me',
      'ishmael',
      '.',
      EOS,
    ]);
  });

  it('orders the vocabulary by frequency, ties by string, after <unk> and <eos>', () => {
    const tok = WordTokenizer.fromText(text, { vocabSize: 100, lowercase: true });
    // the:3, whale:2, .:2, then count 1 sorted: '!' ',' call ishmael me sea
    expect(tok.tokens).toEqual([UNK, EOS, 'the', '.', 'whale', '!', ',', 'call', 'ishmael', 'me', 'sea']);
  });

  it('caps the vocabulary at vocabSize (specials included) and maps the rest to <unk>', () => {
    const tok = WordTokenizer.fromText(text, { vocabSize: 5, lowercase: true });
    expect(tok.vocabSize).toBe(5);
    expect(tok.tokens).toEqual([UNK, EOS, 'the', '.', 'whale']);
    const warnings: string[] = [];
    const ids = tok.encode('the sea.', { onWarning: (m) => warnings.push(m) });
    expect(Array.from(ids)).toEqual([2, 0, 3]);
    expect(warnings).toHaveLength(1);
    expect(() => tok.encode('the sea.', { strict: true })).toThrow(DataError);
  });

  it('keeps case when lowercase is false', () => {
    const tok = WordTokenizer.fromText(text, { vocabSize: 100, lowercase: false });
    expect(tok.idOf('The')).toBeDefined();
    expect(tok.idOf('the')).toBeDefined();
    expect(tok.idOf('Call')).toBeDefined();
    expect(tok.idOf('call')).toBeUndefined();
  });

  it('treats literal <unk> in the text (PTB) as the unknown token', () => {
    const tok = WordTokenizer.fromText('a <unk> b\n', { vocabSize: 100, lowercase: true });
    expect(tok.tokens).toEqual([UNK, EOS, 'a', 'b']);
    expect(Array.from(tok.encode('a <unk> b'))).toEqual([2, 0, 3]);
  });

  it('decodes with readable spacing and <eos> as a line break', () => {
    const tok = WordTokenizer.fromText(text, { vocabSize: 100, lowercase: true });
    expect(tok.decode(tok.encode('the whale, the sea!\ncall me.'))).toBe('the whale, the sea!\ncall me.');
  });

  it('handles CJK and emoji as word characters / symbols', () => {
    const t = '白鯨 🐳 ok\n';
    const tok = WordTokenizer.fromText(t, { vocabSize: 100, lowercase: true });
    expect(Array.from(tok.encode(t)).map((i) => tok.tokens[i])).toEqual(['白鯨', '🐳', 'ok', EOS]);
  });

  it('survives toJSON -> tokenizerFromJSON', () => {
    const tok = WordTokenizer.fromText(text, { vocabSize: 7, lowercase: false });
    const back = tokenizerFromJSON(tok.toJSON());
    expect(back.kind).toBe('word');
    expect(back.tokens).toEqual(tok.tokens);
    expect(back.encode(text, { onWarning: () => {} })).toEqual(tok.encode(text, { onWarning: () => {} }));
  });
});

describe('buildTokenizer / tokenizerFromJSON', () => {
  it('builds the requested kind', () => {
    expect(buildTokenizer('ab', { kind: 'char', vocabSize: 10, lowercase: true }).kind).toBe('char');
    expect(buildTokenizer('ab', { kind: 'word', vocabSize: 10, lowercase: true }).kind).toBe('word');
  });

  it('rejects invalid serialized vocabularies with ModelFileError', () => {
    expect(() => tokenizerFromJSON('{not json')).toThrow(ModelFileError);
    expect(() => tokenizerFromJSON('{"type":"bpe","tokens":[]}')).toThrow(ModelFileError);
    expect(() => tokenizerFromJSON('{"type":"char","tokens":["<unk>","ab"]}')).toThrow(ModelFileError);
    expect(() => tokenizerFromJSON('{"type":"char","tokens":["a","b"]}')).toThrow(ModelFileError);
    expect(() => tokenizerFromJSON('{"type":"word","lowercase":true,"tokens":["<unk>","x"]}')).toThrow(ModelFileError);
  });
});
