/** The body of bench:build, run inside its own network namespace (see bench/build.ts). */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildState, StepState, VmState, type BuildEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { BuildServiceClient, type Build, type CreateBuildResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { ProvisionerServiceClient, type ExecResponse, type SshTarget } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { VmmServiceClient, type CreateVmResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createServiceClient, generateSshKeyPair, unaryCall } from '@kindling/runtime';
import { defaultCacheDir } from '@kindling/vmm/baseos';
import { startLocalSuite } from '../../cli/src/local-suite.ts';

const RUNS = {
  tools: 'sleep 2 && mkdir -p /opt/tools && echo tool > /opt/tools/tool.txt',
  first: 'sleep 2',
  second: 'sleep 2 && echo second > /second.txt',
  third: 'sleep 1',
  last: (version: string) => `sleep 1 && echo ${version} > /last.txt`,
};
const dockerfile = (version: string) => `FROM debian:bookworm AS tools
RUN ${RUNS.tools}
FROM debian:bookworm
RUN ${RUNS.first}
RUN ${RUNS.second}
COPY big.bin /data/big.bin
RUN ${RUNS.third}
COPY --from=tools /opt/tools /opt/tools
RUN ${RUNS.last(version)}
`;

const workDir = await mkdtemp(join(tmpdir(), 'kindling-bench-build-'));
const context = join(workDir, 'context');
await mkdir(context, { recursive: true });
await writeFile(join(context, 'big.bin'), randomBytes(100 * 1024 * 1024));
const suite = await startLocalSuite({ workDir, cacheDir: defaultCacheDir(), subnet: '10.211.0.0/24' });
const planner = createServiceClient(BuildServiceClient, suite.planner);
const vmm = createServiceClient(VmmServiceClient, suite.vmm);
const provisioner = createServiceClient(ProvisionerServiceClient, suite.provisioner);
const boots = new Map<string, number>();
const vmEvents = vmm.watchVms({ vmId: '' });
vmEvents.on('data', ({ event }: { event: { buildId: string; state: VmState } }) => {
  if (event.state === VmState.VM_STATE_STARTING) boots.set(event.buildId, (boots.get(event.buildId) ?? 0) + 1);
});
vmEvents.on('error', () => {});

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

interface Measured {
  ms: number;
  boots: number;
  phases: Record<string, number>;
  record: Build;
  /** Each state change and step end, as "+12.3 s  <what>", for the per-phase breakdown. */
  timeline: string[];
}

async function build(tag: string, text: string, keepStages = false): Promise<Measured> {
  await writeFile(join(context, 'Dockerfile'), text);
  const started = performance.now();
  const { buildId } = await unaryCall<CreateBuildResponse>('planner', (cb) =>
    planner.createBuild({ source: { source: { $case: 'contextPath', value: context }, dockerfilePath: '' }, tag, buildArgs: {}, target: '', noCache: false, secrets: [], labels: {}, keepStages }, cb),
  );
  const phases: Record<string, number> = { boot: 0, steps: 0 };
  const bootingSince = new Map<number, number>();
  const timeline: string[] = [];
  const startedAt = Date.now() - (performance.now() - started);
  const mark = (at: number, what: string) => timeline.push(`+${((at - startedAt) / 1000).toFixed(1).padStart(5)} s  ${what}`);
  for await (const { event } of planner.watchBuild({ buildId, afterSequence: '0', follow: true }) as AsyncIterable<{ event: BuildEvent }>) {
    const at = event.time?.getTime() ?? Date.now();
    if (event.payload?.$case === 'state') {
      const state = event.payload.value.state;
      mark(at, BuildState[state].replace('BUILD_STATE_', ''));
      if (state === BuildState.BUILD_STATE_BOOTING) bootingSince.set(bootingSince.size, at);
      if (state === BuildState.BUILD_STATE_RUNNING) {
        const since = [...bootingSince.values()].at(-1);
        if (since !== undefined) phases.boot! += at - since;
      }
    }
    if (event.payload?.$case === 'step' && event.payload.value.state !== StepState.STEP_STATE_STARTED) {
      const { stageIndex, instruction, state, duration } = event.payload.value;
      mark(at, `stage ${stageIndex} ${StepState[state].replace('STEP_STATE_', '')} ${s(duration ? Number(duration.seconds) * 1000 + duration.nanos / 1e6 : 0)}  ${instruction.slice(0, 60)}`);
    }
    if (event.payload?.$case === 'step' && event.payload.value.state === StepState.STEP_STATE_SUCCEEDED) {
      const d = event.payload.value.duration;
      phases.steps! += d ? Number(d.seconds) * 1000 + d.nanos / 1e6 : 0;
    }
  }
  const ms = performance.now() - started;
  const record = (await unaryCall<{ build?: Build }>('planner', (cb) => planner.getBuild({ buildId }, cb))).build!;
  if (record.state !== BuildState.BUILD_STATE_SUCCEEDED) throw new Error(`build ${tag} ended ${BuildState[record.state]}: ${record.error?.message}`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  phases.other = ms - phases.boot! - phases.steps!;
  return { ms, boots: boots.get(buildId) ?? 0, phases, record, timeline };
}

/** Boots the base OS as a build would and runs commands through the provisioner: the floor's parts. */
async function floorParts(): Promise<{ bootMs: number; runMs: Record<string, number> }> {
  const keys = generateSshKeyPair();
  const started = performance.now();
  const { vm } = await unaryCall<CreateVmResponse>('vmm', (cb) =>
    vmm.createVm(
      {
        vmId: 'bench-floor',
        start: true,
        spec: { image: 'debian:bookworm', kernelId: '', vcpus: 2, memoryMib: 1024, diskSizeBytes: '0', network: '', authorizedKeys: [keys.public], hostname: 'floor', extraKernelArgs: '', labels: {}, buildId: '', transferDiskBytes: '0' },
      },
      cb,
    ),
  );
  const target: SshTarget = { host: vm!.network!.guestIp, port: 22, user: 'root', privateKey: keys.private, agentSocket: '', hostKey: vm!.sshHostPublicKey, insecureIgnoreHostKey: false, sessionId: vm!.id };
  try {
    await unaryCall('provisioner', (cb) => provisioner.waitReady({ target, timeout: { seconds: '300', nanos: 0 } }, cb));
    const bootMs = performance.now() - started;
    const runMs: Record<string, number> = {};
    for (const [name, script] of Object.entries({ ...RUNS, last: RUNS.last('v1') })) {
      const t0 = performance.now();
      const stream = provisioner.exec({ target, command: { $case: 'shell', value: { script, shell: [] } }, env: [], user: '', workingDir: '/', buildId: '', stepIndex: 0, reuseShell: false });
      for await (const message of stream as AsyncIterable<ExecResponse>) void message;
      runMs[name] = performance.now() - t0;
    }
    return { bootMs, runMs };
  } finally {
    await new Promise((resolve) => provisioner.closeSession({ sessionId: vm!.id }, resolve));
    await new Promise((resolve) => vmm.deleteVm({ vmId: vm!.id }, resolve));
  }
}

function copyMs(image: string): number {
  const [name, tag] = [image.slice(0, image.lastIndexOf(':')), image.slice(image.lastIndexOf(':') + 1)];
  const source = join(workDir, 'vmm', 'images', name, tag, 'rootfs.ext4');
  const target = join(workDir, 'copy.ext4');
  const t0 = performance.now();
  const result = spawnSync('cp', ['--sparse=always', source, target]);
  const ms = performance.now() - t0;
  spawnSync('rm', ['-f', target]);
  if (result.status !== 0) throw new Error(`cp of ${source} failed: ${result.stderr}`);
  return ms;
}

try {
  const cold = await build('bench/ref:1', dockerfile('v1'), true);
  const stageImage = `kindling-intermediate/${cold.record.id}:stage-0`;
  const copies = { final: copyMs('bench/ref:1'), stage: copyMs(stageImage) };
  await new Promise((resolve) => vmm.deleteImage({ image: stageImage }, resolve));
  const unchanged = await build('bench/ref:2', dockerfile('v1'));
  const last = await build('bench/ref:3', dockerfile('v2'));
  const floor = await floorParts();
  const runTotal = Object.values(floor.runMs).reduce((a, b) => a + b, 0);
  const coldFloor = 2 * floor.bootMs + runTotal + copies.final + copies.stage;
  const lastFloor = floor.bootMs + floor.runMs.last! + copies.final;
  const breakdown = (m: Measured) => Object.entries(m.phases).map(([k, v]) => `${k} ${s(v)}`).join(', ');
  console.log(`cold build timeline:\n  ${cold.timeline.join('\n  ')}`);
  console.log(`last-step build timeline:\n  ${last.timeline.join('\n  ')}`);
  console.log(`floor parts: boot→SSH-ready ${s(floor.bootMs)}; RUN ${Object.entries(floor.runMs).map(([k, v]) => `${k} ${s(v)}`).join(', ')}; cp --sparse=always final ${s(copies.final)}, stage ${s(copies.stage)}`);
  console.log(`cold      phases: ${breakdown(cold)}; ${cold.boots} boots`);
  console.log(`unchanged phases: ${breakdown(unchanged)}; ${unchanged.boots} boots`);
  console.log(`last step phases: ${breakdown(last)}; ${last.boots} boots`);
  console.log(`cold build: ${s(cold.ms)}  floor ${s(coldFloor)}  ratio ${(cold.ms / coldFloor).toFixed(2)} (goal <= 1.10)`);
  console.log(`unchanged rebuild: ${s(unchanged.ms)}, ${unchanged.boots} boots (goal <= 1 s, 0 boots)`);
  console.log(`last step changed: ${s(last.ms)}  floor ${s(lastFloor)}  ratio ${(last.ms / lastFloor).toFixed(2)} (goal <= 1.10)`);
} finally {
  vmEvents.cancel();
  for (const client of [planner, vmm, provisioner]) client.close();
  await suite.stop();
  // KINDLING_BENCH_LOGS=dir keeps the services' logs (each commit's phase timings are in the vmm's)
  const keepLogs = process.env.KINDLING_BENCH_LOGS;
  if (keepLogs) await cp(join(workDir, 'logs'), keepLogs, { recursive: true });
  await rm(workDir, { recursive: true, force: true });
}
