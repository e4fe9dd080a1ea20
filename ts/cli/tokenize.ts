/** `lstmgen tokenize`: the ids and pieces a model's tokenizer makes of a text, for debugging. */
import * as fs from 'node:fs';
import { decodeText } from '../corpus/read';
import { DataError, fileErrorReason } from '../errors';
import { loadModel } from '../model';
import { warnUnknownSymbols } from '../tokenizer';
import { emit, say } from './print';

/** Flags of `lstmgen tokenize`. */
export interface TokenizeFlags {
  model: string;
  /** The text; unset: standard input. */
  text?: string;
  json?: boolean;
}

/**
 * Print, for each token of the text: its id, its token string and the text it decodes to alone (JSON-quoted;
 * a byte-level piece of a character shows as U+FFFD), then the count of tokens and characters; with `--json`
 * one object `{"ids","tokens","pieces","chars"}`. The decoded ids always equal the text for a byte-level BPE.
 * @throws DataError when standard input is not valid UTF-8 (or UTF-16 with a byte-order mark) or holds NUL
 *   characters, as a corpus file would be refused.
 */
export async function tokenizeCommand(flags: TokenizeFlags): Promise<void> {
  const model = await loadModel(flags.model, { device: 'cpu' });
  const t = model.tokenizer;
  const text = flags.text ?? decodeText(readStdin(), 'standard input');
  const ids = t.encode(text, { onWarning: warnUnknownSymbols });
  const tokens = Array.from(ids, (id) => t.tokens[id]);
  const pieces = Array.from(ids, (id) => t.decode([id]));
  const chars = t.countChars(ids);
  if (flags.json) {
    emit({ ids: Array.from(ids), tokens, pieces, chars });
    return;
  }
  ids.forEach((id, i) => {
    say(`${id}\t${JSON.stringify(tokens[i])}\t${JSON.stringify(pieces[i])}`);
  });
  say(`${ids.length} tokens, ${chars} characters (${t.kind}, vocabulary ${t.vocabSize})`);
}

/**
 * All of standard input.
 * @throws DataError (exit 2: a path that cannot be read) when it cannot be read, e.g. a directory redirected to it.
 */
function readStdin(): Buffer {
  try {
    return fs.readFileSync(0);
  } catch (err) {
    throw new DataError(
      `cannot read standard input: ${fileErrorReason(err)}; give text with --text or a file on stdin`,
      {
        cause: err,
        unreadablePath: '-',
      },
    );
  }
}
