/**
 * Which files a command reads and writes, and the check that no output replaces an input (or another output)
 * before anything is written. Paths are compared as the file system resolves them: symbolic links are followed
 * (for an output that does not exist yet, those of its directories), and hard links of one file are one file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, show } from '../errors';

/** A file a command reads. */
export interface InputFile {
  /** The path as given. */
  path: string;
  /** The file in messages, e.g. `"the corpus"`. */
  what: string;
  /**
   * The `field` of an output that may replace this input on purpose (a resumed checkpoint inside the run's own
   * checkpoint directory: rotating it away is part of continuing the run).
   */
  rewrittenBy?: string;
}

/** A file a command writes, or with `names` the files it writes into directory `path`. */
export interface OutputFile {
  /** The path as given. */
  path: string;
  /** The option that named it (the ConfigError's field), e.g. `"out"`, `"logFile"`. */
  field: string;
  /** The file in messages, e.g. `"the model file"`. */
  what: string;
  /** When set, `path` is a directory and the outputs are its files whose names match. */
  names?: RegExp;
}

/** A path as the file system resolves it, and the identity of the file when it exists. */
interface Resolved {
  real: string;
  id?: string;
}

/**
 * `p` with every symbolic link resolved: the real path of its longest existing prefix, then the rest as given
 * (so an output whose directory is a link resolves through the link).
 */
function resolve(p: string): Resolved {
  const abs = path.resolve(p);
  const rest: string[] = [];
  for (let at = abs; ; at = path.dirname(at)) {
    try {
      const real = path.join(fs.realpathSync(at), ...rest);
      const stat = fs.statSync(real, { throwIfNoEntry: false });
      return { real, ...(stat ? { id: `${stat.dev}:${stat.ino}` } : {}) };
    } catch {
      if (path.dirname(at) === at) return { real: abs };
      rest.unshift(path.basename(at));
    }
  }
}

const same = (a: Resolved, b: Resolved) => a.real === b.real || (a.id !== undefined && a.id === b.id);

/** Whether output `out` (resolved as `o`) writes the file resolved as `f`. */
function writes(out: OutputFile, o: Resolved, f: Resolved): boolean {
  if (same(o, f)) return true;
  return out.names !== undefined && path.dirname(f.real) === o.real && out.names.test(path.basename(f.real));
}

/**
 * Refuse a run whose outputs would replace one of its inputs, or each other: an output that resolves to an
 * input file (symbolic and hard links included), a directory output holding an input under one of the names it
 * writes, or two file outputs that are one file. Inputs that do not exist are skipped (reading them reports
 * that).
 * @throws ConfigError with the field of the first offending output, naming both paths.
 */
export function assertOutputsSpareInputs(outputs: readonly OutputFile[], inputs: readonly InputFile[]): void {
  const ins = inputs.map((i) => ({ ...i, at: resolve(i.path) })).filter((i) => i.at.id !== undefined);
  const outs = outputs.map((o) => ({ ...o, at: resolve(o.path) }));
  const q = JSON.stringify;
  outs.forEach((out, k) => {
    for (const input of ins) {
      if (input.rewrittenBy === out.field || !writes(out, out.at, input.at)) continue;
      const clash = !same(out.at, input.at)
        ? `${q(out.path)} holds ${input.what} (${q(input.path)}) under a name ${out.what} use`
        : `${q(out.path)} is the same file as ${input.what} (${q(input.path)})`;
      throw new ConfigError(out.field, `${clash}; writing there would destroy the input, choose another path`);
    }
    for (const other of outs.slice(0, k)) {
      const clash = out.names ? writes(out, out.at, other.at) : writes(other, other.at, out.at);
      if (clash) {
        throw new ConfigError(
          out.field,
          `${q(out.path)} is also ${other.what} (${q(other.path)}); give each output its own path`,
        );
      }
    }
  });
}

/**
 * Check a file-path argument of a public function.
 * @throws ConfigError naming `field` unless `value` is a non-empty string.
 */
export function assertPath(value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0)
    throw new ConfigError(field, `must be a file path (a non-empty string), got ${show(value)}`);
}
