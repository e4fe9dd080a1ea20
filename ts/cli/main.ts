#!/usr/bin/env node
/**
 * The `lstmgen` command (the package's bin): `train`, `generate`, `eval`, `export`, `info`, `plot`; see
 * {@link buildProgram}.
 * With `--json` stdout carries exactly one JSON object per line and nothing else; progress and warnings go
 * to stderr. Errors print `lstmgen: <message>` to stderr, with option names written as the flags that set them
 * (warnings are printed as the library words them: their names are often quantities, as in `ln(vocabSize)`);
 * exit code 1, 2 for usage errors (bad flags or option values, and paths that cannot be read: missing, a
 * directory, no permission, not a regular file), 130 for a training run stopped by Ctrl-C.
 */
import { CommanderError } from 'commander';
import { ConfigError, LstmgenError } from '../errors';
import { EXIT_INTERRUPTED } from './commands';
import { flagNamer, flagOf } from './flags';
import { watchStdout } from './print';
import { buildProgram } from './program';

/** Run the CLI on `argv` (process.argv form); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const named = flagNamer(program);
  // Replace Node's default warning printer (which adds a --trace-warnings hint) with one line on stderr.
  process.removeAllListeners('warning');
  process.on('warning', (w) => process.stderr.write(`lstmgen: warning: ${w.message}\n`));
  watchStdout();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0; // a command may set its status
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // commander printed the message
    if (err instanceof ConfigError) {
      const flag = err.field ? `${flagOf(err.field)}: ` : '';
      process.stderr.write(`lstmgen: ${flag}${named(err.reason)}\n`);
      return 2;
    }
    if (err instanceof LstmgenError) {
      process.stderr.write(`lstmgen: ${named(err.message)}\n`);
      return err.unreadablePath === undefined ? 1 : 2; // a path that cannot be read is a usage error
    }
    if (err instanceof Error && err.name === 'AbortError') {
      process.stderr.write('lstmgen: interrupted while reading the corpus; nothing was trained or saved\n');
      return EXIT_INTERRUPTED;
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
