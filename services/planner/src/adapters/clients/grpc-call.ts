/**
 * Promise wrappers over generated grpc-js clients that tie a call to an AbortSignal (cancelling the call
 * when it fires) and turn failures into our domain errors, keeping the remote status code.
 */
import type { ClientReadableStream, ClientUnaryCall, ServiceError } from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import {
  AbortedError,
  AlreadyExistsError,
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnavailableError,
  UnimplementedError,
  type DomainError,
} from '@kindling/runtime';

const errorByStatus: Partial<Record<Status, new (message: string, options?: { cause?: unknown }) => DomainError>> = {
  [Status.CANCELLED]: CancelledError,
  [Status.INVALID_ARGUMENT]: InvalidArgumentError,
  [Status.DEADLINE_EXCEEDED]: DeadlineExceededError,
  [Status.NOT_FOUND]: NotFoundError,
  [Status.ALREADY_EXISTS]: AlreadyExistsError,
  [Status.PERMISSION_DENIED]: PermissionDeniedError,
  [Status.RESOURCE_EXHAUSTED]: ResourceExhaustedError,
  [Status.FAILED_PRECONDITION]: FailedPreconditionError,
  [Status.ABORTED]: AbortedError,
  [Status.UNIMPLEMENTED]: UnimplementedError,
  [Status.UNAVAILABLE]: UnavailableError,
};

/** A remote failure as the domain error of the same code, its message prefixed with the service. */
export function remoteError(service: string, error: ServiceError): DomainError {
  const Kind = errorByStatus[error.code as Status] ?? InternalError;
  return new Kind(`${service}: ${error.details || error.message}`, { cause: error });
}

export function unaryCall<Res>(
  service: string,
  start: (callback: (error: ServiceError | null, response: Res) => void) => ClientUnaryCall,
  signal?: AbortSignal,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const call = start((error, response) => {
      signal?.removeEventListener('abort', cancel);
      if (error) reject(signal?.aborted ? signal.reason : remoteError(service, error));
      else resolve(response);
    });
    const cancel = (): void => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
  });
}

/** Consumes a server stream, calling onMessage for each response. */
export async function streamCall<Res>(
  service: string,
  stream: ClientReadableStream<Res>,
  onMessage: (message: Res) => void,
  signal?: AbortSignal,
): Promise<void> {
  const cancel = (): void => stream.cancel();
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    for await (const message of stream) onMessage(message as Res);
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw remoteError(service, error as ServiceError);
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
}
