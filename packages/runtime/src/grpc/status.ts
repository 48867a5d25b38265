/**
 * The one place where failures become gRPC statuses. Domain errors keep their code, message and
 * details (as google.rpc.Status in grpc-status-details-bin); anything else is INTERNAL with a generic
 * message, and the real error goes to the log, never to the client.
 */
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { Status as RpcStatus } from '@kindling/proto/gen/google/rpc/status.ts';
import {
  AbortedError,
  AlreadyExistsError,
  CancelledError,
  DeadlineExceededError,
  DomainError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnavailableError,
  UnimplementedError,
  type ErrorCode,
  type ErrorDetail,
} from '../errors.ts';

export const statusByCode: Readonly<Record<ErrorCode, Status>> = {
  CANCELLED: Status.CANCELLED,
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  DEADLINE_EXCEEDED: Status.DEADLINE_EXCEEDED,
  NOT_FOUND: Status.NOT_FOUND,
  ALREADY_EXISTS: Status.ALREADY_EXISTS,
  PERMISSION_DENIED: Status.PERMISSION_DENIED,
  RESOURCE_EXHAUSTED: Status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  ABORTED: Status.ABORTED,
  UNIMPLEMENTED: Status.UNIMPLEMENTED,
  INTERNAL: Status.INTERNAL,
  UNAVAILABLE: Status.UNAVAILABLE,
};

const detailsKey = 'grpc-status-details-bin';

export interface StatusFailure {
  readonly serviceError: Partial<ServiceError> & { code: Status; details: string };
  /** True when the error was not a DomainError: log it with its stack. */
  readonly unexpected: boolean;
}

export function toStatusFailure(error: unknown): StatusFailure {
  if (error instanceof DomainError) {
    const metadata = new Metadata();
    if (error.details.length > 0) {
      const encoded = RpcStatus.encode({
        code: statusByCode[error.code],
        message: error.message,
        details: error.details.map((d) => ({ typeUrl: `type.googleapis.com/${d.typeName}`, value: Buffer.from(d.value) })),
      }).finish();
      metadata.set(detailsKey, Buffer.from(encoded));
    }
    return {
      serviceError: { code: statusByCode[error.code], details: error.message, metadata },
      unexpected: false,
    };
  }
  return {
    serviceError: { code: Status.INTERNAL, details: 'internal error; the server log has the details' },
    unexpected: true,
  };
}

/** Reads the google.rpc.Status details of a failed call (client side). */
export function statusDetails(error: ServiceError): ErrorDetail[] {
  const raw = error.metadata?.get(detailsKey)[0];
  if (!(raw instanceof Buffer)) return [];
  return RpcStatus.decode(raw).details.map((any) => ({
    typeName: any.typeUrl.slice(any.typeUrl.lastIndexOf('/') + 1),
    value: any.value,
  }));
}

export function statusName(code: Status): string {
  return Status[code] ?? `CODE_${code}`;
}

const errorClassByStatus: Partial<Record<Status, new (message: string, options?: { cause?: unknown }) => DomainError>> = {
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

const LOST_PEER = /^(Connection dropped|No connection established|read ECONNRESET|Connection reset|Failed to connect)/u;

/**
 * A failed call to another kindling service as the domain error of the same code (client side), its
 * message prefixed with the service's name, so a caller's own error mapping passes the code through.
 */
/** grpc-js's words for a call that never left: no connection to send it on. */
const NEVER_SENT = /^(No connection established|Failed to connect)/u;

/**
 * Whether a failed call's error (from domainErrorFromStatus) says its peer died or is not listening;
 * with `unsentOnly`, only that the call never reached it (safe to repeat even when not idempotent).
 */
export function isPeerAway(error: unknown, options: { unsentOnly?: boolean } = {}): boolean {
  const cause = (error as { cause?: ServiceError } | undefined)?.cause;
  if (!(error instanceof DomainError) || error.code !== 'UNAVAILABLE' || cause?.code !== Status.UNAVAILABLE) return false;
  return (options.unsentOnly ? NEVER_SENT : LOST_PEER).test(cause.details || cause.message);
}

export function domainErrorFromStatus(service: string, error: ServiceError): DomainError {
  const Kind = errorClassByStatus[error.code as Status] ?? InternalError;
  const details = error.details || error.message;
  // grpc-js's own words when the peer process died or is not listening: say what that means
  if (error.code === Status.UNAVAILABLE && LOST_PEER.test(details)) {
    return new Kind(`${service}: the ${service} went away or cannot be reached (${details.replace(/\. Resolution note: ?$/u, '')})`, { cause: error });
  }
  return new Kind(`${service}: ${details}`, { cause: error });
}
