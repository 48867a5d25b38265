import { status } from '@grpc/grpc-js';

interface CallError {
  code?: number | string;
  details?: unknown;
  message: string;
  cause?: unknown;
}

/** grpc-js's reason without its internals: "connect ECONNREFUSED 127.0.0.1:50053", not "... Resolution note: ". */
function plainReason(error: CallError): string {
  return (typeof error.details === 'string' && error.details !== '' ? error.details : error.message)
    .replace(/\s*Resolution note:.*$/s, '')
    .replace(/^No connection established\. Last error: (Error: )?/, '')
    // One line: a service's multi-line message (e.g. the images it has) is joined with "; ".
    .replace(/\s*\n\s*/g, '; ')
    .replace(/\.$/, '');
}

/**
 * A failed call as an operator reads it. A service that cannot be reached is named with its address and
 * the flag or variable that sets it; any other status is the service's own message; an error that never
 * reached the wire (an unreadable TLS file, a bad --secret) is its own message.
 */
export function describeCallFailure(service: string, address: string, addressSetting: string, error: unknown): string {
  // unaryCall wraps the grpc-js error in a DomainError; its cause carries the status.
  const outer = error as CallError;
  const cause = outer.cause as CallError | undefined;
  const grpcError = typeof outer.code === 'number' ? outer : typeof cause?.code === 'number' ? cause : undefined;
  if (!grpcError) return outer.message;
  const reason = plainReason(grpcError);
  if (grpcError.code === status.UNAVAILABLE && /No connection established|ECONNREFUSED|Name resolution failed|EHOSTUNREACH|ETIMEDOUT|ENOTFOUND|Failed to connect/.test(reason + grpcError.message)) {
    return `cannot reach the ${service} at ${address} (${reason}): is it running there? Give its address with ${addressSetting}`;
  }
  return `${service} at ${address}: ${reason}`;
}
