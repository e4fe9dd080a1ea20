/** Running the compiled `lstmgen` CLI from tests: to completion, or as a child to signal and wait for. */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { CLI_ENTRY, ROOT } from './helpers';

/** The package's compiled CLI (its `bin`), as `npm run build:ts` leaves it. */
export const CLI = path.join(ROOT, CLI_ENTRY);

/** Flags of a tiny char model on the CPU: trains in well under a second per step. */
export const TINY_FLAGS = [
  '--embedding-dim',
  '16',
  '--hidden-size',
  '32',
  '--seq-len',
  '16',
  '--batch-size',
  '8',
  '--device',
  'cpu',
];

/** Compiles ts/ with the project's tsconfig into `outDir`, default its own (dist/). Throws on a type error. */
export function compileTs(outDir?: string): void {
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json', ...(outDir ? ['--outDir', outDir] : [])], { cwd: ROOT });
}

/** What a finished CLI run printed, its exit code, and the signal that ended it (`code` is then `null`). */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `cli` with `args` to completion from `cwd` (default the repository root), `input` on its standard input
 * (default none); a run past `timeoutMs` (default two minutes) is killed and ends with a signal.
 */
export function runCli(
  cli: string,
  args: string[],
  options: { cwd?: string; timeoutMs?: number; input?: string | Uint8Array } = {},
): CliResult {
  const { cwd = ROOT, timeoutMs = 120_000, input } = options;
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: timeoutMs, input });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `lstmgen ...args` with the package's compiled CLI, run to completion from the repository root. */
export function lstmgen(...args: string[]): CliResult {
  return runCli(CLI, args);
}

/** Every stdout line parsed as JSON (throws if a line is not JSON). */
export function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Starts `lstmgen ...args` as a child process with piped output. */
export function startLstmgen(...args: string[]): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { cwd: ROOT });
}

/** Resolves when `pattern` appears in the child's stdout or stderr; rejects if it exits first. */
export function waitFor(child: ChildProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const look = (d: Buffer) => {
      seen += d.toString();
      if (pattern.test(seen)) resolve();
    };
    child.stdout?.on('data', look);
    child.stderr?.on('data', look);
    child.on('exit', () => reject(new Error(`exited before ${pattern}: ${seen.slice(-500)}`)));
  });
}

/** The child's exit code (128 + 9 for SIGKILL, 128 + 2 for another signal) and its stdout and stderr together. */
export function exited(child: ChildProcess): Promise<{ code: number; out: string }> {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 2), out }));
  });
}
