/**
 * Starts a service's gRPC server with reflection and health, and stops it gracefully.
 */
import { isIP } from 'node:net';
import { Server, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { readDescriptorSet } from '@kindling/proto';
import { FailedPreconditionError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { bindCallServer } from './call.ts';
import { HealthRegistry } from './health.ts';
import { reflectionServices } from './reflection.ts';
import { isTlsConfigured, serverCredentials, type TlsFiles } from './tls.ts';

export interface ServiceRegistration {
  /** Fully qualified name, e.g. "kindling.vmm.v1.VmmService". */
  readonly name: string;
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
}

export interface GrpcServiceOptions {
  /** Short service name for logs, e.g. "vmm". */
  readonly name: string;
  readonly services: readonly ServiceRegistration[];
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly tls?: TlsFiles;
  /** Allow plaintext on a non-loopback address. */
  readonly insecure?: boolean;
  readonly logger: Logger;
}

export interface RunningGrpcService {
  readonly port: number;
  /** host:port clients can dial. */
  readonly address: string;
  readonly health: HealthRegistry;
  readonly server: Server;
  /** Stops accepting calls, lets running ones finish for graceMs, then cancels them. */
  shutdown(graceMs?: number): Promise<void>;
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '[::1]';
}

export async function startGrpcService(options: GrpcServiceOptions): Promise<RunningGrpcService> {
  const { host, port, tls, logger } = options;
  if (!isLoopback(host) && !isTlsConfigured(tls) && !options.insecure) {
    throw new FailedPreconditionError(
      `refusing to serve ${options.name} on ${host} without TLS: set --tls-cert and --tls-key (and --tls-ca for mTLS), ` +
        'or pass --insecure to accept plaintext on a non-loopback address',
    );
  }
  let stopping: Promise<void> | undefined;
  let forced = false;
  const callServer = { logger, stopping: () => forced };
  const server = new Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  const names = options.services.map((s) => s.name);
  const health = new HealthRegistry(names);
  for (const service of options.services) server.addService(service.definition, bindCallServer(service.implementation, callServer));
  server.addService(health.definition(), health.implementation());
  for (const reflection of reflectionServices(readDescriptorSet(), [...names, 'grpc.health.v1.Health'])) {
    server.addService(reflection.definition, reflection.implementation);
  }
  const hostForBind = isIP(host) === 6 ? `[${host}]` : host;
  const boundPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${hostForBind}:${port}`, serverCredentials(tls), (error, bound) =>
      error ? reject(new FailedPreconditionError(`cannot listen on ${hostForBind}:${port}: ${error.message}`)) : resolve(bound),
    );
  });
  const address = `${hostForBind}:${boundPort}`;
  logger.info({ address, services: names, tls: isTlsConfigured(tls) }, 'serving');
  return {
    port: boundPort,
    address,
    health,
    server,
    shutdown(graceMs = 5000) {
      stopping ??= new Promise<void>((resolve) => {
        health.stopWatches();
        const timer = setTimeout(() => {
          forced = true;
          server.forceShutdown();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return stopping;
    },
  };
}

/** Shuts the service down on SIGTERM/SIGINT (graceful), then runs onStopped (close adapters). */
export function serveUntilSignal(
  running: RunningGrpcService,
  logger: Logger,
  onStopped: () => Promise<void> = async () => {},
): void {
  const stop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'shutting down');
    void running
      .shutdown()
      .then(onStopped)
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
