import { VmmServiceService } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { startGrpcService, unimplementedMethods, type Logger, type RunningGrpcService } from '@kindling/runtime';
import type { VmmConfig } from './config.ts';

export const vmmServiceName = 'kindling.vmm.v1.VmmService';

export interface VmmServiceDeps {
  readonly logger: Logger;
}

/** Builds the vmm's gRPC service on the configured address; the caller marks it serving when ready. */
export async function startVmmService(config: VmmConfig, deps: VmmServiceDeps): Promise<RunningGrpcService> {
  return startGrpcService({
    name: 'vmm',
    host: config.host,
    port: config.port,
    tls: { certPath: config.tlsCert, keyPath: config.tlsKey, caPath: config.tlsCa },
    insecure: config.insecure,
    logger: deps.logger,
    services: [
      {
        name: vmmServiceName,
        definition: VmmServiceService,
        implementation: {
          ...unimplementedMethods(VmmServiceService, 'the vmm issue (image store, CNI networking, qemu and firecracker drivers)'),
        },
      },
    ],
  });
}
