// BlobSource adapter: streams blobs from the fetcher's FetcherService.ReadBlob.
import { status, type ServiceError } from '@grpc/grpc-js';
import { createFetcherClient } from '@kindling/fetcher';
import type {
  FetcherServiceClient,
  ReadBlobResponse,
} from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import type { TlsFiles } from '@kindling/runtime';
import { NotFoundError, UnavailableError } from '../../domain/errors.ts';
import type { BlobSource } from '../../ports/blob-source.ts';

export class FetcherBlobSource implements BlobSource {
  // The fetcher's own client: ReadBlob chunks are views of the received bytes, with a receive window
  // that keeps 1 MiB messages flowing.
  private readonly client: FetcherServiceClient;

  constructor(
    private readonly address: string,
    tls?: TlsFiles,
  ) {
    this.client = createFetcherClient(address, tls);
  }

  async *read(digest: string, signal?: AbortSignal): AsyncIterable<Buffer> {
    const call = this.client.readBlob({ digest, offset: '0', contextId: '', path: '', copyTo: '', link: false });
    const onAbort = (): void => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const message of call as AsyncIterable<ReadBlobResponse>) yield message.data;
    } catch (error) {
      const code = (error as ServiceError).code;
      if (code === status.NOT_FOUND)
        throw new NotFoundError(
          `the fetcher at ${this.address} has no blob ${digest}: ${(error as ServiceError).details}`,
          { cause: error },
        );
      if (signal?.aborted) throw signal.reason;
      throw new UnavailableError(
        `reading blob ${digest} from the fetcher at ${this.address} failed: ${(error as Error).message}`,
        { cause: error },
      );
    } finally {
      signal?.removeEventListener('abort', onAbort);
      call.cancel();
    }
  }

  close(): void {
    this.client.close();
  }
}
