/** The word tokenizer's whitespace split (pre-tokenized corpora such as Penn Treebank). */
import { describe, expect, it } from 'vitest';
import { parseTrainConfig } from '../ts/config';
import { tokenizeCorpus } from '../ts/corpus/dataset';
import { ConfigError } from '../ts/errors';
import { mulberry32 } from '../ts/random';
import { EOS, tokenizerFromJSON, UNK, WordTokenizer } from '../ts/tokenizer';

/**
 * A PTB-like text: lines that start with a space (as PTB's files do), pre-tokenized words with inner periods
 * and apostrophes, `<unk>` and `N` in the text; returns the text and the counts a whitespace reader gives
 * (`line.split() + ['<eos>']` per line, computed here without the tokenizer).
 */
function ptbLike(lines: number, seed: number): { text: string; tokens: number; types: Set<string> } {
  const words = ['the', 'n.v.', "'s", '<unk>', 'N', 'u.s.', 'co.', 'mr.', "n't", '$', 'a', 'market', '&', 'said'];
  const rand = mulberry32(seed);
  let text = '';
  let tokens = 0;
  const types = new Set<string>([EOS]);
  for (let l = 0; l < lines; l++) {
    const n = 1 + Math.floor(rand() * 12);
    const line = Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]);
    text += ` ${line.join(' ')} \n`;
    tokens += n + 1;
    for (const w of line) types.add(w);
  }
  return { text, tokens, types };
}

describe('word tokenizer, whitespace split', () => {
  it('keeps pre-tokenized words whole, with <eos> per line, as a whitespace reader counts them', () => {
    const { text, tokens, types } = ptbLike(500, 3);
    const tok = WordTokenizer.fromText(text, { vocabSize: 100, lowercase: false, wordSplit: 'whitespace' });
    const ids = tok.encode(text);
    expect(ids.length).toBe(tokens);
    expect(new Set(tok.tokens)).toEqual(types); // <unk> from the text is the unknown token itself
    expect(tok.tokens.slice(0, 2)).toEqual([UNK, EOS]);
    for (const w of ['n.v.', "'s", 'u.s.', "n't", 'N']) expect(tok.tokens).toContain(w);
    // the punctuation split cuts the same text again (n.v. -> n . v .)
    const cut = WordTokenizer.fromText(text, { vocabSize: 100, lowercase: false });
    expect(cut.encode(text).length).toBeGreaterThan(tokens);
    expect(cut.tokens).not.toContain('n.v.');
  });

  it('gives the same ids whatever the pieces the text comes in', () => {
    const { text } = ptbLike(200, 9);
    const tok = WordTokenizer.fromText(text, { vocabSize: 50, lowercase: true, wordSplit: 'whitespace' });
    const whole = tok.encode(text);
    const enc = tok.encoder();
    const out = new Uint32Array(whole.length + 8);
    let pos = 0;
    const rand = mulberry32(1);
    for (let i = 0; i < text.length; ) {
      const j = Math.min(text.length, i + 1 + Math.floor(rand() * 7));
      pos = enc.write(text.slice(i, j), out, pos);
      i = j;
    }
    pos = enc.end(out, pos);
    expect(Array.from(out.subarray(0, pos))).toEqual(Array.from(whole));
  });

  it('splits on tabs and any line break, keeps astral characters whole, lower-cases when asked', () => {
    const tok = WordTokenizer.fromText('A.B\t🐳x\r\nc-d\re', {
      vocabSize: 20,
      lowercase: true,
      wordSplit: 'whitespace',
    });
    expect(tok.decode(tok.encode('A.B\t🐳x\r\nc-d\re'))).toBe('a.b 🐳x\nc-d\ne');
  });

  it('survives the model file (toJSON) and is a resume-locked train option', () => {
    const tok = WordTokenizer.fromText('a.b c\n', { vocabSize: 10, lowercase: true, wordSplit: 'whitespace' });
    const back = tokenizerFromJSON(JSON.stringify(tok.toJSON()));
    expect((back as WordTokenizer).split).toBe('whitespace');
    expect(Array.from(back.encode('a.b c\n'))).toEqual(Array.from(tok.encode('a.b c\n')));
    const old = WordTokenizer.fromText('a.b c\n', { vocabSize: 10, lowercase: true });
    expect(old.toJSON()).not.toHaveProperty('split'); // files of the default split stay as they were
    expect(parseTrainConfig({ corpus: 'x' }).wordSplit).toBe('punctuation');
    expect(() => parseTrainConfig({ corpus: 'x', wordSplit: 'spaces' as never })).toThrow(ConfigError);
  });

  it('counts a corpus through tokenizeCorpus with the option', async () => {
    const { text, tokens, types } = ptbLike(300, 5);
    const corpus = await tokenizeCorpus(
      { text },
      { kind: 'word', vocabSize: 10_000, lowercase: false, wordSplit: 'whitespace' },
    );
    expect(corpus.ids.length).toBe(tokens);
    expect(corpus.tokenizer.vocabSize).toBe(types.size);
  });
});
