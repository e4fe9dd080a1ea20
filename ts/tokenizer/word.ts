/**
 * Word-level tokenizer in the style of the PTB language-model data and the Keras reference: optional
 * lower-casing, words and single punctuation marks as tokens, every line end as `<eos>`, the vocabulary
 * capped at the most frequent tokens, everything else `<unk>`.
 *
 * Tokens, in the order they are tried at each position (as the regular expression
 * `<unk>|<eos>|[\p{L}\p{M}\p{N}_]+(?:['’][\p{L}\p{M}\p{N}_]+)*|[^\s\p{L}\p{M}\p{N}_]` would match them; with
 * `lowercase` the specials match in any case and each token is lower-cased on its own, so a lone `Σ` is `σ`):
 * the literal specials `<unk>` and `<eos>` (PTB text contains `<unk>`);
 * a word (letters, marks, digits, `_`, joined by inner apostrophes), cut into pieces of at most
 * {@link MAX_WORD} UTF-16 units; one other non-space code point. Each line break (`\r\n`, `\n` or `\r`) is
 * `<eos>`. A hand-written scanner over a character-class table and a hash table of words does this at tens
 * of MB/s (the regular expression with a `Map` managed about 10 MB/s).
 *
 * With the split {@link WordSplit} `'whitespace'` (pre-tokenized text such as Penn Treebank) a token is every
 * maximal run of non-space code points instead (cut at {@link MAX_WORD} units like a word), so `n.v.` and `'s`
 * stay one token each; a run equal to `<unk>` or `<eos>` is that special, and each line break is `<eos>`: the
 * tokens of PyTorch's word_language_model (`line.split() + ['<eos>']` per line).
 */
import {
  BOUNDARY,
  BOUNDARY_TEXT,
  type StreamEncoder,
  TableTokenizer,
  type TokenIds,
  type TokenizerJSON,
  UNK,
  UnknownSymbols,
  type VocabCounter,
} from './base';

/** End-of-line token; always id 1 in word vocabularies. */
export const EOS = '<eos>';

/**
 * How the word tokenizer cuts text: `'punctuation'` (words and single punctuation marks, see the module comment)
 * or `'whitespace'` (runs of non-space characters only: for pre-tokenized corpora such as Penn Treebank).
 */
export const WORD_SPLITS = ['punctuation', 'whitespace'] as const;
/** One of {@link WORD_SPLITS}. */
export type WordSplit = (typeof WORD_SPLITS)[number];

/**
 * Longest word token in UTF-16 units (131,072); a longer run of word characters becomes several tokens, so the
 * text a streaming scanner holds back between pieces stays bounded.
 */
export const MAX_WORD = 1 << 17;

const NO_SPACE_BEFORE = new Set(['.', ',', ';', ':', '!', '?', ')', ']', '}', '%', '-']);
const NO_SPACE_AFTER = new Set(['(', '[', '{', '$', '-']);

// Character classes of UTF-16 units.
const SPACE = 0;
const WORD = 1;
const APOSTROPHE = 2;
const SYMBOL = 3;
const LF = 4;
const CR = 5;
const HIGH = 6; // high surrogate: the class is that of the code point it starts

const WORD_RE = /^[\p{L}\p{M}\p{N}_]$/u;
const SPACE_RE = /^\s$/u;

const CLASS = (() => {
  const table = new Uint8Array(0x10000);
  for (let c = 0; c < 0x10000; c++) {
    const ch = String.fromCharCode(c);
    if (c === 10) table[c] = LF;
    else if (c === 13) table[c] = CR;
    else if (c >= 0xd800 && c <= 0xdbff) table[c] = HIGH;
    else if (c >= 0xdc00 && c <= 0xdfff) table[c] = SYMBOL;
    else if (SPACE_RE.test(ch)) table[c] = SPACE;
    else if (c === 0x27 || c === 0x2019) table[c] = APOSTROPHE;
    else table[c] = WORD_RE.test(ch) ? WORD : SYMBOL;
  }
  return table;
})();

const astralWord = new Map<number, boolean>();
/** Units of the word character at `s[i]` (1, or 2 for a surrogate pair), 0 when it is not one or is cut off at `n`. */
function wordUnits(s: string, i: number, n: number): number {
  const k = CLASS[s.charCodeAt(i)];
  if (k === WORD) return 1;
  if (k !== HIGH || i + 1 >= n) return 0;
  const cp = s.codePointAt(i) ?? 0; // i < n <= s.length
  if (cp < 0x10000) return 0; // lone high surrogate
  let word = astralWord.get(cp);
  if (word === undefined) {
    word = WORD_RE.test(String.fromCodePoint(cp));
    astralWord.set(cp, word);
  }
  return word ? 2 : 0;
}

/** ASCII upper case to lower case; other units unchanged. */
const fold = (c: number) => (c >= 65 && c <= 90 ? c + 32 : c);

/** 32-bit FNV-1a of `s[from, to)`, ASCII-folded when `folded`. */
function hashOf(s: string, from: number, to: number, folded: boolean): number {
  let h = 0x811c9dc5;
  for (let k = from; k < to; k++) h = Math.imul(h ^ (folded ? fold(s.charCodeAt(k)) : s.charCodeAt(k)), 0x01000193);
  return h;
}

const grow = <T extends Int32Array | Float64Array | Uint16Array>(a: T, min: number): T => {
  const b = new (a.constructor as new (n: number) => T)(Math.max(min, 2 * a.length));
  b.set(a);
  return b;
};

/** An open-addressing hash table of token strings stored as UTF-16 units in one pool; entries are 0, 1, 2... */
class WordTable {
  size = 0;
  private slots = new Int32Array(1 << 12).fill(-1);
  private hashes = new Int32Array(1 << 11);
  private starts = new Int32Array((1 << 11) + 1);
  private pool = new Uint16Array(1 << 14);

  /** The entry of `s[from, to)` (ASCII-folded when `folded`) with hash `h`, or `-1 - slot` of where it would go. */
  find(s: string, from: number, to: number, folded: boolean, h: number): number {
    const { slots, hashes, starts, pool } = this;
    const mask = slots.length - 1;
    const len = to - from;
    for (let p = h & mask; ; p = (p + 1) & mask) {
      const e = slots[p];
      if (e < 0) return -1 - p;
      if (hashes[e] !== h || starts[e + 1] - starts[e] !== len) continue;
      const a = starts[e];
      let k = 0;
      if (folded) while (k < len && pool[a + k] === fold(s.charCodeAt(from + k))) k++;
      else while (k < len && pool[a + k] === s.charCodeAt(from + k)) k++;
      if (k === len) return e;
    }
  }

  /** Add `s[from, to)` at `-1 - miss` (what {@link find} returned); returns its entry. */
  insert(s: string, from: number, to: number, folded: boolean, h: number, miss: number): number {
    const e = this.size++;
    if (e >= this.hashes.length) this.hashes = grow(this.hashes, e + 1);
    if (e + 2 > this.starts.length) this.starts = grow(this.starts, e + 2);
    const a = this.starts[e];
    const len = to - from;
    if (a + len > this.pool.length) this.pool = grow(this.pool, a + len);
    for (let k = 0; k < len; k++) this.pool[a + k] = folded ? fold(s.charCodeAt(from + k)) : s.charCodeAt(from + k);
    this.starts[e + 1] = a + len;
    this.hashes[e] = h;
    this.slots[-1 - miss] = e;
    if (2 * this.size > this.slots.length) this.rehash();
    return e;
  }

  /** The string of entry `e`. */
  text(e: number): string {
    let out = '';
    for (let a = this.starts[e], end = this.starts[e + 1]; a < end; a += 8192) {
      out += String.fromCharCode(...this.pool.subarray(a, Math.min(a + 8192, end)));
    }
    return out;
  }

  private rehash(): void {
    this.slots = new Int32Array(2 * this.slots.length).fill(-1);
    const mask = this.slots.length - 1;
    for (let e = 0; e < this.size; e++) {
      let p = this.hashes[e] & mask;
      while (this.slots[p] >= 0) p = (p + 1) & mask;
      this.slots[p] = e;
    }
  }
}

const UNDECIDED = -2;
const SPECIALS = ['<unk>', '<eos>'];

/**
 * Splits text given in pieces into word tokens (see the module comment) and either counts them into `table`
 * (counting: `ids` is null) or writes their ids (`ids[entry]`, `<unk>` for tokens not in `table`) into `out`.
 * Text at the end of a piece that may continue (a word, `\r`, a prefix of `<unk>`, half a surrogate pair)
 * is held back until the next piece or {@link finish}, so the tokens never depend on where pieces are cut.
 * One class for both jobs keeps the scanner's calls monomorphic (a subclass per job halved its speed).
 */
class WordScanner {
  tokens = 0;
  counts = new Float64Array(1 << 11);
  readonly unknown = new UnknownSymbols();
  out: TokenIds = new Uint8Array(0);
  pos = 0;
  private held = '';

  constructor(
    readonly lowercase: boolean,
    readonly table: WordTable,
    private readonly ids: Int32Array | null,
    readonly split: WordSplit = 'punctuation',
  ) {}

  /** Scan the next piece of the text. */
  feed(piece: string): void {
    const s = this.held ? this.held + piece : piece;
    this.held = s.slice(this.scan(s, false));
  }

  /** The text ends: scan what was held back. */
  finish(): void {
    this.scan(this.held, true);
    this.held = '';
  }

  /**
   * Hand over the tokens of `s`: spaces are skipped and each line break is `<eos>` (a `\r` that ends `s` waits for
   * a `\n` unless `final`); what starts anywhere else is one token by the split's rule ({@link word} or
   * {@link run}). Returns where the undecided tail starts (`s.length` when `final`).
   */
  private scan(s: string, final: boolean): number {
    const n = s.length;
    const runs = this.split === 'whitespace';
    let i = 0;
    while (i < n) {
      const k = CLASS[s.charCodeAt(i)];
      if (k === SPACE) {
        i++;
        continue;
      }
      if (k === LF || k === CR) {
        if (k === CR && i + 1 === n && !final) return i;
        this.special(1);
        i += k === CR && s.charCodeAt(i + 1) === 10 ? 2 : 1;
        continue;
      }
      const j = runs ? this.run(s, i, final) : this.word(s, i, final);
      if (j < 0) return i; // the token may continue in the next piece
      i = j;
    }
    return n;
  }

  /**
   * The whitespace split's token at `s[i]` (not a space or line break): the run of non-space units there (at
   * most {@link MAX_WORD}), or the special it spells. Returns where it ends, -1 when it reaches the end of `s`
   * and may continue (not `final`).
   */
  private run(s: string, i: number, final: boolean): number {
    const n = s.length;
    let j = i;
    let ascii = true;
    while (j < n && j - i < MAX_WORD) {
      const d = s.charCodeAt(j);
      const kd = CLASS[d];
      if (kd === SPACE || kd === LF || kd === CR) break;
      // a surrogate pair stays whole: stop before a high surrogate whose pair would not fit
      if (kd === HIGH && j + 1 - i === MAX_WORD) break;
      if (d >= 128) ascii = false;
      j += kd === HIGH && (s.codePointAt(j) ?? 0) >= 0x10000 ? 2 : 1;
    }
    if (j === n && !final) return -1;
    const m = j - i === 5 ? this.specialRun(s, i) : -1;
    if (m >= 0) this.special(m === 0 ? 0 : 1);
    else this.emit(s, i, j, ascii);
    return j;
  }

  /** Which special the 5 units at `s[i]` are (0 `<unk>`, 1 `<eos>`, any case with `lowercase`), else -1. */
  private specialRun(s: string, i: number): number {
    return SPECIALS.findIndex((lit) => {
      for (let k = 0; k < lit.length; k++) {
        const c = s.charCodeAt(i + k);
        if ((this.lowercase ? fold(c) : c) !== lit.charCodeAt(k)) return false;
      }
      return true;
    });
  }

  /** Token `s[from, to)`, looked up ASCII-folded when `folded`, with hash `h` of its looked-up form. */
  private token(s: string, from: number, to: number, folded: boolean, h: number): void {
    this.tokens++;
    const e = this.table.find(s, from, to, folded, h);
    if (this.ids === null) {
      const entry = e < 0 ? this.table.insert(s, from, to, folded, h, e) : e;
      if (entry >= this.counts.length) this.counts = grow(this.counts, entry + 1);
      this.counts[entry]++;
    } else if (e < 0) {
      this.unknown.add(() => (folded ? s.slice(from, to).toLowerCase() : s.slice(from, to)));
      this.out[this.pos++] = 0;
    } else this.out[this.pos++] = this.ids[e];
  }

  /** A line break or the literal `<eos>` (id 1), or the literal `<unk>` (id 0). */
  private special(id: 0 | 1): void {
    this.tokens++;
    if (this.ids !== null) this.out[this.pos++] = id;
  }

  /** Which special starts at `s[i]` (0 `<unk>`, 1 `<eos>`), -1 for none, UNDECIDED when `s` ends too early to tell. */
  private specialAt(s: string, i: number, final: boolean): number {
    for (let m = 0; m < SPECIALS.length; m++) {
      const lit = SPECIALS[m];
      let k = 1;
      while (k < lit.length && i + k < s.length) {
        const c = s.charCodeAt(i + k);
        if ((this.lowercase ? fold(c) : c) !== lit.charCodeAt(k)) break;
        k++;
      }
      if (k === lit.length) return m;
      if (i + k === s.length && !final) return UNDECIDED;
    }
    return -1;
  }

  /** Hand over a token, lower-cased when `lowercase` (ASCII in place; other text through `toLowerCase`). */
  private emit(s: string, from: number, to: number, ascii: boolean): void {
    if (!this.lowercase) this.token(s, from, to, false, hashOf(s, from, to, false));
    else if (ascii) this.token(s, from, to, true, hashOf(s, from, to, true));
    else {
      const w = s.slice(from, to).toLowerCase();
      this.token(w, 0, w.length, false, hashOf(w, 0, w.length, false));
    }
  }

  /**
   * The punctuation split's token at `s[i]` (not a space or line break): a special, a word, or one other code
   * point (see the module comment). Returns where it ends, -1 when `s` ends before that is decided (not `final`).
   */
  private word(s: string, i: number, final: boolean): number {
    const n = s.length;
    const c = s.charCodeAt(i);
    const k = CLASS[c];
    if (c === 0x3c) {
      const m = this.specialAt(s, i, final);
      if (m === UNDECIDED) return -1;
      if (m >= 0) {
        this.special(m === 0 ? 0 : 1);
        return i + SPECIALS[m].length;
      }
    }
    if (k === HIGH && i + 1 === n && !final) return -1;
    const units = wordUnits(s, i, n);
    if (units === 0) {
      const len = k === HIGH && (s.codePointAt(i) ?? 0) >= 0x10000 ? 2 : 1;
      this.emit(s, i, i + len, c < 128);
      return i + len;
    }
    // a word: runs of word characters joined by single apostrophes, at most MAX_WORD units
    const lower = this.lowercase;
    let j = i + units;
    let ascii = c < 128;
    let h = Math.imul(0x811c9dc5 ^ (lower ? fold(c) : c), 0x01000193); // FNV-1a, as hashOf
    let open = false; // the word reaches the end of `s` and might continue
    for (;;) {
      let full = false;
      while (j < n) {
        const d = s.charCodeAt(j);
        const kd = CLASS[d];
        if (kd === WORD) {
          if (j + 1 - i > MAX_WORD) full = true;
          else {
            if (d >= 128) ascii = false;
            h = Math.imul(h ^ (lower ? fold(d) : d), 0x01000193);
            j++;
            continue;
          }
        } else if (kd === HIGH) {
          const u = wordUnits(s, j, n);
          if (u > 0 && j + u - i > MAX_WORD) full = true;
          else if (u > 0) {
            ascii = false;
            j += u;
            continue;
          }
        }
        break;
      }
      if (full || j - i === MAX_WORD) break; // full length: what follows starts a new token
      if (j === n || (CLASS[s.charCodeAt(j)] === HIGH && j + 1 === n)) {
        open = true;
        break;
      }
      const a = s.charCodeAt(j);
      if (CLASS[a] !== APOSTROPHE) break;
      if (j + 1 === n) {
        open = true;
        break;
      }
      const next = wordUnits(s, j + 1, n);
      if (next === 0) {
        if (CLASS[s.charCodeAt(j + 1)] === HIGH && j + 2 === n) open = true;
        break;
      }
      if (j + 1 + next - i > MAX_WORD) break;
      if (a >= 128) ascii = false;
      h = Math.imul(h ^ a, 0x01000193);
      j += 1; // the apostrophe; the word characters after it follow
    }
    if (open && !final) return -1;
    if (ascii || !lower) this.token(s, i, j, lower, ascii ? h : hashOf(s, i, j, false));
    else this.emit(s, i, j, false);
    return j;
  }
}

/** Counts the word tokens of a text given in pieces and their frequencies (see {@link WordTokenizer.counter}). */
export class WordCounter implements VocabCounter {
  private readonly scanner: WordScanner;

  constructor(
    readonly lowercase: boolean,
    readonly split: WordSplit = 'punctuation',
  ) {
    this.scanner = new WordScanner(lowercase, new WordTable(), null, split);
  }

  get tokens(): number {
    return this.scanner.tokens;
  }

  write(piece: string): void {
    this.scanner.feed(piece);
  }

  end(): void {
    this.scanner.finish();
  }

  /**
   * The vocabulary: `<unk>` (id 0), `<eos>` (id 1), {@link BOUNDARY} (id 2) with `boundary`, then the most
   * frequent tokens counted, by descending count, ties by code-unit order, `vocabSize` ids in all at most.
   * Warns (`LSTMGEN_NO_SPACES`) when most of the text is in scripts written without spaces between words.
   */
  build(options: { vocabSize: number; boundary: boolean; warn?: (message: string) => void }): WordTokenizer {
    const { table, counts } = this.scanner;
    const words = Array.from({ length: table.size }, (_, e) => table.text(e));
    const specials = [UNK, EOS, ...(options.boundary ? [BOUNDARY] : [])];
    const ranked = Array.from(words.keys())
      .sort((a, b) => counts[b] - counts[a] || (words[a] < words[b] ? -1 : words[a] > words[b] ? 1 : 0))
      .slice(0, Math.max(0, options.vocabSize - specials.length))
      .map((e) => words[e]);
    const message = noSpacesWarning(words, counts);
    if (message) (options.warn ?? ((m) => process.emitWarning(m, { code: 'LSTMGEN_NO_SPACES' })))(message);
    return new WordTokenizer([...specials, ...ranked], this.lowercase, this.split);
  }
}

/** Scripts written without spaces between words. */
const NO_SPACE_SCRIPT =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;

/**
 * The warning (`LSTMGEN_NO_SPACES`) when more than a third of the word tokens' text is in scripts written without
 * spaces (Chinese, Japanese, Thai...): their "words" are whole clauses between punctuation marks, nearly every
 * one unique, so the model learns little and a validation of repeated clauses is meaningless. Else undefined.
 */
function noSpacesWarning(words: readonly string[], counts: Float64Array): string | undefined {
  let all = 0;
  let clauseUnits = 0;
  let clauses = 0;
  for (let e = 0; e < words.length; e++) {
    const units = counts[e] * words[e].length;
    all += units;
    if (NO_SPACE_SCRIPT.test(words[e])) {
      clauseUnits += units;
      clauses += counts[e];
    }
  }
  if (clauses === 0 || clauseUnits <= all / 3) return undefined;
  return (
    `${Math.round((100 * clauseUnits) / all)}% of the text is in a script written without spaces between words ` +
    `(Chinese, Japanese, Thai...): the word tokenizer makes each run of letters up to the next space or ` +
    `punctuation mark one token, so its "words" are whole clauses (${(clauseUnits / clauses).toFixed(1)} characters on average); ` +
    'use the char tokenizer'
  );
}

/** Encodes word tokens against a fixed vocabulary. */
class WordEncoder implements StreamEncoder {
  private readonly scanner: WordScanner;

  constructor(lowercase: boolean, table: WordTable, ids: Int32Array, split: WordSplit) {
    this.scanner = new WordScanner(lowercase, table, ids, split);
  }

  get unknown(): UnknownSymbols {
    return this.scanner.unknown;
  }

  write(piece: string, out: TokenIds, pos: number): number {
    const scanner = this.scanner;
    [scanner.out, scanner.pos] = [out, pos];
    scanner.feed(piece);
    return scanner.pos;
  }

  end(out: TokenIds, pos: number): number {
    const scanner = this.scanner;
    [scanner.out, scanner.pos] = [out, pos];
    scanner.finish();
    return scanner.pos;
  }
}

/**
 * Word tokenizer: id 0 `<unk>`, id 1 `<eos>`, id 2 {@link BOUNDARY} when the vocabulary has it, then words by
 * frequency; `split` says how text is cut into tokens (see {@link WordSplit}). `decode` normalizes spacing
 * (not an exact inverse) with the punctuation split, and joins tokens by single spaces with the whitespace split.
 */
export class WordTokenizer extends TableTokenizer {
  readonly kind = 'word' as const;
  private lookupTable?: { table: WordTable; ids: Int32Array };

  constructor(
    tokens: readonly string[],
    readonly lowercase: boolean,
    readonly split: WordSplit = 'punctuation',
  ) {
    super(tokens);
  }

  /**
   * Vocabulary of `text`: `<unk>` (id 0), `<eos>` (id 1), then the `vocabSize - 2` most frequent tokens,
   * by descending count, ties by code-unit order of the token (deterministic); no boundary token.
   */
  static fromText(
    text: string,
    options: { vocabSize: number; lowercase: boolean; wordSplit?: WordSplit },
  ): WordTokenizer {
    const counter = WordTokenizer.counter(options.lowercase, options.wordSplit);
    counter.write(text);
    counter.end();
    return counter.build({ vocabSize: options.vocabSize, boundary: false });
  }

  /** A counter whose `build()` makes the vocabulary of the text it counted, cut by `split`. */
  static counter(lowercase: boolean, split: WordSplit = 'punctuation'): WordCounter {
    return new WordCounter(lowercase, split);
  }

  encoder(): StreamEncoder {
    if (!this.lookupTable) {
      const table = new WordTable();
      const ids = new Int32Array(this.vocabSize);
      this.tokens.forEach((t, id) => {
        if (t === UNK || t === EOS || t === BOUNDARY) return;
        const h = hashOf(t, 0, t.length, false);
        const miss = table.find(t, 0, t.length, false, h);
        if (miss < 0) ids[table.insert(t, 0, t.length, false, h, miss)] = id;
      });
      this.lookupTable = { table, ids };
    }
    return new WordEncoder(this.lowercase, this.lookupTable.table, this.lookupTable.ids, this.split);
  }

  /**
   * Tokens joined by spaces, `<eos>` and the boundary as line breaks, no space before closing punctuation or
   * after opening.
   */
  decode(ids: ArrayLike<number>): string {
    let out = '';
    let prev = EOS;
    for (const t of this.lookup(ids)) {
      if (t === EOS || t === BOUNDARY) {
        out += t === EOS ? '\n' : BOUNDARY_TEXT;
        prev = EOS;
        continue;
      }
      const glued = this.split === 'punctuation' && (NO_SPACE_BEFORE.has(t) || NO_SPACE_AFTER.has(prev));
      out += (prev === EOS || glued ? '' : ' ') + t;
      prev = t;
    }
    return out;
  }

  toJSON(): TokenizerJSON {
    const split = this.split === 'punctuation' ? {} : { split: this.split };
    return { type: 'word', lowercase: this.lowercase, ...split, tokens: [...this.tokens] };
  }
}
