/**
 * A Firecracker API server on a Unix socket, written from the spec for tests: it only answers
 * requests the spec defines, validates bodies against it (400 + fault_message otherwise), keeps
 * the VM's configuration, refuses pre-boot changes after InstanceStart as Firecracker does, and
 * checks every answer it gives against the spec's response shapes.
 */
import { accessSync, constants } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { FirecrackerSpec, type SpecVersion } from './firecracker-spec.ts';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  readonly status: number;
}

export interface FakeFirecrackerOptions {
  readonly socketPath: string;
  readonly id?: string;
  readonly version?: SpecVersion;
  /** Paths in bodies are resolved under this directory (the jail root); '/' outside a jail. */
  readonly root?: string;
  /** Requests ("PUT /drives/rootfs") answered with 400 whatever their body. */
  readonly failOn?: readonly string[];
  /** Called once the guest was asked to shut down (SendCtrlAltDel) and "powered off". */
  readonly onGuestPowerOff?: () => void;
}

/**
 * Requests Firecracker accepts only before InstanceStart although the spec's summary does not say
 * "Pre-boot only" (its runtime API refuses them); the rest of the rule comes from the spec.
 */
const PRE_BOOT_UNMARKED = ['put /logger', 'put /metrics'];

export class FakeFirecrackerApi {
  readonly requests: RecordedRequest[] = [];
  /** Anything the driver sent or the fake answered that the spec does not allow: must stay empty. */
  readonly violations: string[] = [];
  state: 'Not started' | 'Running' = 'Not started';
  readonly #options: FakeFirecrackerOptions;
  readonly #spec: FirecrackerSpec;
  readonly #server: Server;
  readonly #config: {
    'machine-config': { vcpu_count: number; mem_size_mib: number; smt: boolean; track_dirty_pages: boolean };
    'boot-source'?: Record<string, unknown>;
    drives: Map<string, Record<string, unknown>>;
    'network-interfaces': Map<string, Record<string, unknown>>;
    'mmds-config'?: Record<string, unknown>;
    logger?: Record<string, unknown>;
    metrics?: Record<string, unknown>;
  } = {
    'machine-config': { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false },
    drives: new Map(),
    'network-interfaces': new Map(),
  };
  mmds: unknown;

  constructor(options: FakeFirecrackerOptions) {
    this.#options = options;
    this.#spec = FirecrackerSpec.load(options.version ?? '1.16.1');
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.socketPath, () => resolve());
    });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  vmConfig(): Record<string, unknown> {
    const c = this.#config;
    return {
      'machine-config': c['machine-config'],
      drives: [...c.drives.values()],
      'network-interfaces': [...c['network-interfaces'].values()],
      ...(c['boot-source'] ? { 'boot-source': c['boot-source'] } : {}),
      ...(c['mmds-config'] ? { 'mmds-config': c['mmds-config'] } : {}),
      ...(c.logger ? { logger: c.logger } : {}),
      ...(c.metrics ? { metrics: c.metrics } : {}),
    };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    // Firecracker's default --http-api-max-payload-size.
    if (raw.length > 51_200) {
      return this.#answer(res, method, path, undefined, 400, {
        fault_message: `Request payload with size ${raw.length} is larger than the limit of 51200 allowed by server.`,
      });
    }
    const text = raw.toString('utf8');
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      return this.#answer(res, method, path, body, 400, {
        fault_message: `invalid JSON body: ${text.slice(0, 80)}`,
      });
    }
    const [status, answer] = this.#dispatch(method, path, body);
    this.#answer(res, method, path, body, status, answer);
  }

  #answer(
    res: ServerResponse,
    method: string,
    path: string,
    body: unknown,
    status: number,
    answer: unknown,
  ): void {
    this.requests.push({ method, path, body, status });
    if (this.#spec.findOperation(method, path)) {
      for (const problem of this.#spec.validateResponse(method, path, status, answer))
        this.violations.push(`fake answered outside the spec: ${problem}`);
    }
    res.writeHead(status, { 'content-type': 'application/json', server: 'Firecracker API' });
    res.end(answer === undefined ? '' : JSON.stringify(answer));
  }

  #dispatch(method: string, path: string, body: unknown): [number, unknown] {
    const fault = (message: string): [number, unknown] => [400, { fault_message: message }];
    const op = this.#spec.findOperation(method, path);
    if (!op) {
      this.violations.push(`driver sent a request v${this.#spec.version} does not define: ${method} ${path}`);
      return fault(`Invalid request method and/or path: ${method} ${path}.`);
    }
    const problems = this.#spec.validateRequest(method, path, body);
    if (problems.length > 0) {
      this.violations.push(...problems.map((p) => `driver sent an invalid body: ${p}`));
      return fault(`An error occurred when deserializing the json body of a request: ${problems.join('; ')}`);
    }
    if (this.#options.failOn?.includes(`${method} ${path}`))
      return fault(`injected failure for ${method} ${path}`);
    const phase =
      this.#spec.bootPhase(method, path) ??
      (PRE_BOOT_UNMARKED.includes(`${op.method} ${op.template}`) ? 'pre-boot' : undefined);
    if (phase === 'pre-boot' && this.state !== 'Not started')
      return fault('The requested operation is not supported after starting the microVM.');
    if (phase === 'post-boot' && this.state === 'Not started')
      return fault('The requested operation is not supported before starting the microVM.');
    const b = (body ?? {}) as Record<string, unknown>;
    const c = this.#config;
    switch (`${op.method} ${op.template}`) {
      case 'get /':
        return [
          200,
          {
            app_name: 'Firecracker',
            id: this.#options.id ?? 'anonymous-instance',
            state: this.state,
            vmm_version: this.#spec.version,
          },
        ];
      case 'get /version':
        return [200, { firecracker_version: this.#spec.version }];
      case 'get /vm/config':
        return [200, this.vmConfig()];
      case 'get /machine-config':
        return [200, c['machine-config']];
      case 'put /machine-config':
        c['machine-config'] = {
          smt: false,
          track_dirty_pages: false,
          ...(b as { vcpu_count: number; mem_size_mib: number }),
        };
        return [204, undefined];
      case 'put /boot-source':
        if (!this.#exists(b.kernel_image_path))
          return fault(`Kernel Loader: failed to open the kernel image: ${String(b.kernel_image_path)}`);
        if (b.initrd_path !== undefined && !this.#exists(b.initrd_path))
          return fault(`Failed to load initrd: ${String(b.initrd_path)}`);
        c['boot-source'] = b;
        return [204, undefined];
      case 'put /drives/{drive_id}':
        if (op.pathParams.drive_id !== b.drive_id)
          return fault('The id from the path does not match the id from the body!');
        if (
          !this.#exists(
            b.path_on_host,
            b.is_read_only === true ? constants.R_OK : constants.R_OK | constants.W_OK,
          )
        ) {
          return fault(
            `Unable to create the block device: cannot open ${String(b.path_on_host)} (permission or missing)`,
          );
        }
        c.drives.set(String(b.drive_id), b);
        return [204, undefined];
      case 'put /network-interfaces/{iface_id}':
        if (op.pathParams.iface_id !== b.iface_id)
          return fault('The id from the path does not match the id from the body!');
        // Firecracker opens the tap with TUNSETIFF: the name must fit IFNAMSIZ (16 bytes with the NUL).
        if (Buffer.byteLength(String(b.host_dev_name)) > 15)
          return fault(
            `Could not create the network device: Open tap device failed: Invalid TAP name ${String(b.host_dev_name)}`,
          );
        if (b.guest_mac !== undefined && !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(String(b.guest_mac)))
          return fault(
            `An error occurred when deserializing the json body of a request: invalid MAC address ${String(b.guest_mac)}`,
          );
        c['network-interfaces'].set(String(b.iface_id), b);
        return [204, undefined];
      case 'put /mmds/config':
        for (const iface of b.network_interfaces as string[])
          if (!c['network-interfaces'].has(iface))
            return fault(
              `The MMDS could not be configured to work on interface ${iface}: no such interface.`,
            );
        c['mmds-config'] = b;
        return [204, undefined];
      case 'put /mmds':
        this.mmds = body;
        return [204, undefined];
      case 'get /mmds':
        return this.mmds === undefined
          ? [404, { fault_message: 'The MMDS data store is not initialized.' }]
          : [200, this.mmds];
      case 'put /logger':
        if (!this.#exists(b.log_path, constants.W_OK))
          return fault(`Failed to open logger file ${String(b.log_path)}`);
        c.logger = b;
        return [204, undefined];
      case 'put /metrics':
        if (c.metrics) return fault('Reinitialization of metrics not allowed.');
        if (!this.#exists(b.metrics_path, constants.W_OK))
          return fault(`Failed to open metrics file ${String(b.metrics_path)}`);
        c.metrics = b;
        return [204, undefined];
      case 'put /actions':
        return this.#action(String(b.action_type));
      default:
        return fault(`the fake does not implement ${method} ${op.template}`);
    }
  }

  #action(action: string): [number, unknown] {
    if (action === 'InstanceStart') {
      if (this.state !== 'Not started') return [400, { fault_message: 'The microVM is already running.' }];
      if (!this.#config['boot-source'])
        return [400, { fault_message: 'Cannot start microvm without kernel configuration.' }];
      this.state = 'Running';
      return [204, undefined];
    }
    if (action === 'SendCtrlAltDel') {
      if (this.state !== 'Running') return [400, { fault_message: 'The microVM is not running.' }];
      setImmediate(() => this.#options.onGuestPowerOff?.());
      return [204, undefined];
    }
    return [204, undefined];
  }

  /** Whether Firecracker (this process, after its uid drop) could open the path. */
  #exists(path: unknown, mode: number = constants.R_OK): boolean {
    if (typeof path !== 'string') return false;
    try {
      accessSync(join(this.#options.root ?? '/', path), mode);
      return true;
    } catch {
      return false;
    }
  }
}
