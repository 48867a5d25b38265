/**
 * Errors raised by the Firecracker driver. Each carries a gRPC-style `code` so the vmm's error
 * mapping can turn it into the right status without parsing messages (the runtime's DomainError
 * classes use the same code names).
 */

export type FirecrackerErrorCode =
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'INTERNAL';

export class FirecrackerDriverError extends Error {
  readonly code: FirecrackerErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: FirecrackerErrorCode, message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FirecrackerDriverError';
    this.code = code;
    this.details = options.details ?? {};
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
