/**
 * Scenario run inside a sandbox netns by planner-restart.test.ts: on a local suite plus NATS, a planner
 * of its own runs a two-stage build (the first stage boots nothing and is committed as an intermediate
 * image, the second boots one VM and sleeps in a RUN); it is SIGKILLed during that RUN and started
 * again on the same records. Prints what the test asserts on as JSON: what was on the host before the
 * restart, the build and its events after it, and what is left once the restarted planner cleaned up.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BuildState, StepState, type BuildEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { BuildServiceClient, type Build, type CreateBuildResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { VmmServiceClient, type ListImagesResponse, type ListVmsResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createServiceClient, unaryCall } from '@kindling/runtime';
import { startNatsServer } from '@kindling/runtime/testing';
import { defaultCacheDir } from '@kindling/vmm/baseos';
import { startLocalSuite, startServiceProcess, stopServiceProcess, type StartedService } from '../../cli/src/local-suite.ts';

const DOCKERFILE = `FROM debian:bookworm AS base
ENV STAGE=base
FROM base
RUN echo started && sleep 600
`;

const workDir = await mkdtemp(join(tmpdir(), 'kindling-e2e-'));
const suite = await startLocalSuite({ workDir, cacheDir: defaultCacheDir(), subnet: '10.210.0.0/24' });
const nats = await startNatsServer({ jetstream: true });
const vmm = createServiceClient(VmmServiceClient, suite.vmm);
const plannerArgs = ['--state-dir', join(workDir, 'restarted-planner'), '--nats-url', nats.url, '--fetcher-address', suite.fetcher, '--vmm-address', suite.vmm, '--provisioner-address', suite.provisioner];
const netnsPrefix = `kindling-${process.pid}-`;
const planners: StartedService[] = [];

/** What is on the host of a build (imported by the test as a type only). */
export interface HostFacts {
  vms: string[];
  intermediateImages: string[];
  netns: string[];
  leases: string[];
  qemu: number;
}

async function hostFacts(buildId: string): Promise<HostFacts> {
  const vms = await unaryCall<ListVmsResponse>('vmm', (cb) => vmm.listVms({ state: 0, buildId: '' }, cb));
  const images = await unaryCall<ListImagesResponse>('vmm', (cb) => vmm.listImages({ name: '', includeInternal: true }, cb));
  const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((line) => line.startsWith(netnsPrefix));
  // host-local keeps one file per leased address, beside its lock and last_reserved_ip.* files
  const leaseDir = join(workDir, 'cni/ipam/kindling-local');
  const leases = (await readdir(leaseDir).catch(() => [])).filter((name) => /^\d+\.\d+\.\d+\.\d+$/.test(name));
  const qemu = spawnSync('pgrep', ['-f', `qemu-system.*${workDir}`], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).length;
  return {
    vms: vms.vms.map((vm) => `${vm.id} ${vm.spec?.labels['kindling.build'] ?? ''}`),
    intermediateImages: images.images.filter((i) => i.name === `kindling-intermediate/${buildId}`).map((i) => `${i.name}:${i.tag}`),
    netns,
    leases,
    qemu,
  };
}

try {
  const first = await startServiceProcess('planner', plannerArgs, { logFile: join(workDir, 'logs', 'planner-1.log') });
  planners.push(first);
  let planner = createServiceClient(BuildServiceClient, first.address);
  const { buildId } = await unaryCall<CreateBuildResponse>('planner', (cb) =>
    planner.createBuild(
      { source: { source: { $case: 'dockerfile', value: DOCKERFILE }, dockerfilePath: '' }, tag: 'e2e/restart:1', buildArgs: {}, target: '', noCache: false, secrets: [], labels: {}, keepStages: false },
      cb,
    ),
  );
  // killed once the RUN has printed: the VM is up and the step is under way
  const watch = planner.watchBuild({ buildId, afterSequence: '0', follow: true });
  let sawStart = false;
  for await (const { event } of watch as AsyncIterable<{ event: BuildEvent }>) {
    if (event.payload?.$case === 'step' && event.payload.value.state === StepState.STEP_STATE_STARTED && event.payload.value.instruction.includes('sleep 600')) sawStart = true;
    if (sawStart && event.payload?.$case === 'log' && event.payload.value.data.toString().includes('started')) break;
    if (event.payload?.$case === 'state' && [BuildState.BUILD_STATE_FAILED, BuildState.BUILD_STATE_SUCCEEDED].includes(event.payload.value.state)) {
      throw new Error(`the build ended before the kill: ${JSON.stringify(event.payload.value)}`);
    }
  }
  watch.cancel();
  const stateBeforeKill = BuildState[(await unaryCall<{ build?: Build }>('planner', (cb) => planner.getBuild({ buildId }, cb))).build!.state];
  first.child.kill('SIGKILL');
  await new Promise((resolve) => (first.child.exitCode === null && first.child.signalCode === null ? first.child.once('exit', resolve) : resolve(undefined)));
  planner.close();
  const beforeRestart = await hostFacts(buildId);

  const second = await startServiceProcess('planner', plannerArgs, { logFile: join(workDir, 'logs', 'planner-2.log') });
  planners.push(second);
  planner = createServiceClient(BuildServiceClient, second.address);
  const build = (await unaryCall<{ build?: Build }>('planner', (cb) => planner.getBuild({ buildId }, cb))).build!;
  const events: { sequence: number; kind: string; state?: string; message?: string }[] = [];
  for await (const { event } of planner.watchBuild({ buildId, afterSequence: '0', follow: true }) as AsyncIterable<{ event: BuildEvent }>) {
    const state = event.payload?.$case === 'state' ? event.payload.value : undefined;
    events.push({ sequence: Number(event.sequence), kind: event.payload?.$case ?? '', ...(state ? { state: BuildState[state.state], message: state.error?.message ?? '' } : {}) });
  }
  // the clean-up runs in the background once the planner serves
  let afterCleanUp = await hostFacts(buildId);
  for (let i = 0; i < 600 && (afterCleanUp.vms.length + afterCleanUp.intermediateImages.length + afterCleanUp.netns.length + afterCleanUp.leases.length + afterCleanUp.qemu > 0); i++) {
    await sleep(200);
    afterCleanUp = await hostFacts(buildId);
  }
  planner.close();
  process.stdout.write(
    JSON.stringify({ buildId, stateBeforeKill, beforeRestart, build: { state: BuildState[build.state], error: build.error, lastSequence: build.lastSequence }, events, afterCleanUp }),
  );
} finally {
  for (const planner of planners) await stopServiceProcess(planner);
  vmm.close();
  await suite.stop();
  await nats.stop();
  if (process.env.KINDLING_E2E_LOGS) {
    for (const name of ['planner-1', 'planner-2', 'vmm']) process.stderr.write(await readFile(join(workDir, 'logs', `${name}.log`), 'utf8').catch(() => ''));
  }
  await rm(workDir, { recursive: true, force: true });
}
