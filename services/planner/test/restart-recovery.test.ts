/**
 * A real planner process killed (SIGKILL) while a build runs, then started again on the same records:
 * once with NATS (JetStream KV records, event history on the bus), once with files under --state-dir
 * and the in-process bus. The fetcher and vmm are a black hole (they accept connections and never
 * answer), so the build sits in PLANNING until the kill, and the restarted planner's clean-up can
 * never reach the vmm: it must serve anyway, and stop on SIGTERM. The VM clean-up itself is in
 * test/planner-restart.test.ts, with a real VM.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { BuildState, type BuildEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { Build, BuildServiceClient, type CreateBuildResponse, type ListBuildsResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { createServiceClient, unaryCall } from '@kindling/runtime';
import { startNatsServer, type TestNatsServer } from '@kindling/runtime/testing';
import { startServiceProcess, stopServiceProcess, type StartedService } from '../../../cli/src/local-suite.ts';
import { openNatsRecordBuckets } from '../src/records/nats-kv-bucket.ts';

async function blackHole(): Promise<{ address: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

const getBuild = async (client: BuildServiceClient, buildId: string): Promise<Build> =>
  (await unaryCall<{ build?: Build }>('planner', (cb) => client.getBuild({ buildId }, cb))).build!;

async function events(client: BuildServiceClient, buildId: string): Promise<BuildEvent[]> {
  const seen: BuildEvent[] = [];
  for await (const { event } of client.watchBuild({ buildId, afterSequence: '0', follow: true }) as AsyncIterable<{ event: BuildEvent }>) seen.push(event);
  return seen;
}

/** The build as the planner last saved it (GetBuild answers from the live record, which can be ahead). */
async function storedState(mode: 'nats' | 'files', natsUrl: string, stateDir: string, buildId: string): Promise<BuildState | undefined> {
  if (mode === 'files') {
    const text = await readFile(join(stateDir, 'builds', `${buildId}.json`), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : Build.fromJSON(JSON.parse(text)).state;
  }
  const buckets = await openNatsRecordBuckets(natsUrl);
  try {
    const value = await buckets.builds.get(buildId);
    return value === undefined ? undefined : Build.fromJSON(value).state;
  } finally {
    await buckets.close();
  }
}

const stateOf = (event: BuildEvent): string => (event.payload?.$case === 'state' ? BuildState[event.payload.value.state] : event.payload?.$case ?? '');

describe('a planner killed mid-build and started again', () => {
  let hole: Awaited<ReturnType<typeof blackHole>>;
  let nats: TestNatsServer;
  let workDir: string;
  const children: StartedService[] = [];

  before(async () => {
    hole = await blackHole();
    nats = await startNatsServer({ jetstream: true });
    workDir = await mkdtemp(join(tmpdir(), 'kindling-planner-restart-'));
  });
  after(async () => {
    for (const child of children) await stopServiceProcess(child);
    await hole.close();
    await nats.stop();
    await rm(workDir, { recursive: true, force: true });
  });

  for (const mode of ['nats', 'files'] as const) {
    it(`fails the build it ran with the reason, and serves though the vmm never answers (${mode})`, async () => {
      const stateDir = join(workDir, mode);
      const args = [
        '--state-dir', stateDir,
        '--fetcher-address', hole.address,
        '--vmm-address', hole.address,
        '--provisioner-address', hole.address,
        ...(mode === 'nats' ? ['--nats-url', nats.url] : []),
      ];
      const env = { KINDLING_LOG_LEVEL: 'warn' };
      const first = await startServiceProcess('planner', args, { env });
      children.push(first);
      let client = createServiceClient(BuildServiceClient, first.address);
      const { buildId } = await unaryCall<CreateBuildResponse>('planner', (cb) =>
        client.createBuild(
          { source: { source: { $case: 'dockerfile', value: 'FROM debian:bookworm\nRUN sleep 600\n' }, dockerfilePath: '' }, tag: `restart/${mode}:1`, buildArgs: {}, target: '', noCache: false, secrets: [], labels: {}, keepStages: false },
          cb,
        ),
      );
      while ((await storedState(mode, nats.url, stateDir, buildId)) !== BuildState.BUILD_STATE_PLANNING) await sleep(50);
      assert.equal(BuildState[(await getBuild(client, buildId)).state], 'BUILD_STATE_PLANNING', 'the fetcher never answers: planning goes on');
      first.child.kill('SIGKILL');
      await exited(first.child);
      client.close();

      const second = await startServiceProcess('planner', args, { env });
      children.push(second);
      client = createServiceClient(BuildServiceClient, second.address);
      try {
        const build = await getBuild(client, buildId);
        assert.equal(BuildState[build.state], 'BUILD_STATE_FAILED');
        assert.equal(build.error?.code, 'ABORTED');
        assert.equal(build.error?.message, 'the planner restarted while the build was planning');
        assert.ok(build.finished, 'the failed build has its end time');
        const listed = await unaryCall<ListBuildsResponse>('planner', (cb) => client.listBuilds({ pageSize: 0, pageToken: '', state: BuildState.BUILD_STATE_FAILED }, cb));
        assert.deepEqual(listed.builds.map((b) => b.id), [buildId]);

        const history = await events(client, buildId);
        const last = history.at(-1)!;
        assert.equal(stateOf(last), 'BUILD_STATE_FAILED', 'WatchBuild ends with the failure');
        assert.equal(last.payload?.$case === 'state' && last.payload.value.error?.message, build.error.message);
        assert.equal(last.sequence, build.lastSequence);
        if (mode === 'nats') {
          assert.deepEqual(history.map(stateOf), ['BUILD_STATE_QUEUED', 'BUILD_STATE_PLANNING', 'BUILD_STATE_FAILED'], 'the history before the kill is on the bus');
          assert.deepEqual(history.map((e) => Number(e.sequence)), [1, 2, 3], 'numbered on from the last event before the kill');
        } else {
          assert.deepEqual(await readdir(join(stateDir, 'builds')), [`${buildId}.json`]);
          assert.equal(last.sequence, '3', 'numbered after the sequence the record had saved');
        }
      } finally {
        client.close();
      }
      second.child.kill('SIGTERM');
      assert.equal(await exited(second.child), 0, 'stops on SIGTERM while its clean-up still retries');
    });
  }
});
