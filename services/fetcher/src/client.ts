import { makeGenericClientConstructor } from '@grpc/grpc-js';
import {
  FetcherServiceClient,
  FetcherServiceService,
} from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { createChannelCredentials, type TlsFiles } from '@kindling/runtime';
import { decodeReadBlobResponse } from './adapters/grpc/read-blob-codec.ts';

// The generated client copies every ReadBlob chunk on decode and keeps HTTP/2's
// 64 KiB receive window, which stalls a 1 MiB message on round trips. Clients
// that move blobs should use this one instead.

/** Receive window per connection: a few messages in flight keep the fetcher sending. */
export const FETCHER_FLOW_CONTROL_WINDOW = 32 * 1024 * 1024;

const FetcherBlobClient = makeGenericClientConstructor(
  {
    ...FetcherServiceService,
    readBlob: { ...FetcherServiceService.readBlob, responseDeserialize: decodeReadBlobResponse },
  },
  'kindling.fetcher.v1.FetcherService',
) as unknown as typeof FetcherServiceClient;

/** A FetcherService client whose ReadBlob responses are views of the received bytes (no copy). */
export function createFetcherClient(address: string, tls?: TlsFiles): FetcherServiceClient {
  return new FetcherBlobClient(address, createChannelCredentials(tls), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.keepalive_time_ms': 30_000,
    'grpc-node.flow_control_window': FETCHER_FLOW_CONTROL_WINDOW,
  });
}
