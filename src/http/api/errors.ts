// REST API failures: an HTTP status and a stable code, answered as {status: 'error', code, message}.
import { AccountError, type AccountErrorCode } from '../../auth/account-error.ts';
import { StanzaError, StorageError } from '../../core/errors.ts';
import { HttpError } from '../respond.ts';

export const API_ERROR_CODES = {
  BAD_REQUEST: 400,
  BAD_JSON: 400,
  BAD_ARGUMENT: 400,
  INVALID_USERNAME: 400,
  INVALID_PASSWORD: 400,
  AUTH_REQUIRED: 401,
  INVALID_CREDENTIALS: 401,
  TOKEN_EXPIRED: 401,
  FORBIDDEN: 403,
  TLS_REQUIRED: 403,
  UNKNOWN_COMMAND: 404,
  HOST_UNKNOWN: 404,
  USER_NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  ITEM_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  USER_EXISTS: 409,
  BODY_TOO_LARGE: 413,
  TOO_MANY_FAILURES: 429,
  INTERNAL: 500,
  BACKEND: 500,
  NOT_SUPPORTED: 501,
} as const;

export type ApiErrorCode = keyof typeof API_ERROR_CODES;

export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly status: number;
  /** The request argument at fault, for BAD_ARGUMENT and the like. */
  readonly argument: string | undefined;
  readonly headers: Record<string, string>;

  constructor(code: ApiErrorCode, message: string, opts: { argument?: string; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = API_ERROR_CODES[code];
    this.argument = opts.argument;
    this.headers = opts.headers ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { status: 'error', code: this.code, message: this.message, ...(this.argument !== undefined ? { argument: this.argument } : {}) };
  }
}

export const badArgument = (argument: string, problem: string): ApiError =>
  new ApiError('BAD_ARGUMENT', `argument "${argument}": ${problem}`, { argument });

const ACCOUNT_CODES: Record<AccountErrorCode, ApiErrorCode> = {
  HOST_UNKNOWN: 'HOST_UNKNOWN',
  INVALID_USERNAME: 'INVALID_USERNAME',
  INVALID_PASSWORD: 'INVALID_PASSWORD',
  EXISTS: 'USER_EXISTS',
  NOT_FOUND: 'USER_NOT_FOUND',
  NOT_SUPPORTED: 'NOT_SUPPORTED',
  BACKEND: 'BACKEND',
};

/** The API error for anything a command threw; undefined for unexpected failures (logged, answered 500). */
export function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof AccountError) return new ApiError(ACCOUNT_CODES[err.code], err.message);
  if (err instanceof HttpError && err.status === 413) return new ApiError('BODY_TOO_LARGE', err.message);
  if (err instanceof StorageError) {
    if (err.code === 'NOT_FOUND') return new ApiError('USER_NOT_FOUND', err.message);
    if (err.code === 'CONFLICT') return new ApiError('USER_EXISTS', err.message);
    return undefined;
  }
  if (err instanceof StanzaError && (err.condition === 'jid-malformed' || err.condition === 'bad-request')) {
    return new ApiError('BAD_REQUEST', err.text ?? err.condition);
  }
  return undefined;
}
