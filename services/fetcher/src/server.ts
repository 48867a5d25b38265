import { FetcherServiceService } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { startGrpcService, type Logger, type RunningGrpcService } from '@kindling/runtime';
import { FsBlobStore } from './adapters/fs/fs-blob-store.ts';
import { FsGrowingFileReader } from './adapters/fs/growing-file.ts';
import { LocalContextLoader } from './adapters/fs/local-context.ts';
import { GitContextLoader } from './adapters/git/git-context.ts';
import { fetcherGrpcImplementation } from './adapters/grpc/fetcher-grpc.ts';
import { serializeReadBlobResponse } from './adapters/grpc/read-blob-codec.ts';
import { UndiciHttpSource } from './adapters/http/undici-http-source.ts';
import { TarballContextLoader } from './adapters/tar/tarball-context.ts';
import type { FetcherConfig } from './config.ts';
import type { FetchLimits } from './domain/build-context.ts';
import { BuildContextService } from './domain/build-context-service.ts';
import { HttpContextLoader } from './domain/http-context.ts';
import type { NetworkPolicy } from './domain/network-policy.ts';
import { RemoteFiles } from './domain/remote-files.ts';
import type { ContextLoader } from './ports/context-loader.ts';

export const fetcherServiceName = 'kindling.fetcher.v1.FetcherService';

export interface FetcherServiceDeps {
  readonly logger: Logger;
}

/**
 * Wires the fetcher (blob cache, HTTP client, context loaders, use cases) and
 * starts its gRPC server; the caller marks it serving. shutdown() also closes
 * the HTTP client.
 */
export async function startFetcherService(
  config: FetcherConfig,
  deps: FetcherServiceDeps,
): Promise<RunningGrpcService> {
  const limits: FetchLimits = {
    maxFileSize: config.maxFileSize,
    maxContextSize: config.maxContextSize,
    maxFiles: config.maxFiles,
    maxDockerfileSize: 1024 * 1024,
    fetchTimeoutMs: config.fetchTimeout,
  };
  const policy: NetworkPolicy = {
    allowedSchemes: config.allowedSchemes,
    allowHosts: config.allowHosts,
    denyHosts: config.denyHosts,
    allowLinkLocal: config.allowLinkLocal,
  };
  if (config.cacheSize < config.maxContextSize) {
    // A context larger than the cache evicts its own first files while it is stored.
    deps.logger.warn(
      { cacheSize: config.cacheSize, maxContextSize: config.maxContextSize },
      '--cache-size is smaller than --max-context-size: a context near the limit evicts its own files; raise --cache-size',
    );
  }
  const blobs = await FsBlobStore.open({ dir: config.cacheDir, limitBytes: config.cacheSize });
  const httpLimits = {
    maxRedirects: config.maxRedirects,
    headersTimeoutMs: config.headersTimeout,
    bodyTimeoutMs: config.bodyTimeout,
  };
  const http = new UndiciHttpSource(policy, httpLimits);
  // git's own HTTP requests (finding where a repository is) go by the git schemes: allowing
  // git+https but not https still lets git contexts through, and no plain download.
  const gitHttp = new UndiciHttpSource(
    {
      ...policy,
      allowedSchemes: ['http', 'https'].filter(
        (s) => policy.allowedSchemes.includes(s) || policy.allowedSchemes.includes(`git+${s}`),
      ),
    },
    httpLimits,
  );
  const remote = new RemoteFiles(http, blobs, new FsGrowingFileReader(), limits);
  const loaders = {
    local: new LocalContextLoader(blobs, limits, { allowedRoots: config.localRoots }),
    http: new HttpContextLoader(http, remote, policy, limits),
    git: new GitContextLoader(blobs, policy, limits, deps.logger, gitHttp, config.gitSshCommand),
    tarball: new TarballContextLoader(blobs, remote, policy, limits),
  } as Record<string, ContextLoader> as BuildContextServiceLoaders;
  const service = new BuildContextService({ loaders, blobs, remote, policy, limits, handoffDir: config.handoffDir });
  const running = await startGrpcService({
    name: 'fetcher',
    host: config.host,
    port: config.port,
    tls: { certPath: config.tlsCert, keyPath: config.tlsKey, caPath: config.tlsCa },
    insecure: config.insecure,
    logger: deps.logger,
    services: [
      {
        name: fetcherServiceName,
        definition: fetcherServiceDefinition,
        implementation: fetcherGrpcImplementation(service),
      },
    ],
  });
  return {
    ...running,
    async shutdown(graceMs?: number) {
      await running.shutdown(graceMs);
      await Promise.all([http.close(), gitHttp.close()]);
    },
  };
}

/** The generated definition, with ReadBlob's response encoder swapped for the copy-saving one. */
const fetcherServiceDefinition = {
  ...FetcherServiceService,
  readBlob: { ...FetcherServiceService.readBlob, responseSerialize: serializeReadBlobResponse },
};

type BuildContextServiceLoaders = ConstructorParameters<typeof BuildContextService>[0]['loaders'];
