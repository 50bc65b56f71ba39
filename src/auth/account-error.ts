// Account operation failures with stable codes for the CLI, the admin socket and in-band registration.
export type AccountErrorCode = 'HOST_UNKNOWN' | 'INVALID_USERNAME' | 'INVALID_PASSWORD' | 'EXISTS' | 'NOT_FOUND' | 'NOT_SUPPORTED' | 'BACKEND';

export class AccountError extends Error {
  readonly code: AccountErrorCode;
  constructor(code: AccountErrorCode, message: string) {
    super(message);
    this.name = 'AccountError';
    this.code = code;
  }
}
