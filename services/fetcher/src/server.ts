import { FetcherServiceService } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { startGrpcService, unimplementedMethods, type Logger, type RunningGrpcService } from '@kindling/runtime';
import type { FetcherConfig } from './config.ts';

export const fetcherServiceName = 'kindling.fetcher.v1.FetcherService';

export interface FetcherServiceDeps {
  readonly logger: Logger;
}

/** Builds the fetcher's gRPC service on the configured address; the caller marks it serving when ready. */
export async function startFetcherService(config: FetcherConfig, deps: FetcherServiceDeps): Promise<RunningGrpcService> {
  return startGrpcService({
    name: 'fetcher',
    host: config.host,
    port: config.port,
    tls: { certPath: config.tlsCert, keyPath: config.tlsKey, caPath: config.tlsCa },
    insecure: config.insecure,
    logger: deps.logger,
    services: [
      {
        name: fetcherServiceName,
        definition: FetcherServiceService,
        implementation: {
          ...unimplementedMethods(FetcherServiceService, 'the fetcher issue (build contexts from local dirs, HTTP(S), git and tarballs)'),
        },
      },
    ],
  });
}
