/**
 * `lstmgen serve`: an HTTP server (fastify) for one model with the OpenAI completions API (`POST /v1/completions`,
 * streamed as server-sent events when asked), `GET /v1/models`, `GET /v1/model`, `GET /health` and a web page at
 * `/`. Concurrent requests are sampled together ({@link Scheduler}); no request can crash it.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import type { ServerResponse } from 'node:http';
import * as path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import {
  type GenerateOptions,
  parseGenerateOptions,
  parseOptions,
  type ServeOptions,
  type ServeOptionsInput,
  ServeOptionsSchema,
} from '../config';
import { ConfigError, DataError, LstmgenError } from '../errors';
import { type LstmModel, loadModel } from '../model';
import { TextAssembler } from '../sampling/assemble';
import { sampleOptions, startId } from '../sampling/plan';
import {
  type Choice,
  type Completion,
  type CompletionRequest,
  parseCompletionRequest,
  RequestError,
  type Usage,
} from './completions';
import { Scheduler } from './scheduler';

/** A running server. */
export interface Server {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** The model served. */
  model: LstmModel;
  /** The fastify instance (for tests and embedding). */
  app: FastifyInstance;
  /** The batching scheduler (its `active`, `queued` and `stats`). */
  scheduler: Scheduler;
  /** Stop listening, end the requests in flight, release the model. */
  close(): Promise<void>;
}

/** The web page, shipped in the package next to `dist/` (`web/index.html`). */
const PAGE_FILE = path.join(__dirname, '..', '..', 'web', 'index.html');

/** Request fields by the generate option they become (for error messages that name the request's field). */
const PARAMS: Record<string, string> = {
  maxTokens: 'max_tokens',
  topP: 'top_p',
  topK: 'top_k',
  frequencyPenalty: 'frequency_penalty',
  repetitionPenalty: 'repetition_penalty',
  noRepeatNgram: 'no_repeat_ngram',
  minTokens: 'min_tokens',
  bannedTokens: 'banned_tokens',
};

/** A ConfigError of the generate options as a 400 naming the request's field. */
function asRequestError(err: ConfigError): RequestError {
  const [head, ...rest] = err.field.split('.');
  const param = [PARAMS[head] ?? head, ...rest].join('.');
  return new RequestError(400, param ? `${param}: ${err.reason}` : err.reason, param || null);
}

/** The generate options of a request for one prompt. @throws RequestError 400 naming the field. */
function generateOptions(req: CompletionRequest, prompt: string): GenerateOptions {
  try {
    return parseGenerateOptions({
      prompt,
      maxTokens: req.max_tokens ?? 16,
      temperature: req.temperature ?? 1,
      topP: req.top_p ?? 1,
      ...(req.top_k ? { topK: req.top_k } : {}),
      ...(req.seed === null || req.seed === undefined ? {} : { seed: req.seed }),
      stop: req.stop === null || req.stop === undefined ? undefined : ([] as string[]).concat(req.stop),
      frequencyPenalty: req.frequency_penalty ?? 0,
      repetitionPenalty: req.repetition_penalty ?? 1,
      noRepeatNgram: req.no_repeat_ngram ?? 0,
      minTokens: req.min_tokens ?? 0,
      bannedTokens: req.banned_tokens ?? undefined,
    });
  } catch (err) {
    if (err instanceof ConfigError) throw asRequestError(err);
    throw err;
  }
}

/** Any error as the request error to answer with: 400 for bad input, 500 (message kept) otherwise. */
function toRequestError(err: unknown): RequestError {
  if (err instanceof RequestError) return err;
  if (err instanceof ConfigError) return asRequestError(err);
  if (err instanceof DataError) return new RequestError(400, err.message);
  if (err instanceof LstmgenError) return new RequestError(500, `${err.code}: ${err.message}`);
  const e = err as { statusCode?: unknown; message?: unknown; code?: unknown };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const msg =
      e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
        ? `the request body is not valid JSON: ${String(e.message)}`
        : String(e.message);
    return new RequestError(e.statusCode, msg);
  }
  return new RequestError(500, `internal error: ${String(e?.message ?? err)}`);
}

/** A ConfigError naming `port` or `host` for the listen errors a user fixes with those options; else `err`. */
function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = `${host}:${port}`;
  switch (code) {
    case 'EADDRINUSE':
      return new ConfigError('port', `${where} is already in use: choose another port or stop what listens there`);
    case 'EACCES':
      return new ConfigError('port', `${where} may not be listened on by this user: choose a port above 1023`);
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new ConfigError(
        'host',
        `${host} is not an address of this machine: use 127.0.0.1, 0.0.0.0 or one of its own`,
      );
    default:
      return err;
  }
}

/**
 * Start a server for `options.model` and resolve once it listens.
 * @throws ConfigError naming the option for invalid options; ModelFileError / DeviceError when the model cannot be
 *   loaded; ConfigError on `port` when the port is taken (EADDRINUSE) or not allowed (EACCES), on `host` when the
 *   address is not this machine's (EADDRNOTAVAIL) or not found (ENOTFOUND); other listen errors as they come.
 */
export async function serve(input: ServeOptionsInput): Promise<Server> {
  const o = parseOptions(ServeOptionsSchema, input, 'the serve options');
  const model = await loadModel(o.model, { device: o.device, precision: o.precision });
  const page = fs.readFileSync(PAGE_FILE, 'utf8');
  const scheduler = new Scheduler(model.native.sessions(), o);
  const modelId = path.basename(o.model).replace(/\.[^.]*$/, '') || 'lstmgen';
  const started = Math.floor(Date.now() / 1000);
  // A body with a "__proto__" or "constructor" key is valid JSON: fastify's parser would call it malformed. JSON.parse
  // makes such a key an own property (it never sets a prototype) and the strict request schema refuses it as an
  // unknown field (400 naming it), so the body is parsed as it is.
  const app = Fastify({
    bodyLimit: o.bodyLimit,
    logger: false,
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
  });

  app.setErrorHandler((err, _request, reply) => {
    const e = toRequestError(err);
    void reply.status(e.status).send(e.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    const e = new RequestError(404, `no route ${request.method} ${request.url}`);
    void reply.status(404).send(e.toJSON());
  });

  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get('/health', () => ({
    status: 'ok',
    active: scheduler.active,
    queued: scheduler.queued,
    rows: scheduler.rows,
    ...scheduler.stats,
  }));
  app.get('/v1/models', () => ({
    object: 'list',
    data: [{ id: modelId, object: 'model', created: started, owned_by: 'lstmgen' }],
  }));
  app.get('/v1/model', () => {
    const s = model.summary();
    return {
      id: modelId,
      object: 'model',
      tokenizer: s.tokenizer,
      vocabSize: s.vocabSize,
      parameters: s.parameters,
      config: {
        embeddingDim: s.embeddingDim,
        hiddenSize: s.hiddenSize,
        numLayers: s.numLayers,
        dropout: s.dropout,
        seqLen: model.config.seqLen,
      },
      device: s.device,
      precision: s.precision,
      steps: s.steps,
      limits: {
        maxConcurrent: o.maxConcurrent,
        maxQueued: o.maxQueued,
        maxTokens: o.maxTokens,
        maxPromptTokens: o.maxPromptTokens,
        bodyLimit: o.bodyLimit,
        requestTimeout: o.requestTimeout,
      },
    };
  });
  app.post('/v1/completions', (request, reply) => complete(request.body, reply));

  /** Answers one completions request (JSON, or an SSE stream with `stream: true`). */
  async function complete(body: unknown, reply: FastifyReply): Promise<unknown> {
    const req = parseCompletionRequest(body, o);
    const prompts = Array.isArray(req.prompt) ? req.prompt : [req.prompt];
    const n = req.n ?? 1;
    const jobs = prompts.map((p) => prepare(req, p));
    const id = `cmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (choices: Choice[], usage?: Usage): Completion => ({
      id,
      object: 'text_completion',
      created,
      model: modelId,
      choices,
      ...(usage ? { usage } : {}),
    });
    const texts = Array.from({ length: prompts.length * n }, () => '');
    const reasons: Array<Choice['finish_reason']> = texts.map(() => null);
    let completionTokens = 0;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, o.requestTimeout);
    const raw: ServerResponse = reply.raw;
    raw.on('close', () => {
      if (!raw.writableFinished) controller.abort();
    });
    const stream = req.stream === true;
    const send = (c: Completion) => {
      if (!raw.destroyed) raw.write(`data: ${JSON.stringify(c)}\n\n`);
    };
    if (stream) {
      reply.hijack();
      raw.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      raw.on('drain', () => scheduler.wake());
    }
    try {
      await Promise.all(
        jobs.map((job, p) =>
          scheduler.run({
            prompt: job.prompt,
            native: job.native,
            n,
            signal: controller.signal,
            paused: stream ? () => raw.writableNeedDrain : undefined,
            onTokens: (seq, ids, ended) => {
              const index = p * n + seq;
              const assembler = job.assemblers[seq];
              completionTokens += ids.length;
              const piece = assembler.push(ids, ended);
              texts[index] += piece;
              const finished = ended || assembler.stopped;
              if (finished) reasons[index] = assembler.stopped || ids.length === 0 ? 'stop' : 'length';
              if (stream && (piece || finished))
                send(chunk([{ text: piece, index, logprobs: null, finish_reason: reasons[index] }]));
              return finished;
            },
          }),
        ),
      );
    } catch (err) {
      clearTimeout(timer);
      controller.abort();
      const e = toRequestError(err);
      if (!stream) throw e;
      send(e.toJSON() as unknown as Completion);
      raw.end('data: [DONE]\n\n');
      return reply;
    }
    clearTimeout(timer);
    if (controller.signal.aborted && !timedOut) {
      // the client went away: nothing to answer
      if (stream) raw.end();
      return reply;
    }
    const promptTokens = jobs.reduce((sum, j) => sum + j.prompt.length, 0);
    const usage = {
      prompt_tokens: promptTokens * n,
      completion_tokens: completionTokens,
      total_tokens: promptTokens * n + completionTokens,
    };
    if (stream) {
      // sequences cut by the time limit end with "length"
      reasons.forEach((r, index) => {
        if (r === null) send(chunk([{ text: '', index, logprobs: null, finish_reason: 'length' }]));
      });
      if (req.stream_options?.include_usage) send(chunk([], usage));
      raw.end('data: [DONE]\n\n');
      return reply;
    }
    return chunk(
      texts.map((text, index) => ({ text, index, logprobs: null, finish_reason: reasons[index] ?? 'length' })),
      usage,
    );
  }

  /** A prompt's ids (an empty prompt: the line break), engine options and one text assembler per sequence. */
  function prepare(req: CompletionRequest, prompt: string) {
    const g = generateOptions(req, prompt);
    const tk = model.tokenizer;
    if (prompt.length > o.maxPromptTokens * 64)
      throw new RequestError(400, `prompt: must be at most ${o.maxPromptTokens} tokens on this server`, 'prompt');
    let ids = tk.encode(prompt, { onWarning: () => {} });
    if (ids.length === 0) ids = Uint32Array.of(startId(tk));
    if (ids.length > o.maxPromptTokens)
      throw new RequestError(
        400,
        `prompt: must be at most ${o.maxPromptTokens} tokens on this server, got ${ids.length}`,
        'prompt',
      );
    const { native, stopTexts } = sampleOptions(tk, { ...g, numSamples: 1 });
    const assemblers = Array.from({ length: req.n ?? 1 }, () => new TextAssembler(tk, ids, stopTexts));
    return { prompt: ids, native, assemblers };
  }

  try {
    await app.listen({ host: o.host, port: o.port });
  } catch (err) {
    model.dispose();
    throw listenError(err, o.host, o.port);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `http://${host}:${port}`,
    model,
    app,
    scheduler,
    async close() {
      await app.close();
      model.dispose();
    },
  };
}

export type { ServeOptions };
