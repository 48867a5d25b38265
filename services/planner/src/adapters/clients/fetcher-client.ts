import {
  FetcherServiceClient,
  type FetchUrlResponse,
  type ListFilesResponse,
  type ReadBlobResponse,
  type ResolveContextRequest,
  type ResolveContextResponse,
  type UploadContextRequest,
  type UploadContextResponse,
} from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import type { BuildSource } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { boundedChunks, clientStreamCall, streamMessages, unaryCall, InvalidArgumentError, type TlsFiles } from '@kindling/runtime';
import { createFetcherClient } from '@kindling/fetcher';
import type { BuildContextSource } from '../../ports/build-services.ts';

const service = 'fetcher';

/** BuildSource (the planner's request) → the fetcher's ResolveContextRequest. */
export function resolveRequestFor(source: BuildSource): ResolveContextRequest {
  const dockerfilePath = source.dockerfilePath;
  const s = source.source;
  switch (s?.$case) {
    case 'contextPath':
      return { source: { $case: 'local', value: { path: s.value } }, dockerfilePath };
    case 'dockerfileUrl':
      return { source: { $case: 'http', value: { dockerfileUrl: s.value } }, dockerfilePath };
    case 'gitUrl':
      return { source: { $case: 'git', value: { url: s.value } }, dockerfilePath };
    case 'tarballUrl':
      return { source: { $case: 'tarball', value: { source: { $case: 'url', value: s.value } } }, dockerfilePath };
    case 'uploadId':
      // The fetcher answers NOT_FOUND naming the id when the upload is unknown or evicted.
      return { source: { $case: 'tarball', value: { source: { $case: 'uploadId', value: s.value } } }, dockerfilePath };
    default:
      throw new InvalidArgumentError('source: give a Dockerfile, a context path, a Dockerfile URL, a git URL, a tarball URL or an upload id');
  }
}

export class GrpcBuildContextSource implements BuildContextSource {
  private readonly client: FetcherServiceClient;

  constructor(address: string, tls?: TlsFiles) {
    // the fetcher's own client: ReadBlob chunks are views of the received bytes, read ahead little
    this.client = createFetcherClient(address, tls);
  }

  async resolve(source: BuildSource, signal: AbortSignal): Promise<ResolveContextResponse> {
    if (source.source?.$case === 'dockerfile') {
      // An inline Dockerfile has no context: nothing to ask the fetcher.
      return {
        contextId: '',
        kind: 5,
        displayRoot: '(inline Dockerfile)',
        dockerfile: source.source.value,
        dockerfilePath: source.dockerfilePath || 'Dockerfile',
        dockerignore: '',
        dockerignorePath: '',
        gitCommit: '',
      };
    }
    const request = resolveRequestFor(source);
    return unaryCall<ResolveContextResponse>(service, (cb) => this.client.resolveContext(request, cb), signal);
  }

  async listFiles(
    contextId: string,
    patterns: string[],
    excludes: string[],
    signal: AbortSignal,
    options: { parents?: boolean } = {},
  ): Promise<ListFilesResponse> {
    const request = { contextId, patterns, excludes, parents: options.parents ?? false };
    return unaryCall<ListFilesResponse>(service, (cb) => this.client.listFiles(request, cb), signal);
  }

  async fetchUrl(url: string, expectedDigest: string, signal: AbortSignal) {
    const response = await unaryCall<FetchUrlResponse>(service, (cb) => this.client.fetchUrl({ url, expectedDigest }, cb), signal);
    if (!response.file) throw new InvalidArgumentError(`fetcher returned no file for ${url}`);
    return response.file;
  }

  async *readBlob(digest: string, signal: AbortSignal): AsyncGenerator<Buffer> {
    const stream = this.client.readBlob({ digest, offset: '0', contextId: '', path: '', copyTo: '', link: false });
    for await (const message of streamMessages<ReadBlobResponse>(service, stream, signal)) {
      const { data } = message;
      yield Buffer.from(data.buffer, data.byteOffset, data.byteLength); // a view, not a copy
    }
  }

  async upload(fileName: string, archive: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<{ uploadId: string; digest: string }> {
    async function* messages(): AsyncGenerator<UploadContextRequest> {
      yield { part: { $case: 'header', value: { fileName, size: '0' } } };
      for await (const chunk of boundedChunks(archive)) yield { part: { $case: 'chunk', value: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) } };
    }
    const response = await clientStreamCall<UploadContextRequest, UploadContextResponse>(service, (cb) => this.client.uploadContext(cb), messages(), signal);
    return { uploadId: response.uploadId, digest: response.digest };
  }

  close(): void {
    this.client.close();
  }
}
