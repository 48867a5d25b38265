/**
 * Scenario run inside a sandbox netns by e2e.test.ts: on a local suite, `kindling build` of
 * examples/hello (succeeds) and of a Dockerfile whose RUN fails, as a user runs them, and a build
 * cancelled mid-RUN over gRPC; prints what the test asserts on as JSON.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildState, type BuildEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { BuildServiceClient, type Build, type CreateBuildResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { VmmServiceClient, type ListVmsResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createServiceClient, unaryCall } from '@kindling/runtime';
import { defaultCacheDir } from '@kindling/vmm/baseos';
import { startLocalSuite } from '../../cli/src/local-suite.ts';

const kindlingBin = fileURLToPath(new URL('../../cli/bin/kindling.js', import.meta.url));

const workDir = await mkdtemp(join(tmpdir(), 'kindling-e2e-'));
const suite = await startLocalSuite({ workDir, cacheDir: defaultCacheDir(), subnet: '10.208.0.0/24' });
const planner = createServiceClient(BuildServiceClient, suite.planner);
const vmm = createServiceClient(VmmServiceClient, suite.vmm);
try {
  const start = (dockerfile: string, tag: string) =>
    unaryCall<CreateBuildResponse>('planner', (cb) =>
      planner.createBuild({ source: { source: { $case: 'dockerfile', value: dockerfile }, dockerfilePath: '' }, tag, buildArgs: {}, target: '', noCache: false, secrets: [], labels: {}, keepStages: false }, cb),
    );
  const watch = async (buildId: string, onEvent: (e: BuildEvent) => void = () => {}): Promise<Build> => {
    for await (const { event } of planner.watchBuild({ buildId, afterSequence: '0', follow: true })) onEvent(event);
    return (await unaryCall<{ build?: Build }>('planner', (cb) => planner.getBuild({ buildId }, cb))).build!;
  };

  /** `kindling build ARGS` against the suite, stdin given; its exit code and everything it printed. */
  const kindlingBuild = (args: string[], stdin = '') =>
    new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [kindlingBin, 'build', '--planner', suite.planner, '--fetcher', suite.fetcher, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('error', reject);
      child.once('exit', (code) => resolve({ code, output }));
      child.stdin.end(stdin);
    });
  const hello = await kindlingBuild(['--progress=plain', '-t', 'e2e/hello:1', fileURLToPath(new URL('../../examples/hello', import.meta.url))]);
  const failing = await kindlingBuild(['--progress=plain', '-t', 'e2e/fails:1', '-'], 'FROM debian:bookworm\nRUN echo preparing\nRUN echo "something broke" >&2; exit 3\nRUN echo never\n');
  const failingId = /=> build (\S+)/.exec(failing.output)?.[1] ?? '';
  const failed = (await unaryCall<{ build?: Build }>('planner', (cb) => planner.getBuild({ buildId: failingId }, cb))).build!;

  const sleeping = await start('FROM debian:bookworm\nRUN sleep 600\n', 'e2e/cancelled:1');
  let cancelRequested = false;
  const cancelled = await watch(sleeping.buildId, (event) => {
    if (!cancelRequested && event.payload?.$case === 'step' && event.payload.value.instruction.includes('sleep 600')) {
      cancelRequested = true;
      planner.cancelBuild({ buildId: sleeping.buildId, reason: 'test cancels it' }, () => {});
    }
  });
  const vms = await unaryCall<ListVmsResponse>('vmm', (cb) => vmm.listVms({ state: 0, buildId: '' }, cb));
  const images = await unaryCall<{ images: { name: string; tag: string }[] }>('vmm', (cb) => vmm.listImages({ name: '', includeInternal: true }, cb));
  process.stdout.write(
    JSON.stringify({
      cli: { hello, failing },
      failed: { state: BuildState[failed.state], error: failed.error },
      cancelled: { state: BuildState[cancelled.state], error: cancelled.error, cancelRequested },
      vmsLeft: vms.vms.map((v) => `${v.id} ${v.state} ${v.stateReason}`),
      images: images.images.map((i) => `${i.name}:${i.tag}`),
    }),
  );
} finally {
  planner.close();
  vmm.close();
  await suite.stop();
  if (process.env.KINDLING_E2E_LOGS) {
    for (const name of ['planner', 'vmm']) process.stderr.write(await readFile(join(workDir, 'logs', `${name}.log`), 'utf8').catch(() => ''));
  }
  await rm(workDir, { recursive: true, force: true });
}
