/**
 * The OpenAI completions API as the server speaks it: the request body's schema (zod), its check against the
 * server's limits, and the response and stream-chunk shapes (https://platform.openai.com/docs/api-reference/completions).
 */
import { z } from 'zod';
import { GenerateOptionsSchema, type ServeOptions } from '../config';
import { show } from '../errors';

/** A request the server refuses: HTTP `status`, and the request field at fault (`param`) when there is one. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly type = status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error',
  ) {
    super(message);
  }

  /** The OpenAI error body: `{ error: { message, type, param, code } }`. */
  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: null } };
  }
}

const int = (min: number, max: number) =>
  z.custom<number>(
    (v) => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max,
    `must be an integer in [${min}, ${max}]`,
  );
const range = (min: number, max: number, openMin = false) =>
  z.custom<number>(
    (v) => typeof v === 'number' && Number.isFinite(v) && (openMin ? v > min : v >= min) && v <= max,
    `must be a number in ${openMin ? '(' : '['}${min}, ${max}]`,
  );
/** The generate options' own fields: a request field that is one of them is checked by the same rule. */
const generate = GenerateOptionsSchema.shape;
const strings = (what: string) =>
  z
    .union([z.string(), z.array(z.string())], { error: `must be ${what}` })
    .nullable()
    .optional();

/**
 * `POST /v1/completions` bodies: OpenAI's fields (those the API defines but lstmgen cannot honour, such as
 * `logprobs` or `echo`, only at their neutral value) and lstmgen's own `top_k`, `repetition_penalty`,
 * `no_repeat_ngram`, `min_tokens` and `banned_tokens`. `max_tokens`, `temperature` (also <= 2, OpenAI's range),
 * `top_p` and `top_k` are the generate options' fields, with their rules and messages. Unknown fields are
 * refused (400 naming the field), `__proto__` among them.
 */
export const CompletionRequestSchema = z.strictObject({
  model: z.string({ error: 'must be a string' }).optional(),
  prompt: z
    .union([z.string(), z.array(z.string()).min(1)], { error: 'must be a string or a non-empty array of strings' })
    .default(''),
  max_tokens: generate.maxTokens.unwrap().nullable().default(16),
  temperature: generate.temperature
    .unwrap()
    .refine((v) => v <= 2, 'must be <= 2')
    .nullable()
    .default(1),
  top_p: generate.topP.unwrap().nullable().default(1),
  n: int(1, 2 ** 31)
    .nullable()
    .default(1),
  stop: strings('a string or an array of strings'),
  seed: int(0, 0xffffffff).nullable().optional(),
  stream: z.boolean({ error: 'must be true or false' }).nullable().default(false),
  stream_options: z
    .strictObject({ include_usage: z.boolean({ error: 'must be true or false' }).optional() })
    .nullable()
    .optional(),
  frequency_penalty: range(-2, 2).nullable().default(0),
  presence_penalty: z.literal(0, { error: 'is not supported (only 0)' }).nullable().optional(),
  logprobs: z.literal(0, { error: 'is not supported (only null or 0)' }).nullable().optional(),
  echo: z.literal(false, { error: 'is not supported (only false)' }).nullable().optional(),
  best_of: z.literal(1, { error: 'is not supported (only 1)' }).nullable().optional(),
  suffix: z.null({ error: 'is not supported (only null)' }).optional(),
  logit_bias: z.strictObject({}, { error: 'is not supported (only {})' }).nullable().optional(),
  user: z.string({ error: 'must be a string' }).optional(),
  top_k: generate.topK.unwrap().nullable().optional(),
  repetition_penalty: range(0, 100, true).nullable().optional(),
  no_repeat_ngram: int(0, 65536).nullable().optional(),
  min_tokens: int(0, 2 ** 31)
    .nullable()
    .optional(),
  banned_tokens: z.array(z.string().min(1), { error: 'must be an array of non-empty strings' }).nullable().optional(),
});

/** A parsed completions request. */
export type CompletionRequest = z.output<typeof CompletionRequestSchema>;

/**
 * Parse a request body and check it against the server's limits.
 * @throws RequestError (400) naming the first bad field.
 */
export function parseCompletionRequest(body: unknown, limits: ServeOptions): CompletionRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new RequestError(400, `the request body must be a JSON object, got ${show(body)}`);
  const r = CompletionRequestSchema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => [...issue.path.map(String), k].join('.'));
      throw new RequestError(400, `unknown field ${keys.join(', ')}`, keys[0]);
    }
    const param = issue.path.map(String).join('.');
    let value: unknown = body;
    for (const key of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[key];
    throw new RequestError(400, `${param}: ${issue.message}, got ${show(value)}`, param);
  }
  const req = r.data;
  const maxTokens = req.max_tokens ?? 16;
  if (maxTokens > limits.maxTokens)
    throw new RequestError(
      400,
      `max_tokens: must be <= ${limits.maxTokens} on this server, got ${maxTokens}`,
      'max_tokens',
    );
  const prompts = Array.isArray(req.prompt) ? req.prompt.length : 1;
  const sequences = prompts * (req.n ?? 1);
  if (sequences > limits.maxConcurrent)
    throw new RequestError(
      400,
      `n: prompts times n must be <= ${limits.maxConcurrent} (the server's concurrent sequences), got ${sequences}`,
      'n',
    );
  const stops = req.stop === null || req.stop === undefined ? [] : Array.isArray(req.stop) ? req.stop : [req.stop];
  if (stops.length > 4) throw new RequestError(400, `stop: must be at most 4 strings, got ${stops.length}`, 'stop');
  if (stops.some((s) => s.length === 0))
    throw new RequestError(400, 'stop: must not hold the empty string "" (a stop string needs a character)', 'stop');
  return req;
}

/** A completion choice, as in a response (`finish_reason` set) or a stream chunk (null until its last chunk). */
export interface Choice {
  text: string;
  index: number;
  logprobs: null;
  finish_reason: 'stop' | 'length' | null;
}

/** Token counts of a response. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** A response of `POST /v1/completions`, or (with `choices` of one piece each) one chunk of its stream. */
export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: Choice[];
  usage?: Usage | null;
}
