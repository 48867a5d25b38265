/**
 * grpc.health.v1: every service starts NOT_SERVING and turns SERVING when its main says it is ready
 * (e.g. after reconciling state). The empty service name stands for the whole server.
 */
import { EventEmitter } from 'node:events';
import { status as Status, type ServiceDefinition } from '@grpc/grpc-js';
import {
  HealthCheckResponse_ServingStatus as Serving,
  HealthService,
  type HealthServer,
} from '@kindling/proto/gen/grpc/health/v1/health.ts';

export class HealthRegistry {
  private readonly statuses = new Map<string, Serving>();
  private readonly changes = new EventEmitter();
  private readonly watches = new Set<{ end(): void }>();

  constructor(serviceNames: readonly string[]) {
    for (const name of ['', ...serviceNames]) this.statuses.set(name, Serving.NOT_SERVING);
    this.changes.setMaxListeners(0);
  }

  /** Marks the server and all its services serving or not. */
  setServing(serving: boolean): void {
    for (const name of this.statuses.keys()) this.set(name, serving ? Serving.SERVING : Serving.NOT_SERVING);
  }

  set(service: string, status: Serving): void {
    this.statuses.set(service, status);
    this.changes.emit('change', service, status);
  }

  /**
   * Shutdown: every watcher gets NOT_SERVING, then its stream ends (OK), so open Watch streams (load
   * balancers, probes) do not hold a graceful drain until its deadline.
   */
  stopWatches(): void {
    this.setServing(false);
    for (const watch of this.watches) watch.end();
    this.watches.clear();
  }

  get(service: string): Serving | undefined {
    return this.statuses.get(service);
  }

  implementation(): HealthServer {
    return {
      check: (call, callback) => {
        const current = this.statuses.get(call.request.service);
        if (current === undefined) {
          callback({ code: Status.NOT_FOUND, details: `unknown service "${call.request.service}"` });
          return;
        }
        callback(null, { status: current });
      },
      list: (_call, callback) => {
        callback(null, {
          statuses: Object.fromEntries([...this.statuses].map(([name, status]) => [name, { status }])),
        });
      },
      watch: (call) => {
        const service = call.request.service;
        call.write({ status: this.statuses.get(service) ?? Serving.SERVICE_UNKNOWN });
        const onChange = (name: string, status: Serving): void => {
          if (name === service) call.write({ status });
        };
        this.changes.on('change', onChange);
        const watch = {
          end: (): void => {
            this.changes.off('change', onChange);
            call.end();
          },
        };
        this.watches.add(watch);
        const forget = (): void => {
          this.changes.off('change', onChange);
          this.watches.delete(watch);
        };
        call.on('cancelled', forget);
        call.on('close', forget);
      },
    };
  }

  definition(): ServiceDefinition {
    return HealthService as ServiceDefinition;
  }
}
