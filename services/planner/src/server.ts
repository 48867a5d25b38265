import { BuildServiceService } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { startGrpcService, unimplementedMethods, type Logger, type RunningGrpcService } from '@kindling/runtime';
import type { PlannerConfig } from './config.ts';

export const plannerServiceName = 'kindling.planner.v1.BuildService';

export interface PlannerServiceDeps {
  readonly logger: Logger;
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
          ...unimplementedMethods(BuildServiceService, 'the planner issue (Dockerfile → build plan) and the build orchestration'),
        },
      },
    ],
  });
}
