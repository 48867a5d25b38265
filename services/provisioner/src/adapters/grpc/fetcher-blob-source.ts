// BlobSource adapter: streams blobs from the fetcher's FetcherService.ReadBlob.
import { makeGenericClientConstructor, status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import type { ReadBlobRequest, ReadBlobResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { createChannelCredentials, type TlsFiles } from '@kindling/runtime';
import { NotFoundError, UnavailableError } from '../../domain/errors.ts';
import type { BlobSource } from '../../ports/blob-source.ts';
import { zeroCopyReadBlobDefinition } from './read-blob-wire.ts';

interface ReadBlobClient {
  readBlob(request: ReadBlobRequest): ClientReadableStream<ReadBlobResponse>;
  close(): void;
}

const ReadBlobClientConstructor = makeGenericClientConstructor(zeroCopyReadBlobDefinition, 'kindling.fetcher.v1.FetcherService');

const BLOB_FLOW_CONTROL_WINDOW = 16 * 1024 * 1024;

export class FetcherBlobSource implements BlobSource {
  private readonly client: ReadBlobClient;

  constructor(
    private readonly address: string,
    tls?: TlsFiles,
  ) {
    this.client = new ReadBlobClientConstructor(address, createChannelCredentials(tls), {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      // HTTP/2's default 64 KiB window makes a 1 MiB ReadBlob chunk wait on several WINDOW_UPDATE round trips
      'grpc-node.flow_control_window': BLOB_FLOW_CONTROL_WINDOW,
    }) as unknown as ReadBlobClient;
  }

  async *read(digest: string, signal?: AbortSignal): AsyncIterable<Buffer> {
    const call = this.client.readBlob({ digest, offset: '0', contextId: '', path: '' });
    const onAbort = (): void => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const message of call as AsyncIterable<ReadBlobResponse>) yield message.data;
    } catch (error) {
      const code = (error as ServiceError).code;
      if (code === status.NOT_FOUND) throw new NotFoundError(`the fetcher at ${this.address} has no blob ${digest}: ${(error as ServiceError).details}`, { cause: error });
      if (signal?.aborted) throw signal.reason;
      throw new UnavailableError(`reading blob ${digest} from the fetcher at ${this.address} failed: ${(error as Error).message}`, { cause: error });
    } finally {
      signal?.removeEventListener('abort', onAbort);
      call.cancel();
    }
  }

  close(): void {
    this.client.close();
  }
}
