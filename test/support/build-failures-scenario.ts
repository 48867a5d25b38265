/**
 * Scenario run inside a sandbox netns by e2e.test.ts: on a local suite, a build whose RUN fails and a
 * build cancelled mid-RUN; prints what the test asserts on as JSON.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildState, type BuildEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { BuildServiceClient, type Build, type CreateBuildResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { VmmServiceClient, type ListVmsResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createServiceClient, unaryCall } from '@kindling/runtime';
import { defaultCacheDir } from '@kindling/vmm/baseos';
import { startLocalSuite } from '../../cli/src/local-suite.ts';


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

  const failing = await start('FROM debian:bookworm\nRUN echo preparing\nRUN echo "something broke" >&2; exit 3\nRUN echo never\n', 'e2e/fails:1');
  const failed = await watch(failing.buildId);

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
