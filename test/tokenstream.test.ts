import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../ts/random';
import { BOUNDARY, CharTokenizer, EOS, tokenizerFromJSON, UNK, WordTokenizer } from '../ts/tokenizer';
import { MAX_WORD } from '../ts/tokenizer/word';

/** The word splitting as a regular expression (the specification the scanner implements); specials match in any case when lower-casing. */
const WORDS = String.raw`[\p{L}\p{M}\p{N}_]+(?:['’][\p{L}\p{M}\p{N}_]+)*|[^\s\p{L}\p{M}\p{N}_]`;
const TOKEN_RE = new RegExp(`<unk>|<eos>|${WORDS}`, 'gu');
const TOKEN_RE_ANY_CASE = new RegExp(`<[uU][nN][kK]>|<[eE][oO][sS]>|${WORDS}`, 'gu');
function referenceWords(text: string, lowercase: boolean): string[] {
  const out: string[] = [];
  text.split(/\r\n|\n|\r/).forEach((line, i) => {
    if (i > 0) out.push(EOS);
    for (const m of line.matchAll(lowercase ? TOKEN_RE_ANY_CASE : TOKEN_RE)) {
      const w = lowercase ? m[0].toLowerCase() : m[0];
      out.push(w);
    }
  });
  return out;
}

const ALPHABET = [
  ...'abcXYZ019_ ',
  ' ',
  ' ',
  '\n',
  '\r',
  '\r\n',
  "'",
  '’',
  '.',
  ',',
  '<',
  '>',
  '<unk>',
  '<UNK>',
  '<eos>',
  'é',
  'É',
  'ß',
  'Σ',
  '白',
  '鯨',
  '🐳',
  '𝐀',
  '\u0301',
  '\u00a0',
  '\t',
  '—',
  '\uD800',
];

function randomText(next: () => number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ALPHABET[Math.floor(next() * ALPHABET.length)];
  return s;
}

/** `text` cut into pieces at random UTF-16 positions (surrogate pairs too). */
function randomPieces(next: () => number, text: string): string[] {
  const pieces: string[] = [];
  let i = 0;
  while (i < text.length) {
    const len = 1 + Math.floor(next() * 12);
    pieces.push(text.slice(i, i + len));
    i += len;
  }
  return pieces;
}

function encodePieces(tok: CharTokenizer | WordTokenizer, pieces: string[]): number[] {
  const enc = tok.encoder();
  const out = new Uint32Array(pieces.join('').length + 1);
  let pos = 0;
  for (const p of pieces) pos = enc.write(p, out, pos);
  return Array.from(out.subarray(0, enc.end(out, pos)));
}

describe('word scanner', () => {
  it('splits as the regular expression does, wherever the text is cut into pieces', () => {
    const next = mulberry32(11);
    for (let round = 0; round < 300; round++) {
      const text = randomText(next, 1 + Math.floor(next() * 60));
      for (const lowercase of [true, false]) {
        const tok = WordTokenizer.fromText(text, { vocabSize: 1000, lowercase });
        const expected = referenceWords(text, lowercase);
        expect(Array.from(tok.encode(text)).map((i) => tok.tokens[i])).toEqual(
          expected.map((w) => (tok.idOf(w) === undefined ? UNK : w)),
        );
        const counter = WordTokenizer.counter(lowercase);
        for (const p of randomPieces(next, text)) counter.write(p);
        counter.end();
        expect(counter.tokens).toBe(expected.length);
        expect(encodePieces(tok, randomPieces(next, text))).toEqual(Array.from(tok.encode(text)));
      }
    }
  });

  it('cuts a run of word characters longer than MAX_WORD into tokens of at most MAX_WORD units', () => {
    const long = '白'.repeat(2 * MAX_WORD + 5);
    const tok = WordTokenizer.fromText(`${long}。`, { vocabSize: 10, lowercase: true });
    const words = Array.from(tok.encode(`${long}。`)).map((i) => tok.tokens[i]);
    expect(words.map((w) => w.length)).toEqual([MAX_WORD, MAX_WORD, 5, 1]);
    const pieces = Array.from({ length: 8 }, (_, i) => `${long}。`.slice(i * 40_000, (i + 1) * 40_000));
    expect(encodePieces(tok, pieces)).toEqual(Array.from(tok.encode(`${long}。`)));
  });
});

describe('char encoder', () => {
  it('gives the same ids wherever the text is cut, surrogate pairs included', () => {
    const next = mulberry32(5);
    for (let round = 0; round < 100; round++) {
      const text = randomText(next, 1 + Math.floor(next() * 80));
      const tok = CharTokenizer.fromText(text);
      expect(tok.encode(text).length).toBe([...text].length);
      expect(encodePieces(tok, randomPieces(next, text))).toEqual(Array.from(tok.encode(text)));
    }
  });
});

describe('boundary token', () => {
  it('is a special of its own in both vocabularies, never produced from text, restored from JSON', () => {
    const char = tokenizerFromJSON({ type: 'char', tokens: [UNK, BOUNDARY, 'a', 'b'] });
    expect(char.boundaryId).toBe(1);
    expect(Array.from(char.encode(`a${BOUNDARY}b`, { onWarning: () => {} }))).not.toContain(1);
    expect(char.decode([2, 1, 3])).toBe('a\nb');
    const word = tokenizerFromJSON({ type: 'word', lowercase: true, tokens: [UNK, EOS, BOUNDARY, 'a'] });
    expect(word.boundaryId).toBe(2);
    expect(Array.from(word.encode(`a ${BOUNDARY} a`, { onWarning: () => {} }))).not.toContain(2);
    expect(CharTokenizer.fromText('ab').boundaryId).toBeUndefined();
  });
});
