/**
 * Flags and their config fields. A flag that sets an option takes its help text and default from the option's
 * schema field (see {@link fieldFlag}); flags named otherwise than their field are listed in {@link FLAG_NAMES}
 * and converted by {@link runFlagsToConfig}.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import {
  EarlyStoppingSchema,
  EvaluateOptionsSchema,
  ExportOptionsSchema,
  GenerateOptionsSchema,
  LoadOptionsSchema,
  LrScheduleSchema,
  type TrainConfigInput,
  TrainConfigSchema,
} from '../config';

/**
 * A number as flags take it: decimal digits with an optional sign, fraction and exponent (`16`, `-4`, `0.8`, `.5`,
 * `1e-3`, `1E6`). JavaScript's other number forms (`0x10`, `0o17`, `0b11`, `1_000`) are not, nor is an empty value;
 * `NaN` and `Infinity` are, so that the option's validation names the field and its rule.
 */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$|^[+-]?Infinity$|^NaN$/;

/**
 * Parse a numeric flag value (see {@link DECIMAL}; surrounding spaces are ignored). Whether it must be an integer,
 * and its range, are the option's validation.
 * @throws InvalidArgumentError (commander: the flag is named, exit 2) for anything but a decimal number.
 */
export function number(value: string): number {
  const text = value.trim();
  if (!DECIMAL.test(text)) throw new InvalidArgumentError('not a decimal number (such as 16, 0.8 or 1e-3).');
  return Number(text);
}

/** Collect the values of a flag given several times (`--stop`). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `hiddenSize` -> `hidden-size`. */
const kebab = (field: string) => field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** How {@link fieldFlag} makes a flag; every key is optional. */
export interface FlagSpec {
  /** The value's placeholder, e.g. `<n>`; none for a boolean flag. */
  arg?: string;
  /** Parses the value (e.g. {@link number}); default: the string as given. */
  parse?: (value: string, previous: never) => unknown;
  /** Flag name without `--` when it is not the field's kebab-case (see {@link FLAG_NAMES}). */
  name?: string;
  /** A default that the schema does not hold (it is applied where the option is read), for the help text. */
  shownDefault?: unknown;
}

/**
 * The flag of field `field` of `schema`: `--<kebab-case field> <arg>`, with the field's `.describe()` text as help
 * and `(default X)` from its `.default()`. The flag itself has no default value: an unset flag leaves the option
 * unset, so the schema applies its default (and a resumed run keeps the checkpoint's values).
 */
export function fieldFlag(schema: z.ZodObject, field: string, spec: FlagSpec = {}): Option {
  const def = schema.shape[field];
  if (!def?.description) throw new Error(`the schema field ${field} has no description for its flag`);
  const value = def instanceof z.ZodDefault ? def.def.defaultValue : spec.shownDefault;
  const shown =
    value === undefined || value === '' || value === false
      ? ''
      : ` (default ${typeof value === 'object' ? JSON.stringify(value) : String(value)})`;
  const option = new Option(`--${spec.name ?? kebab(field)}${spec.arg ? ` ${spec.arg}` : ''}`, def.description + shown);
  return spec.parse ? option.argParser(spec.parse as (value: string, previous: unknown) => unknown) : option;
}

/** Flags whose name is not the kebab-case of their config field (config field -> flag name without `--`). */
export const FLAG_NAMES: Readonly<Record<string, string>> = {
  keepCheckpoints: 'keep',
  resumeFrom: 'resume',
  logFile: 'log',
  earlyStopping: 'early-stopping',
  extensions: 'ext',
  // commander reads any `--no-...` flag as the negation of a boolean
  noRepeatNgram: 'block-ngrams',
};

/**
 * The flag of a config field for messages: `keepCheckpoints` -> `--keep`, `lrSchedule.minLr` -> `--lr-schedule
 * (minLr)`.
 * Array indices are dropped (`stop.0` -> `--stop`): a repeatable flag is named as written.
 */
export function flagOf(field: string): string {
  const [top, ...parts] = field.split('.');
  const rest = parts.filter((p) => !/^\d+$/.test(p)).join('.');
  const flag = `--${FLAG_NAMES[top] ?? kebab(top)}`;
  return rest ? `${flag} (${rest})` : flag;
}

/** The option fields that messages of the library may name. */
const OPTION_FIELDS: ReadonlySet<string> = new Set(
  [
    TrainConfigSchema,
    GenerateOptionsSchema,
    EvaluateOptionsSchema,
    LoadOptionsSchema,
    EarlyStoppingSchema,
    ExportOptionsSchema,
  ].flatMap((schema) => Object.keys(schema.shape)),
);

/**
 * A function that rewrites the option names in a library message as the flags of `program`'s commands:
 * camelCase fields (`needs checkpointDir` -> `needs --checkpoint-dir`, `keepCheckpoints` -> `--keep`) and fields
 * of flags that take no value (`without strict` -> `without --strict`). Plain words that are also fields
 * (`corpus`, `lr`) stay as they are, as does anything in double quotes (paths and values).
 */
export function flagNamer(program: Command): (message: string) => string {
  const switches = new Map<string, boolean>(); // flag -> whether it takes no value
  for (const command of program.commands) {
    for (const o of command.options) if (o.long) switches.set(o.long, !o.required && !o.optional);
  }
  const rename = (word: string) => {
    const flag = flagOf(word);
    const isSwitch = switches.get(flag);
    if (!OPTION_FIELDS.has(word) || isSwitch === undefined) return word;
    return isSwitch || /[A-Z]/.test(word) ? flag : word;
  };
  return (message) =>
    message
      .split(/("(?:[^"\\]|\\.)*")/)
      .map((part, i) => (i % 2 === 1 ? part : part.replace(/(?<![-\w])[a-z][A-Za-z0-9]*\b/g, rename)))
      .join('');
}

/** The options of each learning-rate schedule, from {@link LrScheduleSchema}: name -> option -> its schema. */
const SCHEDULES: ReadonlyMap<string, Readonly<Record<string, z.ZodType>>> = new Map(
  LrScheduleSchema.options.map((o) => {
    const { type, ...options } = o.shape as Record<string, z.ZodType> & { type: z.ZodLiteral<string> };
    return [type.value, options];
  }),
);

/**
 * The `--lr-schedule` syntax, for its help line and its errors: each schedule with its options (required ones
 * bare, the others in brackets; `N` an integer, `X` a number), then the JSON form.
 */
export const LR_SCHEDULE_SYNTAX = [
  ...[...SCHEDULES].map(([name, options]) => {
    const keys = Object.keys(options);
    const value = (k: string) => `${k}=${options[k].safeParse(0.5).success ? 'X' : 'N'}`;
    const required = keys.filter((k) => !options[k].safeParse(undefined).success).map(value);
    const optional = keys.filter((k) => options[k].safeParse(undefined).success).map(value);
    if (required.length === 0) return optional.length ? `${name}[:${optional.join(',')}]` : name;
    return `${name}:${required.join(',')}${optional.length ? `[,${optional.join(',')}]` : ''}`;
  }),
  'a JSON object ({"type":"cosine","warmupSteps":100})',
].join(' | ');

/**
 * Parse `--lr-schedule`: a type name (`constant`, `step`, `cosine`, `plateau`), optionally with options as
 * `type:key=value,key=value` (e.g. `cosine:warmupSteps=100,minLr=0.0001`), or a JSON object. Values are
 * validated by the train config (errors name `--lr-schedule`).
 * @throws InvalidArgumentError for an unknown schedule or option, or text that is not `key=value` pairs: the
 *   message gives {@link LR_SCHEDULE_SYNTAX}.
 */
export function parseLrSchedule(value: string): TrainConfigInput['lrSchedule'] {
  const text = value.trim();
  const syntax = `give one of: ${LR_SCHEDULE_SYNTAX}.`;
  if (text.startsWith('{')) {
    try {
      return JSON.parse(text) as TrainConfigInput['lrSchedule'];
    } catch {
      throw new InvalidArgumentError(`not valid JSON; ${syntax}`);
    }
  }
  const [type, rest = ''] = text.split(':', 2);
  const known = SCHEDULES.get(type);
  if (!known) throw new InvalidArgumentError(`unknown schedule ${JSON.stringify(type)}; ${syntax}`);
  const options: Record<string, unknown> = { type };
  for (const pair of rest.split(',').filter(Boolean)) {
    const [k, v] = pair.split('=', 2);
    if (!k || v === undefined) throw new InvalidArgumentError(`expected key=value, got "${pair}"; ${syntax}`);
    if (!(k.trim() in known)) {
      throw new InvalidArgumentError(`the ${type} schedule has no option ${JSON.stringify(k.trim())}; ${syntax}`);
    }
    // a value that is not a decimal number stays a string: the schedule's validation names it
    options[k.trim()] = DECIMAL.test(v.trim()) ? Number(v.trim()) : v.trim();
  }
  return options as TrainConfigInput['lrSchedule'];
}

/**
 * The train config fields of the run flags: `--keep`, `--resume`, `--log`, `--early-stopping <patience>` become
 * `keepCheckpoints`, `resumeFrom`, `logFile`, `earlyStopping: { patience }`; other flags pass through.
 */
export function runFlagsToConfig(flags: Record<string, unknown>): Record<string, unknown> {
  const { keep, resume, log, earlyStopping, ...rest } = flags;
  return {
    ...rest,
    ...(keep !== undefined ? { keepCheckpoints: keep } : {}),
    ...(resume !== undefined ? { resumeFrom: resume } : {}),
    ...(log !== undefined ? { logFile: log } : {}),
    ...(earlyStopping !== undefined ? { earlyStopping: { patience: earlyStopping } } : {}),
  };
}

/**
 * Parse `--tokenizer`: `char`, `word` or `bpe` as named; anything else is the path of a Hugging Face
 * `tokenizer.json` (`{ file }`), checked when training starts.
 */
export function tokenizerFlag(value: string): TrainConfigInput['tokenizer'] {
  return value === 'char' || value === 'word' || value === 'bpe' ? value : { file: value };
}
