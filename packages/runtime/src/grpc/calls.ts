/**
 * Promise wrappers over generated grpc-js clients that tie a call to an AbortSignal (cancelling the call
 * when it fires) and turn failures into our domain errors, keeping the remote status code. Used by every
 * client of another kindling service.
 */
import { once } from 'node:events';
import type { ClientReadableStream, ClientUnaryCall, ClientWritableStream, ServiceError } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { domainErrorFromStatus, isPeerAway } from './status.ts';

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

/**
 * Sends a client stream with backpressure (a write the transport cannot take yet waits for 'drain') and
 * resolves with the server's answer. The server may refuse mid-stream: that answer wins over writing on.
 */
export async function clientStreamCall<Req, Res>(
  service: string,
  start: (callback: (error: ServiceError | null, response: Res) => void) => ClientWritableStream<Req>,
  messages: AsyncIterable<Req>,
  signal?: AbortSignal,
): Promise<Res> {
  signal?.throwIfAborted();
  let finished = false;
  let call!: ClientWritableStream<Req>;
  const response = new Promise<Res>((resolve, reject) => {
    call = start((error, result) => {
      finished = true;
      if (error) reject(signal?.aborted ? signal.reason : domainErrorFromStatus(service, error));
      else resolve(result);
    });
  });
  response.catch(() => {});
  const cancel = (): void => call.cancel();
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    for await (const message of messages) {
      if (finished) break;
      if (!call.write(message)) await Promise.race([once(call, 'drain'), response]);
    }
    call.end();
    return await response;
  } catch (error) {
    call.cancel();
    throw signal?.aborted ? signal.reason : error;
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
}

/** Splits byte chunks into pieces of at most maxBytes (well under gRPC's default 4 MiB message limit). */
export async function* boundedChunks(chunks: AsyncIterable<Uint8Array>, maxBytes = 1024 * 1024): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    for (let at = 0; at < chunk.length; at += maxBytes) yield chunk.subarray(at, at + maxBytes);
  }
}

/** A server stream as an async generator, cancelled when the signal fires or the consumer stops early. */
export async function* streamMessages<Res>(service: string, stream: ClientReadableStream<Res>, signal: AbortSignal): AsyncGenerator<Res> {
  const cancel = (): void => stream.cancel();
  signal.addEventListener('abort', cancel, { once: true });
  try {
    for await (const message of stream) yield message as Res;
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw domainErrorFromStatus(service, error as ServiceError);
  } finally {
    signal.removeEventListener('abort', cancel);
    stream.cancel();
  }
}

/**
 * Runs an idempotent call again while its service is away (its process restarting: the call found
 * nothing listening, or the connection dropped under it), for up to graceMs, backing off 250 ms to 2 s.
 * `unsentOnly` (for a call that must not run twice): only when the call never reached the service.
 * Any other failure, the signal firing or the grace running out ends it with the last error.
 */
export async function retryWhilePeerAway<T>(
  call: () => Promise<T>,
  options: { graceMs?: number; signal?: AbortSignal; unsentOnly?: boolean } = {},
): Promise<T> {
  const until = Date.now() + (options.graceMs ?? 30_000);
  for (let pause = 250; ; pause = Math.min(pause * 2, 2000)) {
    try {
      return await call();
    } catch (error) {
      if (!isPeerAway(error, { unsentOnly: options.unsentOnly ?? false }) || Date.now() + pause > until || options.signal?.aborted) throw error;
      await sleep(pause, undefined, options.signal ? { signal: options.signal } : {}).catch(() => {
        throw error;
      });
    }
  }
}
