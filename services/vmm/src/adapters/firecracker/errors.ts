/**
 * Errors raised by the Firecracker driver: DomainErrors, so the runtime maps them to gRPC status
 * codes, with the facts (paths, request, fault_message) kept for logs and tests.
 */
import { DomainError } from '@kindling/runtime';

export type FirecrackerErrorCode =
  'INVALID_ARGUMENT' | 'FAILED_PRECONDITION' | 'UNAVAILABLE' | 'DEADLINE_EXCEEDED' | 'CANCELLED' | 'INTERNAL';

export class FirecrackerDriverError extends DomainError {
  readonly code: FirecrackerErrorCode;
  readonly facts: Readonly<Record<string, unknown>>;

  constructor(
    code: FirecrackerErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'FirecrackerDriverError';
    this.code = code;
    this.facts = options.details ?? {};
  }
}

/** A request the Firecracker API refused: names the request and carries Firecracker's fault_message. */
export class FirecrackerApiError extends FirecrackerDriverError {
  readonly request: string;
  readonly statusCode: number;
  readonly faultMessage: string;

  constructor(request: string, statusCode: number, faultMessage: string, socketPath: string) {
    super(
      statusCode === 400 ? 'FAILED_PRECONDITION' : 'INTERNAL',
      `firecracker API ${request} failed with HTTP ${statusCode}: ${faultMessage || '(no fault_message)'} (socket ${socketPath})`,
      { details: { request, statusCode, faultMessage, socketPath } },
    );
    this.name = 'FirecrackerApiError';
    this.request = request;
    this.statusCode = statusCode;
    this.faultMessage = faultMessage;
  }
}
