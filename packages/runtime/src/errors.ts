/**
 * Typed domain errors. Domain code throws these; the gRPC layer maps them to status codes in one
 * place (grpc/status.ts), so a client never sees UNKNOWN for a failure we understood.
 */

/** gRPC status code names that domain errors may carry. */
export type ErrorCode =
  | 'CANCELLED'
  | 'INVALID_ARGUMENT'
  | 'DEADLINE_EXCEEDED'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'FAILED_PRECONDITION'
  | 'ABORTED'
  | 'UNIMPLEMENTED'
  | 'INTERNAL'
  | 'UNAVAILABLE';

/** A protobuf message packed for google.rpc.Status details (an Any). */
export interface ErrorDetail {
  /** Full message type name, e.g. "kindling.planner.v1.PlanBuildResponse". */
  readonly typeName: string;
  /** The message's binary encoding. */
  readonly value: Uint8Array;
}

export interface DomainErrorOptions {
  readonly details?: readonly ErrorDetail[];
  readonly cause?: unknown;
}

export abstract class DomainError extends Error {
  abstract readonly code: ErrorCode;
  readonly details: readonly ErrorDetail[];

  constructor(message: string, options: DomainErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options.details ?? [];
  }
}

export class CancelledError extends DomainError {
  readonly code = 'CANCELLED';
}
export class InvalidArgumentError extends DomainError {
  readonly code = 'INVALID_ARGUMENT';
}
export class DeadlineExceededError extends DomainError {
  readonly code = 'DEADLINE_EXCEEDED';
}
export class NotFoundError extends DomainError {
  readonly code = 'NOT_FOUND';
}
export class AlreadyExistsError extends DomainError {
  readonly code = 'ALREADY_EXISTS';
}
export class PermissionDeniedError extends DomainError {
  readonly code = 'PERMISSION_DENIED';
}
export class ResourceExhaustedError extends DomainError {
  readonly code = 'RESOURCE_EXHAUSTED';
}
export class FailedPreconditionError extends DomainError {
  readonly code = 'FAILED_PRECONDITION';
}
export class AbortedError extends DomainError {
  readonly code = 'ABORTED';
}
export class UnimplementedError extends DomainError {
  readonly code = 'UNIMPLEMENTED';
}
export class InternalError extends DomainError {
  readonly code = 'INTERNAL';
}
export class UnavailableError extends DomainError {
  readonly code = 'UNAVAILABLE';
}

/** Throws CancelledError (or DeadlineExceededError) when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (!signal?.aborted) return;
  const reason: unknown = signal.reason;
  if (reason instanceof DomainError) throw reason;
  throw new CancelledError(`${what} was cancelled`);
}
