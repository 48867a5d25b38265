/**
 * What the CLI tests run against: the kindling CLI as a child process, and real vmm and planner
 * processes on 127.0.0.1 (startServiceProcess, as an operator runs them) over temp state dirs.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { ImageMetadata } from '@kindling/proto/gen/kindling/image/v1/image.ts';
import { VmmServiceClient, type ImportImageResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { unaryCall } from '@kindling/runtime';
import { freePort } from '@kindling/runtime/testing';
import { startServiceProcess, stopServiceProcess } from '../../src/local-suite.ts';

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

export interface TestVmm {
  readonly address: string;
  readonly stateDir: string;
  /** A client for the test's own setup (importing images), not for what the CLI is tested on. */
  readonly client: VmmServiceClient;
}

/**
 * A vmm process on the qemu driver with no CNI plugins (VMs get no network) and no base OS unless
 * baseOsCacheDir is given (then the cached builds there are registered, kernels included).
 */
export async function startVmm(t: TestContext, dir: string, baseOsCacheDir?: string): Promise<TestVmm> {
  const stateDir = join(dir, 'vmm');
  for (const sub of ['cni-conf', 'no-cni-plugins']) mkdirSync(join(dir, sub), { recursive: true });
  const service = await startServiceProcess(
    'vmm',
    [
      `--state-dir=${stateDir}`,
      `--cache-dir=${baseOsCacheDir ?? join(dir, 'no-cache')}`,
      `--register-base-os=${baseOsCacheDir !== undefined}`,
      `--cni-conf-dir=${join(dir, 'cni-conf')}`,
      `--cni-bin-path=${join(dir, 'no-cni-plugins')}`,
      `--netns-prefix=kindling-clitest-`,
      '--host-name=clitest',
    ],
    { env: { KINDLING_LOG_LEVEL: 'warn' } },
  );
  const client = new VmmServiceClient(service.address, credentials.createInsecure());
  t.after(async () => {
    client.close();
    await stopServiceProcess(service);
  });
  return { address: service.address, stateDir, client };
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
