// Typed failures of the provisioner. Until @kindling/runtime lands these mirror its classes;
// the gRPC adapter maps each `code` to a status.
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'FAILED_PRECONDITION'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'PERMISSION_DENIED'
  | 'UNAUTHENTICATED'
  | 'INTERNAL';

interface ErrorOptions {
  cause?: unknown;
}

export class DomainError extends Error {
  readonly code: ErrorCode = 'INTERNAL';
  constructor(message: string, options: ErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
  }
}

export class InvalidArgumentError extends DomainError {
  override readonly code = 'INVALID_ARGUMENT';
}
export class NotFoundError extends DomainError {
  override readonly code = 'NOT_FOUND';
}
export class FailedPreconditionError extends DomainError {
  override readonly code = 'FAILED_PRECONDITION';
}
export class UnavailableError extends DomainError {
  override readonly code = 'UNAVAILABLE';
}
export class DeadlineExceededError extends DomainError {
  override readonly code = 'DEADLINE_EXCEEDED';
}
export class CancelledError extends DomainError {
  override readonly code = 'CANCELLED';
}
export class PermissionDeniedError extends DomainError {
  override readonly code = 'PERMISSION_DENIED';
}
export class InternalError extends DomainError {
  override readonly code = 'INTERNAL';
}
