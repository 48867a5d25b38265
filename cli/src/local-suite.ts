/**
 * The four services on one machine, each its own process on 127.0.0.1 with a free port, as an operator
 * would run them; used by `kindling quickstart` and the end-to-end test. Runs in the caller's network
 * namespace: the quickstart gives it one of its own so the CNI bridge never lands in the host's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface LocalSuiteOptions {
  /** Scratch directory for state, caches and CNI config; the caller removes it. */
  readonly workDir: string;
  /** Where cached base-OS builds live (shared across runs). */
  readonly cacheDir: string;
  /** Subnet of the suite's CNI bridge network. */
  readonly subnet: string;
  readonly log?: (line: string) => void;
  /** NATS for the planner's and the vmm's events and the planner's records (in-process bus otherwise). */
  readonly natsUrl?: string;
  /** More arguments for a service, after the suite's own (a later flag wins). */
  readonly extraArgs?: Partial<Record<ServiceName, string[]>>;
}

export interface LocalSuite {
  readonly planner: string;
  readonly fetcher: string;
  readonly vmm: string;
  readonly provisioner: string;
  /** Stops every service (SIGTERM, then SIGKILL after 20 s) and waits for them. */
  stop(): Promise<void>;
  /**
   * Stops one service (SIGKILL: it dies as in a crash; SIGTERM: it shuts down gracefully), waits
   * `downMs`, and starts it again on the same address with the same arguments.
   */
  restart(name: ServiceName, signal: 'SIGKILL' | 'SIGTERM', downMs?: number): Promise<void>;
}

export interface StartedService {
  readonly child: ChildProcess;
  readonly address: string;
}

export type ServiceName = 'planner' | 'fetcher' | 'vmm' | 'provisioner';

/** The entry point of a service (services/<name>/src/main.ts); its /proc cmdline contains this path. */
export function serviceMain(name: string): string {
  return join(repoRoot, `services/${name}/src/main.ts`);
}

/** How a service is run: node with tsx on its main.ts, from the repository root. */
export function serviceCommandLine(name: string, args: string[]): { file: string; args: string[]; cwd: string } {
  return { file: process.execPath, args: ['--import', 'tsx', serviceMain(name), ...args], cwd: repoRoot };
}

/** The vmm of a single-host suite: its state, the base-OS cache it registers, the CNI network VMs join. */
export function vmmArgs(options: { stateDir: string; cacheDir: string; network: string; cniConfDir?: string; netnsPrefix?: string; fetcherCacheDir?: string }): string[] {
  return [
    '--state-dir', options.stateDir,
    '--cache-dir', options.cacheDir,
    '--network', options.network,
    ...(options.cniConfDir !== undefined ? ['--cni-conf-dir', options.cniConfDir] : []),
    ...(options.netnsPrefix !== undefined ? ['--netns-prefix', options.netnsPrefix] : []),
    // same host: transfer-disk writes read the fetcher's blobs from disk instead of through the planner
    ...(options.fetcherCacheDir !== undefined ? ['--fetcher-cache-dir', options.fetcherCacheDir] : []),
  ];
}

export function fetcherArgs(cacheDir: string): string[] {
  return ['--cache-dir', cacheDir];
}

/** Same host: the provisioner reads the fetcher's blobs from disk instead of over gRPC. */
export function provisionerArgs(fetcher: string, fetcherCacheDir: string): string[] {
  return ['--fetcher-address', fetcher, '--fetcher-cache-dir', fetcherCacheDir];
}

export function plannerArgs(stateDir: string, peers: { fetcher: string; vmm: string; provisioner: string }): string[] {
  return ['--state-dir', stateDir, '--fetcher-address', peers.fetcher, '--vmm-address', peers.vmm, '--provisioner-address', peers.provisioner];
}

/**
 * Starts services/<name>/src/main.ts on a free port and resolves with the address from its "serving"
 * log line; its log goes to logFile when it exits.
 */
export async function startServiceProcess(
  name: string,
  args: string[],
  options: { logFile?: string; env?: NodeJS.ProcessEnv; port?: number } = {},
): Promise<StartedService> {
  const command = serviceCommandLine(name, ['--port', String(options.port ?? 0), ...args]);
  const child = spawn(command.file, command.args, {
    cwd: command.cwd,
    env: { ...process.env, ...options.env, KINDLING_LOG_LEVEL: process.env.KINDLING_LOG_LEVEL ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logLines: string[] = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start serving within 120 s: ${stderr}`)), 120_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      logLines.push(line);
      if (logLines.length > 5000) logLines.shift();
      try {
        const entry = JSON.parse(line) as { msg?: string; address?: string };
        if (entry.msg === 'serving' && entry.address) {
          clearTimeout(timer);
          resolve(entry.address);
        }
      } catch {}
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code} before serving: ${stderr.trim()}`));
    });
  });
  const { logFile } = options;
  if (logFile) child.once('exit', () => void writeFile(logFile, `${logLines.join('\n')}\n${stderr}`).catch(() => {}));
  return { child, address };
}

export async function stopServiceProcess(service: StartedService): Promise<void> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => service.child.once('exit', () => resolve()));
  service.child.kill('SIGTERM');
  const timer = setTimeout(() => service.child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

/** A CNI network for the suite's VMs: bridge + host-local + firewall + kindling's tap plugin. */
export async function writeSuiteConflist(confDir: string, dataDir: string, subnet: string): Promise<string> {
  const name = 'kindling-local';
  await mkdir(confDir, { recursive: true });
  const conflist = {
    cniVersion: '1.0.0',
    name,
    plugins: [
      {
        type: 'bridge',
        bridge: 'kindling-br0',
        isGateway: true,
        isDefaultGateway: false,
        ipMasq: false,
        ipam: { type: 'host-local', subnet, dataDir },
      },
      { type: 'firewall' },
      { type: 'tc-redirect-tap' },
    ],
  };
  await writeFile(join(confDir, `${name}.conflist`), `${JSON.stringify(conflist, null, 2)}\n`);
  return name;
}

export async function startLocalSuite(options: LocalSuiteOptions): Promise<LocalSuite> {
  const { workDir, cacheDir, log = () => {} } = options;
  const confDir = join(workDir, 'cni/conf.d');
  const network = await writeSuiteConflist(confDir, join(workDir, 'cni/ipam'), options.subnet);
  const logs = join(workDir, 'logs');
  await mkdir(logs, { recursive: true });
  const running = new Map<ServiceName, { service: StartedService; args: string[]; starts: number }>();
  const stopAll = async (): Promise<void> => {
    for (const { service } of [...running.values()].reverse()) await stopServiceProcess(service);
  };
  const launch = async (name: ServiceName, args: string[], starts: number, port?: number): Promise<string> => {
    // each start of a service logs to its own file: a restart must not overwrite the crashed one's log
    const logFile = join(logs, starts === 1 ? `${name}.log` : `${name}-${starts}.log`);
    const service = await startServiceProcess(name, args, { logFile, ...(port !== undefined ? { port } : {}) });
    running.set(name, { service, args, starts });
    log(`${name} serving on ${service.address}`);
    return service.address;
  };
  const nats = options.natsUrl ? ['--nats-url', options.natsUrl] : [];
  const withExtra = (name: ServiceName, args: string[]): string[] => [...args, ...(options.extraArgs?.[name] ?? [])];
  try {
    const fetcherCache = join(workDir, 'fetcher');
    const vmm = await launch('vmm', withExtra('vmm', [...vmmArgs({ stateDir: join(workDir, 'vmm'), cacheDir, network, cniConfDir: confDir, netnsPrefix: `kindling-${process.pid}-`, fetcherCacheDir: fetcherCache }), ...nats]), 1);
    const fetcher = await launch('fetcher', withExtra('fetcher', fetcherArgs(fetcherCache)), 1);
    const provisioner = await launch('provisioner', withExtra('provisioner', provisionerArgs(fetcher, fetcherCache)), 1);
    const planner = await launch('planner', withExtra('planner', [...plannerArgs(join(workDir, 'planner'), { fetcher, vmm, provisioner }), ...nats]), 1);
    const restart = async (name: ServiceName, signal: 'SIGKILL' | 'SIGTERM', downMs = 0): Promise<void> => {
      const current = running.get(name)!;
      const port = Number(current.service.address.slice(current.service.address.lastIndexOf(':') + 1));
      if (signal === 'SIGKILL') {
        const exited = new Promise<void>((resolve) => current.service.child.once('exit', () => resolve()));
        current.service.child.kill('SIGKILL');
        await exited;
      } else {
        await stopServiceProcess(current.service);
      }
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await launch(name, current.args, current.starts + 1, port);
    };
    return { planner, fetcher, vmm, provisioner, stop: stopAll, restart };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
