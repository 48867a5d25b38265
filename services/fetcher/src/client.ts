import { makeGenericClientConstructor } from '@grpc/grpc-js';
import {
  FetcherServiceClient,
  FetcherServiceService,
} from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { createServiceClient, type TlsFiles } from '@kindling/runtime';
import { decodeReadBlobResponse } from './adapters/grpc/read-blob-codec.ts';

// The generated client copies every ReadBlob chunk on decode: clients that move blobs use this one.

const FetcherBlobClient = makeGenericClientConstructor(
  {
    ...FetcherServiceService,
    readBlob: { ...FetcherServiceService.readBlob, responseDeserialize: decodeReadBlobResponse },
  },
  'kindling.fetcher.v1.FetcherService',
) as unknown as typeof FetcherServiceClient;

/** A FetcherService client whose ReadBlob responses are views of the received bytes (no copy). */
export function createFetcherClient(address: string, tls?: TlsFiles): FetcherServiceClient {
  return createServiceClient(FetcherBlobClient, address, tls);
}
