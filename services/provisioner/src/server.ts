import { ProvisionerServiceService } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { startGrpcService, type Logger, type RunningGrpcService } from '@kindling/runtime';
import { HostArchiveDecoder } from './adapters/archive/host-archive-decoder.ts';
import { WorkerSha256Hashing } from './adapters/crypto/worker-sha256.ts';
import { FetcherCacheBlobSource } from './adapters/fs/fetcher-cache-blob-source.ts';
import { FetcherBlobSource } from './adapters/grpc/fetcher-blob-source.ts';
import { provisionerGrpcImplementation } from './adapters/grpc/provisioner-grpc.ts';
import { SshConnectionPool } from './adapters/ssh/ssh-connection-pool.ts';
import type { ProvisionerConfig } from './config.ts';
import { Provisioner } from './domain/provisioner.ts';

export const provisionerServiceName = 'kindling.provisioner.v1.ProvisionerService';

export interface ProvisionerServiceDeps {
  readonly logger: Logger;
}

/** Wires SSH, the fetcher client and the use cases, and starts the gRPC server; shutdown() also closes every SSH connection. */
export async function startProvisionerService(config: ProvisionerConfig, deps: ProvisionerServiceDeps): Promise<RunningGrpcService> {
  const tls = { certPath: config.tlsCert, keyPath: config.tlsKey, caPath: config.tlsCa };
  const remoteBlobs = new FetcherBlobSource(config.fetcherAddress, tls);
  const cachedBlobs = config.fetcherCacheDir ? new FetcherCacheBlobSource(config.fetcherCacheDir, remoteBlobs) : undefined;
  const blobs = cachedBlobs ?? remoteBlobs;
  const sha256 = new WorkerSha256Hashing();
  const pool = new SshConnectionPool({
    handshakeTimeoutMs: config.sshHandshakeTimeout,
    keepaliveIntervalMs: config.sshKeepaliveInterval,
    keepaliveCountMax: 3,
  });
  const provisioner = new Provisioner(pool, blobs, new HostArchiveDecoder(), {
    allowAcceptAnyHostKey: config.insecureAcceptAnyHostKey,
    defaultWaitReadyTimeoutMs: config.waitReadyTimeout,
    sha256,
  });
  if (config.insecureAcceptAnyHostKey) deps.logger.warn('targets may disable host key verification (--insecure-accept-any-host-key): for debugging only');
  const running = await startGrpcService({
    name: 'provisioner',
    host: config.host,
    port: config.port,
    tls,
    insecure: config.insecure,
    logger: deps.logger,
    services: [{ name: provisionerServiceName, definition: ProvisionerServiceService, implementation: provisionerGrpcImplementation(provisioner) }],
  });
  return {
    ...running,
    async shutdown(graceMs?: number) {
      await running.shutdown(graceMs);
      await provisioner.shutdown();
      remoteBlobs.close();
      await sha256.close();
      await cachedBlobs?.close();
    },
  };
}
