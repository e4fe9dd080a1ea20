/**
 * Record formats: how the text of a document becomes records.
 * - `text`: the document is one record (empty documents are skipped).
 * - `lines`: every line is a record (line breaks `\r\n`, `\n`, `\r`; blank lines are skipped).
 * - `jsonl`: every non-blank line is a JSON object; its string field `field` (default `text`) is the record.
 * - `csv`: RFC 4180 CSV (parsed by csv-parse) whose first row is the header; the column `field` (a header
 *   name, or a 0-based index: a number, or digits that name no column) is the record.
 * Empty records are skipped. Records stream through: only one line (or CSV row) is held at a time.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CsvError, parse } from 'csv-parse';
import { DataError } from '../errors';
import type { CorpusDocument } from './sources';

/** Record formats of corpus documents. */
export const CORPUS_FORMATS = ['text', 'lines', 'jsonl', 'csv'] as const;
/** A record format (see the module comment). */
export type CorpusFormat = (typeof CORPUS_FORMATS)[number];

/** The field (JSONL) or column (CSV) read when `field` is not given. */
export const DEFAULT_FIELD = 'text';

/** Longest line of a `lines` or `jsonl` document, in UTF-16 units (64 Mi). */
export const MAX_LINE = 1 << 26;

/** Receives the records of a document. */
export interface RecordSink {
  /** The next piece of the current record's text (a record may come in several pieces). */
  text(piece: string): void;
  /** The current record ends. */
  end(): void | Promise<void>;
}

/** The complete lines of `pieces` (without their line breaks), with their 1-based numbers. */
async function* lines(doc: CorpusDocument, pieces: AsyncIterable<string>): AsyncGenerator<[string, number]> {
  let held = '';
  let number = 0;
  for await (const piece of pieces) {
    const s = held + piece;
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      if (c === 13 && i + 1 === s.length) break; // a \n may follow in the next piece
      yield [s.slice(start, i), ++number];
      if (c === 13 && s.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    held = s.slice(start);
    if (held.length > MAX_LINE) {
      throw new DataError(
        `corpus ${JSON.stringify(doc.name)} line ${number + 1} is longer than ${MAX_LINE} characters; ` +
          "the lines and jsonl formats hold one record per line (use format 'text' for continuous text)",
      );
    }
  }
  if (held.endsWith('\r')) held = held.slice(0, -1);
  if (held) yield [held, ++number];
}

const describe = (value: unknown) =>
  value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : typeof value;

async function jsonlRecords(doc: CorpusDocument, pieces: AsyncIterable<string>, field: string, sink: RecordSink) {
  const name = JSON.stringify(doc.name);
  for await (const [line, number] of lines(doc, pieces)) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new DataError(`corpus ${name} line ${number} is not JSON: ${(err as Error).message}`, { cause: err });
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new DataError(
        `corpus ${name} line ${number} is ${describe(value)}, not a JSON object with a field "${field}"`,
      );
    }
    const record = (value as Record<string, unknown>)[field];
    if (record === undefined) {
      const fields = Object.keys(value)
        .slice(0, 10)
        .map((k) => JSON.stringify(k));
      throw new DataError(
        `corpus ${name} line ${number} has no field ${JSON.stringify(field)} (its fields: ${fields.join(', ') || 'none'}); choose the field with field / --field`,
      );
    }
    if (typeof record !== 'string') {
      throw new DataError(
        `corpus ${name} line ${number}: field ${JSON.stringify(field)} is ${describe(record)}, not a string`,
      );
    }
    if (record) {
      sink.text(record);
      await sink.end();
    }
  }
}

/** The 0-based column of `field` in `header`. @throws DataError naming the columns when there is none. */
function columnOf(doc: CorpusDocument, header: string[], field: string | number): number {
  let index = typeof field === 'number' ? field : header.indexOf(field);
  if (index < 0 && typeof field === 'string' && /^\d+$/.test(field)) index = Number(field);
  if (index >= 0 && index < header.length) return index;
  const columns = header
    .slice(0, 20)
    .map((c) => JSON.stringify(c))
    .join(', ');
  const what = typeof field === 'number' || index >= 0 ? `column index ${index}` : `column ${JSON.stringify(field)}`;
  throw new DataError(
    `corpus ${JSON.stringify(doc.name)} has no ${what}: its header has ${header.length} columns (${columns}); choose one with field / --field (a name or a 0-based index)`,
  );
}

async function csvRecords(
  doc: CorpusDocument,
  pieces: AsyncIterable<string>,
  field: string | number,
  sink: RecordSink,
) {
  const parser = parse({ info: true, skip_empty_lines: true });
  const feeding = pipeline(Readable.from(pieces), parser);
  let column = -1;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      if (column < 0) {
        column = columnOf(doc, record, field);
        continue;
      }
      const text = record[column];
      if (text === undefined)
        throw new DataError(`corpus ${JSON.stringify(doc.name)} line ${info.lines} has no column ${column}`);
      if (text) {
        sink.text(text);
        await sink.end();
      }
    }
    await feeding;
  } catch (err) {
    await feeding.catch(() => {});
    if (err instanceof CsvError)
      throw new DataError(`corpus ${JSON.stringify(doc.name)} is not valid CSV: ${err.message}`, { cause: err });
    throw err;
  }
}

/**
 * Hand the records of `doc`, whose text arrives as `pieces`, to `sink` in order.
 * @param field the JSONL field or CSV column; default {@link DEFAULT_FIELD}.
 * @throws DataError for a line longer than {@link MAX_LINE}, a JSONL line that is not a JSON object (naming
 *   the line), a missing or non-string field, a CSV without the column (naming the columns) or invalid CSV;
 *   and whatever reading `pieces` throws.
 */
export async function readRecords(
  doc: CorpusDocument,
  pieces: AsyncIterable<string>,
  format: CorpusFormat,
  field: string | number | undefined,
  sink: RecordSink,
): Promise<void> {
  switch (format) {
    case 'text': {
      let open = false;
      for await (const piece of pieces) {
        if (!piece) continue;
        sink.text(piece);
        open = true;
      }
      if (open) await sink.end();
      return;
    }
    case 'lines':
      for await (const [line] of lines(doc, pieces)) {
        if (line.trim() === '') continue;
        sink.text(line);
        await sink.end();
      }
      return;
    case 'jsonl':
      return jsonlRecords(doc, pieces, String(field ?? DEFAULT_FIELD), sink);
    case 'csv':
      return csvRecords(doc, pieces, field ?? DEFAULT_FIELD, sink);
  }
}
