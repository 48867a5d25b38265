// Stand-in until @kindling/runtime lands; same names and constructor shape.
export interface DomainErrorOptions {
  readonly details?: Record<string, unknown>;
  readonly cause?: unknown;
}
export class DomainError extends Error {
  readonly code: string = 'UNKNOWN';
  readonly details?: Record<string, unknown>;
  constructor(message: string, options: DomainErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    if (options.details) this.details = options.details;
  }
}
export class InvalidArgumentError extends DomainError { override readonly code = 'INVALID_ARGUMENT'; }
export class NotFoundError extends DomainError { override readonly code = 'NOT_FOUND'; }
export class AlreadyExistsError extends DomainError { override readonly code = 'ALREADY_EXISTS'; }
export class FailedPreconditionError extends DomainError { override readonly code = 'FAILED_PRECONDITION'; }
export class InternalError extends DomainError { override readonly code = 'INTERNAL'; }
export class UnavailableError extends DomainError { override readonly code = 'UNAVAILABLE'; }
