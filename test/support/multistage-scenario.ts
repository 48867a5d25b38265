/**
 * Scenario run inside a sandbox netns by multistage.test.ts: on a local suite, a three-stage build
 * (two independent stages feeding a final one through COPY --from), then the same build unchanged,
 * then with the last COPY's file changed. Prints what the test asserts on as JSON: build outcomes,
 * step states, VM boots seen on the vmm's event stream, the committed image's files read with debugfs.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildState, StepState, VmState, type BuildEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import {
  BuildServiceClient,
  type Build,
  type CreateBuildResponse,
  type ListCacheEntriesResponse,
  type PruneCacheResponse,
} from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { VmmServiceClient, type GetImageResponse, type ListImagesResponse, type ListVmsResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createServiceClient, unaryCall } from '@kindling/runtime';
import { defaultCacheDir } from '@kindling/vmm/baseos';
import type { TestContext } from 'node:test';
import { startLocalSuite } from '../../cli/src/local-suite.ts';
import { git, startGitHttpServer } from '../../services/fetcher/test/git-http.ts';

const cleanups: (() => Promise<void>)[] = [];

const DOCKERFILE = `FROM debian:bookworm AS builder
RUN mkdir -p /out && printf '#!/bin/sh\\necho built-by-builder\\n' > /out/app && chmod 0750 /out/app && chown 1234:2345 /out/app && ln -s app /out/app-link && sleep 3
FROM debian:bookworm AS docs
RUN mkdir -p /docs && echo "read me" > /docs/readme.txt && chown 42:43 /docs/readme.txt && chmod 0640 /docs/readme.txt && sleep 3
FROM debian:bookworm
RUN useradd --system --uid 990 --user-group app
COPY --from=builder /out/ /usr/local/bin/
COPY --from=builder --chown=app:app /out/app /opt/app-owned
COPY --from=docs /docs/readme.txt /usr/share/doc/kindling/
RUN --mount=type=bind,from=docs,source=/docs,target=/mnt/docs cp /mnt/docs/readme.txt /etc/from-mount.txt && if touch /mnt/docs/x 2>/dev/null; then echo writable; exit 1; fi
COPY --chmod=0604 blob.bin /opt/blob.bin
COPY greeting.txt /etc/greeting.txt
ENTRYPOINT ["/usr/local/bin/app"]
`;

// FROM scratch: files from a built image, a git repository served on loopback, the context; no VM
function scratchDockerfile(gitUrl: string, commit: string): string {
  return `FROM scratch
COPY --from=e2e/multistage:1 /usr/local/bin/app /app
COPY --from=e2e/multistage:1 /etc/greeting.txt /etc/
ADD ${gitUrl}#main /src/
ADD --checksum=${commit} ${gitUrl}#main /src-pinned
COPY --chown=7:8 greeting.txt /note.txt
CMD ["/app"]
`;
}

const workDir = await mkdtemp(join(tmpdir(), 'kindling-e2e-'));
const contextDir = join(workDir, 'context');
spawnSync('mkdir', ['-p', contextDir]);
await writeFile(join(contextDir, 'Dockerfile'), DOCKERFILE);
await writeFile(join(contextDir, 'greeting.txt'), 'hello one\n');
// 3 MiB: large enough to reach the guest through its transfer disk rather than SFTP
const blob = randomBytes(3 * 1024 * 1024 + 5);
await writeFile(join(contextDir, 'blob.bin'), blob);
const suite = await startLocalSuite({ workDir, cacheDir: defaultCacheDir(), subnet: '10.209.0.0/24' });
const planner = createServiceClient(BuildServiceClient, suite.planner);
const vmm = createServiceClient(VmmServiceClient, suite.vmm);
const vmEvents = vmm.watchVms({ vmId: '' });
const bootsByBuild = new Map<string, number>();
vmEvents.on('data', ({ event }: { event: { buildId: string; state: VmState; previousState: VmState } }) => {
  if (event.state === VmState.VM_STATE_STARTING && event.previousState !== VmState.VM_STATE_STARTING) {
    bootsByBuild.set(event.buildId, (bootsByBuild.get(event.buildId) ?? 0) + 1);
  }
});
vmEvents.on('error', () => {});

interface BuildOutcome {
  state: string;
  error?: unknown;
  ms: number;
  steps: { stage: number; step: number; state: string; instruction: string }[];
  /** The order of step starts and ends: "start:<stage>" and "end:<stage>". */
  order: string[];
  boots: number;
}

async function build(tag: string, dockerfilePath = ''): Promise<BuildOutcome> {
  const started = performance.now();
  const { buildId } = await unaryCall<CreateBuildResponse>('planner', (cb) =>
    planner.createBuild(
      { source: { source: { $case: 'contextPath', value: contextDir }, dockerfilePath }, tag, buildArgs: {}, target: '', noCache: false, secrets: [], labels: {}, keepStages: false },
      cb,
    ),
  );
  const steps: BuildOutcome['steps'] = [];
  const order: string[] = [];
  for await (const { event } of planner.watchBuild({ buildId, afterSequence: '0', follow: true }) as AsyncIterable<{ event: BuildEvent }>) {
    if (event.payload?.$case !== 'step') continue;
    const step = event.payload.value;
    if (step.state === StepState.STEP_STATE_STARTED) order.push(`start:${step.stageIndex}`);
    else {
      if (step.state === StepState.STEP_STATE_SUCCEEDED) order.push(`end:${step.stageIndex}`);
      steps.push({ stage: step.stageIndex, step: step.stepIndex, state: StepState[step.state], instruction: step.instruction });
    }
  }
  const ms = Math.round(performance.now() - started);
  const record = (await unaryCall<{ build?: Build }>('planner', (cb) => planner.getBuild({ buildId }, cb))).build!;
  await new Promise((resolve) => setTimeout(resolve, 300)); // the vmm's last events
  return { state: BuildState[record.state], error: record.error, ms, steps, order, boots: bootsByBuild.get(buildId) ?? 0 };
}

/** A bare repository with one commit on main, served by git http-backend on 127.0.0.1. */
async function servedRepository(): Promise<{ url: string; commit: string }> {
  const work = join(workDir, 'repo-work');
  spawnSync('mkdir', ['-p', work, join(workDir, 'git')]);
  await writeFile(join(work, 'README'), 'from git\n');
  git(work, 'init', '-q', '-b', 'main');
  git(work, 'add', 'README');
  git(work, 'commit', '-q', '-m', 'one');
  git(workDir, 'clone', '-q', '--bare', work, join(workDir, 'git', 'repo.git'));
  const server = await startGitHttpServer({ after: (fn: () => Promise<void>) => cleanups.push(fn) } as unknown as TestContext, join(workDir, 'git'));
  return { url: `${server.url}/repo.git`, commit: git(work, 'rev-parse', 'HEAD') };
}

function debugfs(rootfs: string, request: string): string {
  return spawnSync('debugfs', ['-R', request, rootfs], { encoding: 'utf8' }).stdout;
}

/** e2fsck -fn: 0 when the committed filesystem is consistent (the VM was killed once frozen, not shut down). */
function fsckStatus(rootfs: string): number | null {
  return spawnSync('e2fsck', ['-fn', rootfs], { encoding: 'utf8' }).status;
}

/** What the provisioner's "files copied" log lines say came from a transfer disk rather than SFTP. */
async function filesFromTransferDisk(): Promise<number> {
  const log = await readFile(join(workDir, 'logs', 'provisioner.log'), 'utf8');
  return log.split('\n').filter((line) => line.includes('"files copied"')).reduce((n, line) => n + ((JSON.parse(line) as { filesFromTransferDisk?: number }).filesFromTransferDisk ?? 0), 0);
}

function fileFacts(rootfs: string, path: string): { mode: string; uid: number; gid: number; link?: string } {
  const stat = debugfs(rootfs, `stat ${path}`);
  const mode = /Mode:\s+(\d+)/.exec(stat)?.[1] ?? '';
  const uid = Number(/User:\s+(\d+)/.exec(stat)?.[1] ?? -1);
  const gid = Number(/Group:\s+(\d+)/.exec(stat)?.[1] ?? -1);
  const link = /Fast link dest: "([^"]*)"/.exec(stat)?.[1];
  return { mode, uid, gid, ...(link === undefined ? {} : { link }) };
}

let report: { files: object } & Record<string, unknown> | undefined;
try {
  const cold = await build('e2e/multistage:1');
  if (cold.state !== 'BUILD_STATE_SUCCEEDED') throw new Error(`the first build failed: ${JSON.stringify(cold)}`);
  const rootfs = join(workDir, 'vmm', 'images', 'e2e/multistage', '1', 'rootfs.ext4');
  const files = {
    app: fileFacts(rootfs, '/usr/local/bin/app'),
    appLink: fileFacts(rootfs, '/usr/local/bin/app-link'),
    owned: fileFacts(rootfs, '/opt/app-owned'),
    readme: fileFacts(rootfs, '/usr/share/doc/kindling/readme.txt'),
    appContent: debugfs(rootfs, 'cat /usr/local/bin/app'),
    greeting: debugfs(rootfs, 'cat /etc/greeting.txt'),
    passwdApp: /^app:x:(\d+):(\d+):/m.exec(debugfs(rootfs, 'cat /etc/passwd'))?.slice(1).map(Number) ?? [],
    fsck: fsckStatus(rootfs),
    blob: { ...fileFacts(rootfs, '/opt/blob.bin'), same: spawnSync('debugfs', ['-R', 'cat /opt/blob.bin', rootfs], { maxBuffer: 64 << 20 }).stdout.equals(blob) },
  };
  const image = await unaryCall<GetImageResponse>('vmm', (cb) => vmm.getImage({ image: 'e2e/multistage:1' }, cb));
  const unchanged = await build('e2e/multistage:2');
  await writeFile(join(contextDir, 'greeting.txt'), 'hello two\n');
  const changed = await build('e2e/multistage:3');
  const rootfs3 = join(workDir, 'vmm', 'images', 'e2e/multistage', '3', 'rootfs.ext4');
  const greeting3 = debugfs(rootfs3, 'cat /etc/greeting.txt');
  const fsck3 = fsckStatus(rootfs3);
  const repo = await servedRepository();
  await writeFile(join(contextDir, 'Dockerfile.scratch'), scratchDockerfile(repo.url, repo.commit));
  const scratch = await build('e2e/scratch:1', 'Dockerfile.scratch');
  const scratchRootfs = join(workDir, 'vmm', 'images', 'e2e/scratch', '1', 'rootfs.ext4');
  const scratchFiles = {
    app: fileFacts(scratchRootfs, '/app'),
    greeting: debugfs(scratchRootfs, 'cat /etc/greeting.txt'),
    readme: debugfs(scratchRootfs, 'cat /src/README'),
    pinned: debugfs(scratchRootfs, 'cat /src-pinned/README'),
    note: fileFacts(scratchRootfs, '/note.txt'),
    init: debugfs(scratchRootfs, 'stat /sbin/init').includes('Inode:'),
  };
  const scratchBoot = await unaryCall('vmm', (cb) =>
    vmm.createVm({ vmId: 'scratch-boot', start: true, spec: { image: 'e2e/scratch:1', kernelId: '', vcpus: 1, memoryMib: 256, diskSizeBytes: '0', network: '', authorizedKeys: [], hostname: '', extraKernelArgs: '', labels: {}, buildId: '', transferDiskBytes: '0' } }, cb),
  ).then(
    () => ({ code: 'OK', message: 'booted' }),
    (error: Error & { code: string }) => ({ code: error.code, message: error.message }),
  );
  const mounted = { fromMount: debugfs(rootfs, 'cat /etc/from-mount.txt'), mountPointLeft: debugfs(rootfs, 'stat /mnt/docs').includes('Inode:') };
  const cacheBefore = await unaryCall<ListCacheEntriesResponse>('planner', (cb) => planner.listCacheEntries({}, cb));
  const all = await unaryCall<ListImagesResponse>('vmm', (cb) => vmm.listImages({ name: '', includeInternal: true }, cb));
  const pruned = await unaryCall<PruneCacheResponse>('planner', (cb) => planner.pruneCache({ all: true }, cb));
  const cacheAfter = await unaryCall<ListCacheEntriesResponse>('planner', (cb) => planner.listCacheEntries({}, cb));
  const vms = await unaryCall<ListVmsResponse>('vmm', (cb) => vmm.listVms({ state: 0, buildId: '' }, cb));
  report = {
      cold,
      unchanged,
      changed,
      files,
      greeting3,
      fsck3,
      mounted,
      scratch,
      scratchFiles,
      scratchBoot,
      entrypoint: image.image?.metadata?.entrypoint,
      cacheEntries: cacheBefore.entries.length,
      cacheBytes: Number(cacheBefore.totalBytes),
      pruned: pruned.removed.length,
      cacheAfter: cacheAfter.entries.length,
      intermediateImages: all.images.filter((i) => i.name.startsWith('kindling-intermediate/')).map((i) => `${i.name}:${i.tag}`),
      vmsLeft: vms.vms.map((v) => `${v.id} ${v.state}`),
  };
} finally {
  for (const cleanup of cleanups) await cleanup().catch(() => {});
  vmEvents.cancel();
  planner.close();
  vmm.close();
  await suite.stop();
  // a service writes its log file when it exits
  if (report) process.stdout.write(JSON.stringify({ ...report, files: { ...report.files, filesFromTransferDisk: await filesFromTransferDisk().catch(() => -1) } }));
  if (process.env.KINDLING_E2E_LOGS) {
    for (const name of ['planner', 'vmm']) process.stderr.write(await readFile(join(workDir, 'logs', `${name}.log`), 'utf8').catch(() => ''));
  }
  await rm(workDir, { recursive: true, force: true });
}
