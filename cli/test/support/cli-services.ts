/**
 * What the CLI tests run against: the kindling CLI as a child process, and real vmm and planner
 * processes on 127.0.0.1 (startServiceProcess, as an operator runs them) over temp state dirs; for a
 * vmm whose VMs get a network, a CNI bridge in a netns the test owns (never the machine's own).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { ImageMetadata } from '@kindling/proto/gen/kindling/image/v1/image.ts';
import { VmmServiceClient, type ImportImageResponse, type ListVmsResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { unaryCall } from '@kindling/runtime';
import { freePort } from '@kindling/runtime/testing';
import { createNetns, deleteNetns, netnsPath } from '@kindling/vmm/cni';
import { startServiceProcess, stopServiceProcess, writeSuiteConflist } from '../../src/local-suite.ts';

const cliMain = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `kindling args...` (no KINDLING_*_ADDR from the environment); stdin is closed unless given. */
export function spawnKindling(args: string[], stdin?: string): { child: ChildProcess; result: Promise<CliResult> } {
  const env = { ...process.env, KINDLING_PLANNER_ADDR: '', KINDLING_VMM_ADDR: '', KINDLING_FETCHER_ADDR: '' };
  const child = spawn(process.execPath, ['--import', 'tsx', cliMain, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin!.end(stdin ?? '');
  const result = new Promise<CliResult>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return { child, result };
}

export const kindling = (args: string[], stdin?: string): Promise<CliResult> => spawnKindling(args, stdin).result;

/** A temp dir removed after the test. */
export function tempDir(t: TestContext, label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `kindling-cli-${label}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A CNI network (bridge + host-local + firewall + tap, as the local suite's) whose bridge lives in `netns`. */
export interface TestNetwork {
  /** The conflist name, for `kindling run --network`. */
  readonly name: string;
  /** The test-owned netns holding the bridge and its gateway address: the VMs' "host" side. */
  readonly netns: string;
  readonly subnet: string;
}

export interface TestVmm {
  readonly address: string;
  readonly stateDir: string;
  /** A client for the test's own setup (importing images), not for what the CLI is tested on. */
  readonly client: VmmServiceClient;
  /** Set when started with { network: true }; VMs join it only when asked (`run --network`). */
  readonly network?: TestNetwork;
}

/** The plugins a test network needs, or why it cannot have one here. */
export function networkUnavailable(): string | false {
  try {
    execFileSync('sh', ['-c', 'command -v ip && command -v iptables && test -x /usr/lib/cni/bridge && test -x /usr/lib/cni/host-local && test -x /usr/lib/cni/firewall'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'needs ip, iptables and the CNI plugins bridge, host-local and firewall in /usr/lib/cni (containernetworking-plugins)';
  }
}

/**
 * A vmm process on the qemu driver and no base OS unless baseOsCacheDir is given (then the cached builds
 * there are registered, kernels included). Its VMs get no network unless options.network: then a CNI
 * network is set up whose plugins run in a netns made for this vmm (the bridge and gateway live there,
 * nothing on the machine's own network), and VMs started with `--network <name>` join it. After the
 * test, every VM left is deleted (qemu killed, CNI DEL), then the vmm stops and the netns goes.
 */
export async function startVmm(t: TestContext, dir: string, baseOsCacheDir?: string, options: { network?: boolean } = {}): Promise<TestVmm> {
  const stateDir = join(dir, 'vmm');
  for (const sub of ['cni-conf', 'no-cni-plugins']) mkdirSync(join(dir, sub), { recursive: true });
  let network: TestNetwork | undefined;
  if (options.network) {
    // Not under the vmm's --netns-prefix: that is for the VMs' own netns.
    const netns = `kindling-clinet-${process.pid}`;
    await createNetns(netns);
    execFileSync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    const subnet = '10.233.7.0/24';
    network = { name: await writeSuiteConflist(join(dir, 'cni-conf'), join(dir, 'cni-ipam'), subnet), netns, subnet };
  }
  const service = await startServiceProcess(
    'vmm',
    [
      `--state-dir=${stateDir}`,
      `--cache-dir=${baseOsCacheDir ?? join(dir, 'no-cache')}`,
      `--register-base-os=${baseOsCacheDir !== undefined}`,
      `--cni-conf-dir=${join(dir, 'cni-conf')}`,
      ...(network ? [`--cni-host-netns=${netnsPath(network.netns)}`] : [`--cni-bin-path=${join(dir, 'no-cni-plugins')}`]),
      `--netns-prefix=kindling-clitest-`,
      '--host-name=clitest',
    ],
    { env: { KINDLING_LOG_LEVEL: 'warn' } },
  ).catch(async (error: unknown) => {
    if (network) await deleteNetns(network.netns).catch(() => {});
    throw error;
  });
  const client = new VmmServiceClient(service.address, credentials.createInsecure());
  t.after(async () => {
    const { vms } = await unaryCall<ListVmsResponse>('vmm', (cb) => client.listVms({ state: 0, buildId: '' }, cb)).catch(() => ({ vms: [] }));
    for (const vm of vms) await unaryCall<unknown>('vmm', (cb) => client.deleteVm({ vmId: vm.id }, cb)).catch(() => {});
    client.close();
    await stopServiceProcess(service);
    if (network) await deleteNetns(network.netns).catch(() => {});
  });
  return { address: service.address, stateDir, client, ...(network ? { network } : {}) };
}

/**
 * An HTTP GET of url from inside netns (a node child under `ip netns exec`), retried until it answers
 * or timeoutMs pass: the guest's server may not be listening yet when its console shows it booted.
 */
export async function httpGetInNetns(netns: string, url: string, timeoutMs = 120_000): Promise<{ status: number; body: string }> {
  const script = `
    const [url, timeoutMs] = process.argv.slice(1);
    const deadline = Date.now() + Number(timeoutMs);
    let last;
    while (Date.now() < deadline) {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(10000) });
        process.stdout.write(JSON.stringify({ status: response.status, body: await response.text() }));
        process.exit(0);
      } catch (error) {
        last = error;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
    process.stderr.write(\`no answer from \${url} within \${timeoutMs} ms: \${last?.cause?.message ?? last?.message}\n\`);
    process.exit(1);`;
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '--input-type=module', '-e', script, url, String(timeoutMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`GET ${url} in netns ${netns}: exit ${code}: ${stderr.trim()}`);
  return JSON.parse(stdout) as { status: number; body: string };
}

/** A planner process whose VM host is vmmAddress; the fetcher and provisioner are ports nothing listens on. */
export async function startPlanner(t: TestContext, vmmAddress: string): Promise<string> {
  const unreachable = `127.0.0.1:${await freePort()}`;
  // its build records stay with this test, not in /var/lib/kindling/planner for the next run to list
  const stateDir = mkdtempSync(join(tmpdir(), 'kindling-cli-planner-'));
  const service = await startServiceProcess(
    'planner',
    [`--state-dir=${stateDir}`, `--vmm-address=${vmmAddress}`, '--vmm-host-name=clitest', `--fetcher-address=${unreachable}`, `--provisioner-address=${unreachable}`],
    { env: { KINDLING_LOG_LEVEL: 'warn' } },
  ).catch((error: unknown) => {
    rmSync(stateDir, { recursive: true, force: true });
    throw error;
  });
  t.after(async () => {
    await stopServiceProcess(service);
    rmSync(stateDir, { recursive: true, force: true });
  });
  return service.address;
}

/** An ext4 filesystem of sizeMiB holding only an /sbin/init stub (mkfs.ext4 -d), for images never booted. */
export function makeExt4(dir: string, name: string, sizeMiB = 8): string {
  const path = join(dir, `${name}.ext4`);
  const tree = join(dir, `${name}-tree`);
  mkdirSync(join(tree, 'sbin'), { recursive: true });
  writeFileSync(join(tree, 'sbin/init'), '#!/bin/sh\n', { mode: 0o755 });
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', tree, path, `${sizeMiB}M`], { stdio: 'ignore' });
  return path;
}

/** Imports rootfsPath into the vmm as image with metadata. */
export async function importImage(vmm: TestVmm, rootfsPath: string, image: string, metadata: Partial<ImageMetadata> = {}, kernelId = ''): Promise<void> {
  await unaryCall<ImportImageResponse>('vmm', (cb) =>
    vmm.client.importImage({ rootfsPath, image, metadata: ImageMetadata.fromPartial(metadata), kernelId, overwrite: false }, cb),
  );
}

/** The one JSON document a --json command printed. */
export function jsonOf<T>(result: CliResult): T {
  if (result.code !== 0) throw new Error(`exit ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}
