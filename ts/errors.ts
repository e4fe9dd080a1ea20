/**
 * Typed errors. Every error lstmgen throws on purpose is an {@link LstmgenError}; callers can branch on
 * `instanceof` or on the stable `code` string. The CLI prints `lstmgen: <message>` for these (no stack).
 */

/** Stable machine-readable codes, one per error class. */
export type ErrorCode = 'E_CONFIG' | 'E_DATA' | 'E_MODEL_FILE' | 'E_DEVICE' | 'E_NUMERIC' | 'E_NATIVE';

/** Base class of all lstmgen errors. `code` identifies the class; `cause` keeps the original error if any. */
export class LstmgenError extends Error {
  /** Stable code of the error class, e.g. `'E_CONFIG'`. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * An invalid option value (train config, generate options, CLI flag). `field` is the dotted path of the
 * offending option (e.g. `"hiddenSize"`, `"stop.0"`); the message starts with it and says why, e.g.
 * `"hiddenSize: must be a positive integer, got -3"`.
 */
export class ConfigError extends LstmgenError {
  /** Dotted path of the invalid option, `""` for the object itself. */
  readonly field: string;
  /** Why the value is invalid, without the field name (e.g. `"must be a positive integer, got -3"`). */
  readonly reason: string;

  constructor(field: string, reason: string) {
    super('E_CONFIG', field ? `${field}: ${reason}` : reason);
    this.field = field;
    this.reason = reason;
  }
}

/** Unusable input data: missing corpus file, empty or too-short corpus, unknown symbols under `strict`, bad token ids or shapes. */
export class DataError extends LstmgenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_DATA', message, options);
  }
}

/** A model file that is missing, truncated, corrupt, from another program, or cannot be written. */
export class ModelFileError extends LstmgenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_MODEL_FILE', message, options);
  }
}

/** The native addon could not be loaded, or the requested device (e.g. `cuda`) is unavailable. */
export class DeviceError extends LstmgenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_DEVICE', message, options);
  }
}

/**
 * A non-finite loss or gradient during training (try a lower `lr` or enable `clipNorm`), or non-finite weights
 * that lstmgen refuses to write. `step` is the 1-based global training step when one is known.
 */
export class NumericError extends LstmgenError {
  /** 1-based global step at which training met the non-finite value, when known. */
  readonly step?: number;

  constructor(message: string, options?: { cause?: unknown; step?: number }) {
    super('E_NUMERIC', message, options);
    if (options?.step !== undefined) this.step = options.step;
  }
}

/** An internal failure inside the native engine (a caught Rust panic or candle error): a bug to report. */
export class NativeError extends LstmgenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_NATIVE', message, options);
  }
}

const NATIVE_PREFIXES: ReadonlyArray<[string, new (message: string, options?: { cause?: unknown }) => LstmgenError]> = [
  ['E_INPUT:', DataError],
  ['E_MODEL_FILE:', ModelFileError],
  ['E_DEVICE:', DeviceError],
  ['E_NUMERIC:', NumericError],
  ['E_INTERNAL:', NativeError],
];

/**
 * Convert an error thrown by the native addon into a typed error. The addon's messages start with a code
 * (see NATIVE_CONTRACT): `E_INPUT:` -> {@link DataError}, `E_MODEL_FILE:` -> {@link ModelFileError},
 * `E_DEVICE:` -> {@link DeviceError}, `E_NUMERIC:` -> {@link NumericError}, `E_INTERNAL:` or no known
 * prefix -> {@link NativeError}. The prefix is stripped from the message; the original is kept as `cause`.
 * An error that is already an {@link LstmgenError} is returned unchanged.
 */
export function wrapNative(err: unknown): LstmgenError {
  if (err instanceof LstmgenError) return err;
  const message = err instanceof Error ? err.message : String(err);
  for (const [prefix, Cls] of NATIVE_PREFIXES) {
    if (message.startsWith(prefix)) return new Cls(message.slice(prefix.length).trim(), { cause: err });
  }
  return new NativeError(message, { cause: err });
}

/** Why reading a file failed, for messages: "no such file", "it is a directory", else the system's message. */
export function fileErrorReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file';
  if (e.code === 'EISDIR') return 'it is a directory';
  return e.message;
}
