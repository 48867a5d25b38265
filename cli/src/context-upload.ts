/** Streams a context archive to the fetcher (FetcherService.UploadContext) with backpressure. */
import { once } from 'node:events';
import type { ClientWritableStream } from '@grpc/grpc-js';
import type { FetcherServiceClient, UploadContextRequest, UploadContextResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';

// Well under gRPC's default 4 MiB message limit.
const CHUNK_BYTES = 1024 * 1024;

/**
 * Sends fileName's header, then chunks as they come: a write the transport cannot take yet waits for
 * 'drain', so stdin is read no faster than the fetcher receives. announcedSize 0 means unknown.
 */
export async function uploadContext(
  client: FetcherServiceClient,
  fileName: string,
  chunks: AsyncIterable<Buffer>,
  announcedSize = 0,
): Promise<UploadContextResponse> {
  let call!: ClientWritableStream<UploadContextRequest>;
  let finished = false;
  const response = new Promise<UploadContextResponse>((resolve, reject) => {
    call = client.uploadContext((error, result) => {
      finished = true;
      if (error) reject(error);
      else resolve(result);
    });
  });
  // The fetcher may refuse mid-stream (too large, bad header): that answer wins over waiting to write.
  response.catch(() => {});
  const send = async (message: UploadContextRequest): Promise<void> => {
    if (!call.write(message)) await Promise.race([once(call, 'drain'), response]);
  };
  try {
    await send({ part: { $case: 'header', value: { fileName, size: String(announcedSize) } } });
    for await (const chunk of chunks) {
      for (let at = 0; at < chunk.length && !finished; at += CHUNK_BYTES) {
        await send({ part: { $case: 'chunk', value: chunk.subarray(at, at + CHUNK_BYTES) } });
      }
      if (finished) break;
    }
    call.end();
  } catch (error) {
    call.cancel();
    throw error;
  }
  return response;
}
