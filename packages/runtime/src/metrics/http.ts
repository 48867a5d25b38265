/**
 * The HTTP endpoint Prometheus scrapes: GET /metrics answers the process registry in the text format,
 * anything else 404 (405 for another method on /metrics).
 */
import { createServer, type Server } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { FailedPreconditionError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { metricsRegistry } from './registry.ts';

export interface MetricsServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly logger: Logger;
}

export interface RunningMetricsServer {
  readonly port: number;
  /** http://host:port/metrics */
  readonly url: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<RunningMetricsServer> {
  const { host, port, logger } = options;
  const registry = metricsRegistry();
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?', 1)[0];
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found; metrics are at /metrics\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('use GET\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        response.writeHead(200, { 'content-type': registry.contentType });
        response.end(request.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'collecting metrics failed');
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('collecting metrics failed; the server log has the details\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new FailedPreconditionError(`cannot serve metrics on ${host}:${port}: ${error.message}`, { cause: error })));
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const url = `http://${isIP(host) === 6 ? `[${host}]` : host}:${bound}/metrics`;
  logger.info({ url }, 'serving metrics');
  let closing: Promise<void> | undefined;
  return {
    port: bound,
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** Starts the metrics endpoint when --metrics-port is set (it is off at 0), on the service's --host. */
export async function startConfiguredMetrics(
  config: { readonly host: string; readonly metricsPort: number },
  logger: Logger,
): Promise<RunningMetricsServer | undefined> {
  return config.metricsPort > 0 ? startMetricsServer({ host: config.host, port: config.metricsPort, logger }) : undefined;
}
