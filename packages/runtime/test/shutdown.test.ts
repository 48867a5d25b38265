import assert from 'node:assert/strict';
import { it } from 'node:test';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { BuildServiceClient } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { HealthCheckResponse_ServingStatus as Serving, HealthClient } from '@kindling/proto/gen/grpc/health/v1/health.ts';
import { unary } from '../src/index.ts';
import { startBuildService } from './support.ts';

// A long grace: if anything held the drain, shutdown would outlive the test's timeout.
it('shutdown turns health NOT_SERVING first, ends Watch streams, and drains in-flight calls', { timeout: 30_000 }, async (t) => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let handlerStarted!: () => void;
  const started = new Promise<void>((resolve) => (handlerStarted = resolve));
  const running = await startBuildService({
    getBuild: unary(async () => {
      handlerStarted();
      await released;
      return { build: undefined };
    }),
  });
  const health = new HealthClient(running.address, credentials.createInsecure());
  const client = new BuildServiceClient(running.address, credentials.createInsecure());
  t.after(async () => {
    release();
    health.close();
    client.close();
    await running.shutdown(100);
  });
  running.health.setServing(true);

  const seen: Serving[] = [];
  const watch = health.watch({ service: '' });
  const watchEnded = new Promise<number>((resolve) => {
    watch.on('data', (response: { status: Serving }) => {
      seen.push(response.status);
      if (response.status === Serving.NOT_SERVING) release();
    });
    watch.on('status', (s: { code: number }) => resolve(s.code));
    watch.on('error', () => {});
  });
  for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  const inFlight = new Promise<ServiceError | null>((resolve) => client.getBuild({ buildId: 'b1' }, (e) => resolve(e)));
  await started;

  await running.shutdown(60_000);
  assert.deepEqual(seen, [Serving.SERVING, Serving.NOT_SERVING]);
  assert.equal(await watchEnded, 0, 'the Watch stream ends OK, not cancelled by a forced shutdown');
  assert.equal(await inFlight, null, 'the call in flight when shutdown began completed');
});

it('a call still running when the grace period ends is aborted with a reason that says the server is shutting down', async () => {
  let reason: unknown;
  let handlerStarted!: () => void;
  const started = new Promise<void>((resolve) => (handlerStarted = resolve));
  const running = await startBuildService({
    getBuild: unary(async (_request, ctx) => {
      handlerStarted();
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
      reason = ctx.signal.reason;
      throw reason;
    }),
  });
  const client = new BuildServiceClient(running.address, credentials.createInsecure());
  try {
    const failed = new Promise<ServiceError | null>((resolve) => client.getBuild({ buildId: 'b1' }, (e) => resolve(e)));
    await started;
    await running.shutdown(100);
    assert.ok((await failed) !== null);
    for (let i = 0; i < 100 && reason === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    assert.match((reason as Error).message, /server is shutting down/);
  } finally {
    client.close();
  }
});
