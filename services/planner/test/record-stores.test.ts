/**
 * The planner's record buckets for real: files under a temp state dir and JetStream KV on a real
 * nats-server. Both must keep builds (as their proto JSON) and cache use times across a reopen.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BuildState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { Build } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { createLogger, FailedPreconditionError } from '@kindling/runtime';
import { startNatsServer, type TestNatsServer } from '@kindling/runtime/testing';
import { BucketBuildRecords, BucketLastUse } from '../src/records/build-records.ts';
import { FileBucket } from '../src/records/file-bucket.ts';
import { openNatsRecordBuckets, type NatsRecordBuckets } from '../src/records/nats-kv-bucket.ts';
import { openPlannerRecords } from '../src/records/open-records.ts';
import type { RecordBucket } from '../src/records/ports.ts';

function build(id: string, state: BuildState, created: Date): Build {
  return {
    id,
    state,
    request: {
      source: { source: { $case: 'dockerfile', value: 'FROM debian:bookworm\nRUN true\n' }, dockerfilePath: '' },
      tag: 'app:1',
      buildArgs: { VERSION: '1.2' },
      target: '',
      noCache: false,
      secrets: [{ id: 'npmrc', value: undefined }],
      labels: { team: 'a' },
      keepStages: true,
      resources: { vcpus: 2, memoryMib: 1024, diskSizeBytes: '0', kernelId: '', network: '' },
      timeout: { seconds: '600', nanos: 0 },
    },
    imageRef: '',
    error: { code: 'ABORTED', message: 'RUN failed', stageIndex: 0, stepIndex: 1, exitCode: 3, outputTail: 'boom', line: 2 },
    created,
    started: new Date(created.getTime() + 1000),
    vmId: 'b-1',
    vmmHost: 'local',
    stepsDone: 1,
    stepsTotal: 2,
    lastSequence: '17',
    traceId: '0af7651916cd43dd8448eb211c80319c',
  };
}

/** The record as stored: unset message fields come back present but undefined. */
function asStored(record: Build): Build {
  return { ...record, plan: undefined, finished: undefined };
}

/** What every bucket must do; open(name) opens that bucket again, as a restarted planner would. */
function bucketContract(suite: string, open: (name: 'builds' | 'cache') => Promise<RecordBucket>): void {
  describe(suite, () => {
    it('keeps builds by id with every field, and lists them', async () => {
      const records = new BucketBuildRecords(await open('builds'));
      const first = build('0123abcd', BuildState.BUILD_STATE_RUNNING, new Date('2024-05-01T10:00:00.123Z'));
      const second = build('4567ef00', BuildState.BUILD_STATE_SUCCEEDED, new Date('2024-05-02T10:00:00Z'));
      await records.put(first);
      await records.put(second);
      await records.put({ ...second, stepsDone: 2 });
      assert.deepEqual(await records.get(first.id), asStored(first));
      assert.equal((await records.get(second.id))?.stepsDone, 2, 'a put replaces the record');
      assert.equal(await records.get('no-such-build'), undefined);
      const reopened = new BucketBuildRecords(await open('builds'));
      assert.deepEqual((await reopened.list()).map((b) => b.id).sort(), [first.id, second.id]);
      assert.deepEqual(await reopened.get(first.id), asStored(first));
      assert.ok((await reopened.get(first.id))?.created instanceof Date);
    });

    it('keeps cache use times by key (keys with ":"), and forgets deleted ones', async () => {
      const uses = new BucketLastUse(await open('cache'));
      const key = `sha256:${'ab'.repeat(32)}`;
      const when = new Date('2024-06-01T12:34:56.789Z');
      await uses.put(key, when);
      await uses.put('sha256:other', new Date());
      await uses.delete('sha256:other');
      const reopened = new BucketLastUse(await open('cache'));
      assert.deepEqual(await reopened.get(key), when);
      assert.equal(await reopened.get('sha256:other'), undefined);
      assert.equal(await reopened.get('sha256:never'), undefined);
    });
  });
}

describe('record buckets', () => {
  let stateDir: string;
  let nats: TestNatsServer;
  const opened: NatsRecordBuckets[] = [];

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'kindling-planner-records-'));
    nats = await startNatsServer({ jetstream: true });
  });
  after(async () => {
    for (const buckets of opened) await buckets.close();
    await nats.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  bucketContract('in files under the state dir', async (name) => FileBucket.open(join(stateDir, name)));
  bucketContract('in JetStream KV on a real nats-server', async (name) => {
    const buckets = await openNatsRecordBuckets(nats.url);
    opened.push(buckets);
    return buckets[name];
  });

  it('files: one per key with a safe name, written without leaving temp files; stale temp files go on open', async () => {
    const dir = join(stateDir, 'names');
    const bucket = await FileBucket.open(dir);
    await Promise.all([1, 2, 3, 4, 5].map((n) => bucket.put('sha256:../x', { n })));
    assert.deepEqual(await readdir(dir), ['sha256%3A%2E%2E%2Fx.json'], 'no "..", no "/", no temp file left');
    await writeFile(join(dir, '.sha256%3A%2E%2E%2Fx.json.0123.tmp'), '{"half');
    const reopened = await FileBucket.open(dir);
    assert.deepEqual(await readdir(dir), ['sha256%3A%2E%2E%2Fx.json']);
    assert.equal(((await reopened.get('sha256:../x')) as { n: number }).n > 0, true);
  });

  it('files: a state dir that cannot be made is refused naming it and the setting', async () => {
    const blocker = join(stateDir, 'a-file');
    await writeFile(blocker, '');
    await assert.rejects(FileBucket.open(join(blocker, 'builds')), (e: Error) => e instanceof FailedPreconditionError && e.message.includes(join(blocker, 'builds')));
    await assert.rejects(
      openPlannerRecords({ natsUrl: undefined, stateDir: join(blocker, 'state') }, createLogger('test', 'silent')),
      (e: Error) => e instanceof FailedPreconditionError && e.message.startsWith('setting --state-dir (KINDLING_PLANNER_STATE_DIR): ') && e.message.includes(join(blocker, 'state')),
    );
  });

  it('NATS without JetStream: records fall back to the state dir', async () => {
    const plain = await startNatsServer({ jetstream: false });
    try {
      const dir = join(stateDir, 'fallback');
      const records = await openPlannerRecords({ natsUrl: plain.url, stateDir: dir }, createLogger('test', 'silent'));
      await records.builds.put(build('fallback01', BuildState.BUILD_STATE_QUEUED, new Date()));
      await records.close();
      assert.deepEqual(await readdir(join(dir, 'builds')), ['fallback01.json']);
    } finally {
      await plain.stop();
    }
  });
});
