/**
 * VmHostPlacement over a static list of vmm addresses, one GrpcBuildVmHost each. A build is placed
 * by asking every host GetHostInfo at once (each within the placement timeout): hosts that do not
 * answer, and hosts lacking one of the build's images (ListImages; they are skipped, not given the
 * image), are left out with the reason logged; of the rest, the one with the most free memory, then
 * vCPUs, takes the whole build (domain/host-ranking.ts).
 */
import type { Image } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { FailedPreconditionError, UnavailableError, type Logger, type TlsFiles } from '@kindling/runtime';
import { freeCapacity, missingImages, rankByFreeCapacity, type HostCapacity } from '../../domain/host-ranking.ts';
import type { BuildVmHost } from '../../ports/build-services.ts';
import type { BuildRequirements, VmHostPlacement } from '../../ports/vm-host-placement.ts';
import type { VmmEndpoint } from '../../vmm-endpoints.ts';
import { GrpcBuildVmHost } from '../clients/vmm-client.ts';

interface Pooled {
  readonly endpoint: VmmEndpoint;
  readonly host: GrpcBuildVmHost;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface VmHostPoolOptions {
  readonly tls?: TlsFiles;
  /** How long GetHostInfo and ListImages may take per host before it is skipped. */
  readonly timeoutMs: number;
  readonly log: Logger;
}

export class VmHostPool implements VmHostPlacement {
  private readonly pool: readonly Pooled[];

  constructor(
    endpoints: readonly VmmEndpoint[],
    private readonly options: VmHostPoolOptions,
  ) {
    if (endpoints.length === 0) throw new Error('a VM host pool needs at least one vmm address');
    this.pool = endpoints.map((endpoint) => ({ endpoint, host: new GrpcBuildVmHost(endpoint.name, endpoint.address, options.tls) }));
  }

  /** Every configured host, in the order given. */
  get hosts(): BuildVmHost[] {
    return this.pool.map((p) => p.host);
  }

  async place(requirements: BuildRequirements, signal: AbortSignal): Promise<BuildVmHost> {
    const refused: string[] = [];
    const usable: { pooled: Pooled; capacity: HostCapacity }[] = [];
    await Promise.all(
      this.pool.map(async (pooled) => {
        const info = await this.ask(pooled, signal, (s) => pooled.host.hostInfo(s));
        if (!info.ok) return void refused.push(this.refuse(pooled, `unreachable: ${info.reason}`));
        if (requirements.images.length > 0) {
          const images = await this.ask(pooled, signal, (s) => pooled.host.listImages(s));
          if (!images.ok) return void refused.push(this.refuse(pooled, `cannot list its images: ${images.reason}`));
          const missing = missingImages(requirements.images, images.value);
          if (missing.length > 0) return void refused.push(this.refuse(pooled, `lacks the image${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`));
        }
        const v = info.value;
        usable.push({ pooled, capacity: { cpus: v.cpus, memoryBytes: Number(v.memoryBytes), vcpusAllocated: v.vcpusAllocated, memoryAllocatedMib: Number(v.memoryAllocatedMib) } });
      }),
    );
    signal.throwIfAborted();
    // ranked in the configured order among equals, whichever answered first
    const order = new Map(this.pool.map((p, i) => [p, i]));
    const best = rankByFreeCapacity(usable.sort((a, b) => order.get(a.pooled)! - order.get(b.pooled)!))[0];
    if (!best) {
      const message = `no VM host can take the build: ${refused.sort().join('; ')}`;
      throw refused.every((r) => / unreachable: /.test(r)) ? new UnavailableError(message) : new FailedPreconditionError(message);
    }
    const free = freeCapacity(best.capacity);
    this.options.log.info({ vmmHost: best.pooled.endpoint.name, freeVcpus: free.vcpus, freeMemoryBytes: free.memoryBytes, candidates: usable.length }, 'build placed');
    return best.pooled.host;
  }

  async listImages(signal: AbortSignal, options: { includeInternal?: boolean } = {}): Promise<Image[]> {
    const listed = await Promise.all(this.pool.map((pooled) => this.ask(pooled, signal, (s) => pooled.host.listImages(s, options))));
    signal.throwIfAborted();
    const failures = listed.flatMap((outcome, i) => (outcome.ok ? [] : [this.refuse(this.pool[i]!, `unreachable: ${outcome.reason}`)]));
    if (failures.length === this.pool.length) throw new UnavailableError(`no VM host answers ListImages: ${failures.join('; ')}`);
    const seen = new Set<string>();
    return listed.flatMap((outcome) => (outcome.ok ? outcome.value : [])).filter((image) => {
      const ref = `${image.name}:${image.tag}`;
      if (seen.has(ref)) return false;
      seen.add(ref);
      return true;
    });
  }

  async reachableHosts(signal: AbortSignal): Promise<BuildVmHost[]> {
    const answers = await Promise.all(this.pool.map((pooled) => this.ask(pooled, signal, (s) => pooled.host.hostInfo(s))));
    signal.throwIfAborted();
    return this.pool.filter((pooled, i) => {
      const answer = answers[i]!;
      if (!answer.ok) this.refuse(pooled, `unreachable: ${answer.reason}`);
      return answer.ok;
    }).map((p) => p.host);
  }

  close(): void {
    for (const { host } of this.pool) host.close();
  }

  /** The call's result, or why the host did not give one within the timeout; throws only the build's own abort. */
  private async ask<T>(pooled: Pooled, signal: AbortSignal, call: (signal: AbortSignal) => Promise<T>): Promise<Outcome<T>> {
    const deadline = AbortSignal.timeout(this.options.timeoutMs);
    try {
      return { ok: true, value: await call(AbortSignal.any([signal, deadline])) };
    } catch (error) {
      signal.throwIfAborted();
      if (deadline.aborted) return { ok: false, reason: `no answer within ${this.options.timeoutMs} ms` };
      return { ok: false, reason: (error as Error).message ?? String(error) };
    }
  }

  /** Logs why the host is left out and says it the way the build's error does. */
  private refuse(pooled: Pooled, reason: string): string {
    const { name, address } = pooled.endpoint;
    this.options.log.warn({ vmmHost: name, address, reason }, 'VM host skipped');
    return name === address ? `${name}: ${reason}` : `${name} (${address}): ${reason}`;
  }
}
