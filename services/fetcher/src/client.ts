import { makeGenericClientConstructor, type ClientReadableStream } from '@grpc/grpc-js';
import {
  FetcherServiceClient,
  FetcherServiceService,
  type ReadBlobRequest,
  type ReadBlobResponse,
} from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { createServiceClient, type TlsFiles } from '@kindling/runtime';
import { decodeReadBlobResponse } from './adapters/grpc/read-blob-codec.ts';

// The generated client copies every ReadBlob chunk on decode: clients that move blobs use this one.

const GenericBlobClient = makeGenericClientConstructor(
  {
    ...FetcherServiceService,
    readBlob: { ...FetcherServiceService.readBlob, responseDeserialize: decodeReadBlobResponse },
  },
  'kindling.fetcher.v1.FetcherService',
);

/**
 * ReadBlob responses (1 MiB each) a stream buffers ahead of its reader. grpc-js's object-mode
 * stream would buffer 16; a message kept that long outlives two scavenges and is promoted to V8's
 * old space, and promoted backing stores add up to a major GC every few dozen MiB received, the
 * largest CPU cost of a read that the consumer does not keep up with.
 */
const READ_AHEAD_MESSAGES = 2;

class FetcherBlobClient extends GenericBlobClient {
  readBlob(request: ReadBlobRequest, ...rest: unknown[]): ClientReadableStream<ReadBlobResponse> {
    const call = (super.readBlob as (r: ReadBlobRequest, ...a: unknown[]) => ClientReadableStream<ReadBlobResponse>)(request, ...rest);
    // Node has no public setter for a Readable's high-water mark; without this field, grpc-js's default stands.
    const state = (call as unknown as { _readableState?: { highWaterMark?: unknown } })._readableState;
    if (typeof state?.highWaterMark === 'number') state.highWaterMark = READ_AHEAD_MESSAGES;
    return call;
  }
}

/**
 * A FetcherService client whose ReadBlob responses are views of the received bytes (no copy), read
 * ahead by at most READ_AHEAD_MESSAGES messages and a 4 MiB HTTP/2 window (for the same reason: at
 * 32 MiB, the window's worth of received data waiting for a slow reader is promoted too).
 */
export function createFetcherClient(address: string, tls?: TlsFiles): FetcherServiceClient {
  return createServiceClient(FetcherBlobClient as unknown as typeof FetcherServiceClient, address, tls, {
    'grpc-node.flow_control_window': 4 * 1024 * 1024,
  });
}
