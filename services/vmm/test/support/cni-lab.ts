/**
 * A CNI network for tests that never touches the machine's own namespace: a "host" netns owned by the
 * test holds the bridge, its gateway address and the firewall rules (the plugins run inside it), and each
 * VM gets a netns of its own. Everything lives under a temp dir and is removed by cleanup().
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CniNetwork } from '../../src/adapters/cni/cni-network.ts';
import { createNetns, deleteNetns, netnsPath } from '../../src/adapters/cni/netns.ts';
import { KINDLING_PLUGIN_DIR } from '../../src/adapters/cni/plugin-exec.ts';

export const CNI_PLUGIN_DIR = '/usr/lib/cni';

/** Why CNI tests cannot run here, or undefined when they can. */
export function cniLabUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, bridges)';
  for (const p of ['bridge', 'host-local', 'firewall'])
    if (!existsSync(path.join(CNI_PLUGIN_DIR, p)))
      return `needs ${CNI_PLUGIN_DIR}/${p} (apt-get install containernetworking-plugins)`;
  for (const tool of ['ip', 'tc', 'nsenter', 'iptables']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `needs ${tool}`;
    }
  }
  return undefined;
}

export interface CniLabNetworkSpec {
  readonly name: string;
  readonly cniVersion: string;
  /** Third octet of 10.231.X.0/24. */
  readonly subnetOctet: number;
  /** Plugin type of the tap step. */
  readonly tapType?: string;
  /** Replace the plugins entirely (e.g. a broken chain for error tests). */
  readonly plugins?: Record<string, unknown>[];
}

export class CniLab {
  readonly vmNetns: string[] = [];
  private constructor(
    readonly dir: string,
    readonly id: string,
    readonly hostNetns: string,
  ) {}

  static async create(): Promise<CniLab> {
    const id = Math.random().toString(36).slice(2, 8);
    const dir = await mkdtemp(path.join(tmpdir(), 'kindling-test-cni-'));
    const hostNetns = `kindling-test-host-${id}`;
    await createNetns(hostNetns);
    // Traffic between VMs on the bridge is forwarded inside the host netns only.
    execFileSync('ip', ['netns', 'exec', hostNetns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    const lab = new CniLab(dir, id, hostNetns);
    await mkdir(lab.confDir, { recursive: true });
    return lab;
  }

  get confDir(): string {
    return path.join(this.dir, 'conf.d');
  }
  get cacheDir(): string {
    return path.join(this.dir, 'cache');
  }
  get dataDir(): string {
    return path.join(this.dir, 'host-local');
  }
  get hostNetnsPath(): string {
    return netnsPath(this.hostNetns);
  }
  bridgeName(spec: CniLabNetworkSpec): string {
    return `ktbr${spec.subnetOctet}`;
  }

  async addNetwork(spec: CniLabNetworkSpec): Promise<string> {
    const plugins = spec.plugins ?? [
      {
        type: 'bridge',
        bridge: this.bridgeName(spec),
        isGateway: true,
        isDefaultGateway: false,
        ipMasq: false,
        ipam: { type: 'host-local', subnet: `10.231.${spec.subnetOctet}.0/24`, dataDir: this.dataDir },
      },
      { type: 'firewall' },
      { type: spec.tapType ?? 'kindling-tap' },
    ];
    const file = path.join(this.confDir, `${spec.name}.conflist`);
    await writeFile(file, JSON.stringify({ cniVersion: spec.cniVersion, name: spec.name, plugins }, null, 2));
    return file;
  }

  network(name: string): CniNetwork {
    return new CniNetwork({
      networkName: name,
      confDir: this.confDir,
      cacheDir: this.cacheDir,
      binDirs: [CNI_PLUGIN_DIR, KINDLING_PLUGIN_DIR],
      hostNetnsPath: this.hostNetnsPath,
    });
  }

  async createVmNetns(label: string): Promise<string> {
    const name = `kindling-test-vm-${this.id}-${label}`;
    this.vmNetns.push(name);
    return createNetns(name);
  }

  /** Runs a command inside the host netns (e.g. ssh to a guest); returns stdout. */
  execInHost(argv: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.hostNetns, ...argv], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  async cleanup(): Promise<void> {
    for (const ns of this.vmNetns) await deleteNetns(ns).catch(() => undefined);
    await deleteNetns(this.hostNetns).catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}
