#!/usr/bin/env node
/**
 * The `lstmgen` command (the package's bin): `train`, `generate`, `eval`, `info`, `plot`; see {@link buildProgram}.
 * With `--json` stdout carries exactly one JSON object per line and nothing else; progress and warnings go
 * to stderr. Errors print `lstmgen: <message>` to stderr; exit code 1, or 2 for usage errors (bad flags or
 * option values).
 */
import { CommanderError } from 'commander';
import { ConfigError, LstmgenError } from '../errors';
import { flagOf } from './flags';
import { buildProgram } from './program';

/** Run the CLI on `argv` (process.argv form); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  // Replace Node's default warning printer (which adds a --trace-warnings hint) with one line on stderr.
  process.removeAllListeners('warning');
  process.on('warning', (w) => process.stderr.write(`lstmgen: warning: ${w.message}\n`));
  // Output piped into a reader that stops early (`| head`): end quietly, as Unix tools do.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // commander printed the message
    if (err instanceof ConfigError) {
      const flag = err.field ? `${flagOf(err.field)}: ` : '';
      process.stderr.write(`lstmgen: ${flag}${err.reason}\n`);
      return 2;
    }
    if (err instanceof LstmgenError) {
      process.stderr.write(`lstmgen: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`lstmgen: internal error: ${err instanceof Error ? err.stack : String(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
