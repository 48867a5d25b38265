import { ProvisionerServiceService } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { startGrpcService, unimplementedMethods, type Logger, type RunningGrpcService } from '@kindling/runtime';
import type { ProvisionerConfig } from './config.ts';

export const provisionerServiceName = 'kindling.provisioner.v1.ProvisionerService';

export interface ProvisionerServiceDeps {
  readonly logger: Logger;
}

/** Builds the provisioner's gRPC service on the configured address; the caller marks it serving when ready. */
export async function startProvisionerService(config: ProvisionerConfig, deps: ProvisionerServiceDeps): Promise<RunningGrpcService> {
  return startGrpcService({
    name: 'provisioner',
    host: config.host,
    port: config.port,
    tls: { certPath: config.tlsCert, keyPath: config.tlsKey, caPath: config.tlsCa },
    insecure: config.insecure,
    logger: deps.logger,
    services: [
      {
        name: provisionerServiceName,
        definition: ProvisionerServiceService,
        implementation: {
          ...unimplementedMethods(ProvisionerServiceService, 'the provisioner issue (SSH exec and file copy into guests)'),
        },
      },
    ],
  });
}
