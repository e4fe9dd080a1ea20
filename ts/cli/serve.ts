/** `lstmgen serve`: the flags of the serve options and the command that runs the server until Ctrl-C. */
import type { Command } from 'commander';
import { ServeOptionsSchema } from '../config';
import { serve } from '../serve/server';
import { type FlagSpec, fieldFlag, number } from './flags';
import { say } from './print';

/** The serve options that are flags of `lstmgen serve` (`--model` is required). */
const SERVE_FLAGS: Array<[field: string, spec: FlagSpec]> = [
  ['host', { arg: '<host>' }],
  ['port', { arg: '<port>', parse: number }],
  ['maxConcurrent', { arg: '<n>', parse: number }],
  ['maxQueued', { arg: '<n>', parse: number }],
  ['maxTokens', { arg: '<n>', parse: number }],
  ['maxPromptTokens', { arg: '<n>', parse: number }],
  ['bodyLimit', { arg: '<bytes>', parse: number }],
  ['requestTimeout', { arg: '<ms>', parse: number }],
  ['device', { arg: '<device>' }],
  ['precision', { arg: '<p>' }],
];

/** Adds the `serve` command to `program`. */
export function addServeCommand(program: Command): void {
  const cmd = program
    .command('serve')
    .description('serve a model over HTTP: OpenAI completions API, dynamic batching, a web page at /');
  cmd.addOption(fieldFlag(ServeOptionsSchema, 'model', { arg: '<file>' }).makeOptionMandatory());
  for (const [field, spec] of SERVE_FLAGS) cmd.addOption(fieldFlag(ServeOptionsSchema, field, spec));
  cmd.action(serveCommand);
}

/** Runs the server; prints its URL; closes it on SIGINT or SIGTERM. */
async function serveCommand(flags: Record<string, unknown>): Promise<void> {
  const server = await serve(flags as Parameters<typeof serve>[0]);
  say(`lstmgen: serving ${String(flags.model)} at ${server.url} (POST /v1/completions, web page at /)`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      void server.close().then(resolve, resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
