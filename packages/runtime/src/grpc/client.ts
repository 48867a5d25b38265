import type { ChannelCredentials, Client, ClientOptions } from '@grpc/grpc-js';
import { createChannelCredentials, type TlsFiles } from './tls.ts';
import { traceInterceptor } from './tracing.ts';

type ClientConstructor<C extends Client> = new (
  address: string,
  credentials: ChannelCredentials,
  options?: Partial<ClientOptions>,
) => C;

/**
 * A client of another kindling service, with TLS/mTLS from the caller's config. Every call sends the
 * active trace context as traceparent/tracestate (tracing.ts). `channel` overrides channel options.
 */
export function createServiceClient<C extends Client>(
  Ctor: ClientConstructor<C>,
  address: string,
  tls?: TlsFiles,
  channel?: Partial<ClientOptions>,
): C {
  return new Ctor(address, createChannelCredentials(tls), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.keepalive_time_ms': 30_000,
    // HTTP/2's default 64 KiB receive window makes a streamed 1 MiB message (ReadBlob, Exec output)
    // wait on WINDOW_UPDATE round trips: a few messages in flight keep the sender going.
    'grpc-node.flow_control_window': 32 * 1024 * 1024,
    ...channel,
    interceptors: [traceInterceptor],
  });
}

/** Call options with a deadline ms from now. */
export function deadlineIn(ms: number): { deadline: Date } {
  return { deadline: new Date(Date.now() + ms) };
}
