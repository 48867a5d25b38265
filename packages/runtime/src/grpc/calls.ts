/**
 * Promise wrappers over generated grpc-js clients that tie a call to an AbortSignal (cancelling the call
 * when it fires) and turn failures into our domain errors, keeping the remote status code. Used by every
 * client of another kindling service.
 */
import type { ClientReadableStream, ClientUnaryCall, ServiceError } from '@grpc/grpc-js';
import { domainErrorFromStatus } from './status.ts';

export function unaryCall<Res>(
  service: string,
  start: (callback: (error: ServiceError | null, response: Res) => void) => ClientUnaryCall,
  signal?: AbortSignal,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const call = start((error, response) => {
      signal?.removeEventListener('abort', cancel);
      if (error) reject(signal?.aborted ? signal.reason : domainErrorFromStatus(service, error));
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
    throw domainErrorFromStatus(service, error as ServiceError);
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
}
