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
  /**
   * The path given by the caller when the error is that it cannot be read at all (missing, a directory where a
   * file is needed, no permission, not a regular file, a glob matching nothing); unset for errors of what a
   * readable file holds. The CLI exits 2 for these, as for bad flags.
   */
  readonly unreadablePath?: string;

  constructor(code: ErrorCode, message: string, options?: LstmgenErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
    if (options?.unreadablePath !== undefined) this.unreadablePath = options.unreadablePath;
  }
}

/** Options of the error classes: the `cause`, and {@link LstmgenError.unreadablePath}. */
export interface LstmgenErrorOptions {
  cause?: unknown;
  unreadablePath?: string;
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

/**
 * Unusable input data: missing corpus file, empty or too-short corpus, unknown symbols under `strict`, bad token ids or
 * shapes.
 */
export class DataError extends LstmgenError {
  constructor(message: string, options?: LstmgenErrorOptions) {
    super('E_DATA', message, options);
  }
}

/** A model file that is missing, truncated, corrupt, from another program, or cannot be written. */
export class ModelFileError extends LstmgenError {
  constructor(message: string, options?: LstmgenErrorOptions) {
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

type ErrorClass = new (message: string, options?: { cause?: unknown }) => LstmgenError;

/**
 * The error class of each code the native addon throws with: every addon error is an `Error` whose `code`
 * property is one of these keys (the same strings as {@link ErrorCode}; options are validated before any
 * native call, so `E_CONFIG` never comes from the addon) and whose message carries no code.
 */
const NATIVE_ERRORS: Readonly<Record<Exclude<ErrorCode, 'E_CONFIG'>, ErrorClass>> = {
  E_DATA: DataError,
  E_MODEL_FILE: ModelFileError,
  E_DEVICE: DeviceError,
  E_NUMERIC: NumericError,
  E_NATIVE: NativeError,
};

/**
 * Convert an error thrown by the native addon into the typed error of its `code`: `E_DATA` -> {@link DataError},
 * `E_MODEL_FILE` -> {@link ModelFileError}, `E_DEVICE` -> {@link DeviceError}, `E_NUMERIC` -> {@link NumericError},
 * `E_NATIVE` (a caught Rust panic or candle error) and a missing or unknown code -> {@link NativeError}. The message
 * is kept; the original error is the `cause`. An error that is already an {@link LstmgenError} is returned unchanged.
 */
export function wrapNative(err: unknown): LstmgenError {
  if (err instanceof LstmgenError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  const Cls =
    typeof code === 'string' && Object.hasOwn(NATIVE_ERRORS, code)
      ? NATIVE_ERRORS[code as keyof typeof NATIVE_ERRORS]
      : NativeError;
  return new Cls(message, { cause: err });
}

/** Why reading a file failed, for messages: "no such file", "it is a directory", else the system's message. */
export function fileErrorReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file';
  if (e.code === 'EISDIR') return 'it is a directory';
  return e.message;
}

/** Show a rejected value in a message: strings quoted, NaN and numbers as written. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === undefined || value === null)
    return String(value);
  if (typeof value === 'function') return 'a function';
  return Array.isArray(value) ? 'an array' : 'an object';
}
