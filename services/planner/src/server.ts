import { BuildServiceService } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { startGrpcService, unimplementedMethods, type Logger, type RunningGrpcService } from '@kindling/runtime';
import { buildHandlers } from './adapters/grpc/build-handlers.ts';
import { cacheHandlers } from './adapters/grpc/cache-handlers.ts';
import { planHandlers } from './adapters/grpc/plan-handler.ts';
import { emptyImageCatalog } from './adapters/vmm-image-catalog.ts';
import type { PlannerConfig } from './config.ts';
import type { BuildCoordinator } from './execution/build-coordinator.ts';
import type { StepCache } from './execution/step-cache.ts';
import type { ImageCatalog } from './ports/image-catalog.ts';

export const plannerServiceName = 'kindling.planner.v1.BuildService';

export interface PlannerServiceDeps {
  readonly logger: Logger;
  /** Runs builds; without it the build RPCs answer UNIMPLEMENTED (plan-only planner). */
  readonly builds?: BuildCoordinator;
  /** The step cache behind ListCacheEntries and PruneCache. */
  readonly cache?: StepCache;
  /** Images FROM may name (the vmm's store); without it every base plans as unresolved. */
  readonly catalog?: ImageCatalog;
}

/** Builds the planner's gRPC service on the configured address; the caller marks it serving when ready. */
export async function startPlannerService(config: PlannerConfig, deps: PlannerServiceDeps): Promise<RunningGrpcService> {
  return startGrpcService({
    name: 'planner',
    host: config.host,
    port: config.port,
    tls: { certPath: config.tlsCert, keyPath: config.tlsKey, caPath: config.tlsCa },
    insecure: config.insecure,
    logger: deps.logger,
    services: [
      {
        name: plannerServiceName,
        definition: BuildServiceService,
        implementation: {
          ...unimplementedMethods(BuildServiceService, 'the build orchestration'),
          ...planHandlers(deps.catalog ?? emptyImageCatalog),
          ...(deps.builds ? buildHandlers(deps.builds) : {}),
          ...(deps.cache ? cacheHandlers(deps.cache) : {}),
        },
      },
    ],
  });
}
