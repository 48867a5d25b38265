/**
 * Firecracker's HTTP API over its Unix socket (contract: Firecracker's swagger spec v1.16.1, vendored in test/fixtures/firecracker,
 * requests also valid for v1.7.0). Every non-2xx answer becomes a FirecrackerApiError naming the
 * request and Firecracker's fault_message.
 */
import { Client } from 'undici';
import { FirecrackerApiError, FirecrackerDriverError } from './errors.ts';
import type { DriveRateLimiter } from './config.ts';

export interface MachineConfiguration {
  readonly vcpu_count: number;
  readonly mem_size_mib: number;
  readonly smt?: boolean;
}

export interface BootSource {
  readonly kernel_image_path: string;
  readonly initrd_path?: string;
  readonly boot_args?: string;
}

export interface Drive {
  readonly drive_id: string;
  readonly path_on_host: string;
  readonly is_root_device: boolean;
  readonly is_read_only: boolean;
  readonly rate_limiter?: DriveRateLimiter;
}

export interface NetworkInterface {
  readonly iface_id: string;
  readonly host_dev_name: string;
  readonly guest_mac?: string;
}

export interface MmdsConfig {
  readonly version: 'V1' | 'V2';
  readonly network_interfaces: readonly string[];
  readonly ipv4_address?: string;
}

export interface Logger {
  readonly log_path: string;
  readonly level?: string;
  readonly show_level?: boolean;
  readonly show_log_origin?: boolean;
}

export interface Metrics {
  readonly metrics_path: string;
}

export type InstanceAction = 'InstanceStart' | 'SendCtrlAltDel' | 'FlushMetrics';

/** GET / (InstanceInfo). */
export interface InstanceInfo {
  readonly app_name: string;
  readonly id: string;
  readonly state: 'Not started' | 'Running' | 'Paused';
  readonly vmm_version: string;
}

/** GET /version (FirecrackerVersion). */
export interface FirecrackerVersion {
  readonly firecracker_version: string;
}

/** GET /vm/config (FullVmConfiguration): only the parts the driver reads back are typed. */
export interface FullVmConfiguration {
  readonly 'machine-config'?: MachineConfiguration;
  readonly 'boot-source'?: BootSource;
  readonly drives?: readonly Drive[];
  readonly 'network-interfaces'?: readonly NetworkInterface[];
  readonly 'mmds-config'?: MmdsConfig;
  readonly logger?: Logger;
  readonly metrics?: Metrics;
  readonly [other: string]: unknown;
}

export class FirecrackerApiClient {
  readonly socketPath: string;
  readonly #client: Client;
  readonly #timeoutMs: number;

  constructor(socketPath: string, options: { timeoutMs?: number } = {}) {
    this.socketPath = socketPath;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#client = new Client('http://localhost', { socketPath, pipelining: 0 });
  }

  async close(): Promise<void> {
    await this.#client.close().catch(() => this.#client.destroy());
  }

  /** Sends one request; resolves to the parsed JSON body (undefined for 204). */
  async request(
    method: 'GET' | 'PUT' | 'PATCH',
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const name = `${method} ${path}`;
    let response;
    try {
      response = await this.#client.request({
        method,
        path,
        headers: {
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        ...(signal ? { signal } : {}),
      });
    } catch (cause) {
      throw new FirecrackerDriverError(
        'UNAVAILABLE',
        `firecracker API ${name} on ${this.socketPath} failed: ${(cause as Error).message}`,
        {
          cause,
          details: { request: name, socketPath: this.socketPath },
        },
      );
    }
    const text = await response.body.text();
    const parsed = text === '' ? undefined : safeJson(text);
    if (response.statusCode >= 200 && response.statusCode < 300) return parsed;
    const fault =
      typeof parsed === 'object' && parsed !== null && 'fault_message' in parsed
        ? String(parsed.fault_message)
        : text;
    throw new FirecrackerApiError(name, response.statusCode, fault, this.socketPath);
  }

  getVersion(signal?: AbortSignal): Promise<FirecrackerVersion> {
    return this.request('GET', '/version', undefined, signal) as Promise<FirecrackerVersion>;
  }
  describeInstance(signal?: AbortSignal): Promise<InstanceInfo> {
    return this.request('GET', '/', undefined, signal) as Promise<InstanceInfo>;
  }
  getVmConfig(signal?: AbortSignal): Promise<FullVmConfiguration> {
    return this.request('GET', '/vm/config', undefined, signal) as Promise<FullVmConfiguration>;
  }
  async putLogger(body: Logger, signal?: AbortSignal): Promise<void> {
    await this.request('PUT', '/logger', body, signal);
  }
  async putMetrics(body: Metrics, signal?: AbortSignal): Promise<void> {
    await this.request('PUT', '/metrics', body, signal);
  }
  async putMachineConfig(body: MachineConfiguration, signal?: AbortSignal): Promise<void> {
    await this.request('PUT', '/machine-config', body, signal);
  }
  async putBootSource(body: BootSource, signal?: AbortSignal): Promise<void> {
    await this.request('PUT', '/boot-source', body, signal);
  }
  async putDrive(body: Drive, signal?: AbortSignal): Promise<void> {
    await this.request('PUT', `/drives/${encodeURIComponent(body.drive_id)}`, body, signal);
  }
  async putNetworkInterface(body: NetworkInterface, signal?: AbortSignal): Promise<void> {
    await this.request('PUT', `/network-interfaces/${encodeURIComponent(body.iface_id)}`, body, signal);
  }
  async putMmdsConfig(body: MmdsConfig, signal?: AbortSignal): Promise<void> {
    await this.request('PUT', '/mmds/config', body, signal);
  }
  async putMmds(body: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    await this.request('PUT', '/mmds', body, signal);
  }
  async action(action: InstanceAction, signal?: AbortSignal): Promise<void> {
    await this.request('PUT', '/actions', { action_type: action }, signal);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
