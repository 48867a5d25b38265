/**
 * kindling_rpc_duration_seconds over the real transport: a BuildService server on 127.0.0.1:0 whose
 * calls end OK, NOT_FOUND and UNIMPLEMENTED (unary and server streaming), and the metrics endpoint on
 * 127.0.0.1:0 scraped over HTTP and parsed as Prometheus text.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { it } from 'node:test';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { BuildServiceClient } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { createLogger, NotFoundError, serverStream, startMetricsServer, unary } from '../src/index.ts';
import { sampleValue, scrapeMetrics } from '../src/testing/index.ts';
import { startBuildService } from './support.ts';

const service = 'kindling.planner.v1.BuildService';

it('records every unary and streaming RPC by service, method and status code, and serves them on GET /metrics', async (t) => {
  const running = await startBuildService({
    getBuild: unary(async (request: { buildId: string }) => {
      if (request.buildId !== 'known') throw new NotFoundError(`build ${request.buildId} not found`);
      return { build: undefined };
    }),
    watchBuild: serverStream(async (_request: unknown, _ctx, send: (message: object) => Promise<void>) => {
      await send({ event: undefined });
    }),
  });
  const metrics = await startMetricsServer({ host: '127.0.0.1', port: 0, logger: createLogger('test', 'silent') });
  const client = new BuildServiceClient(running.address, credentials.createInsecure());
  t.after(async () => {
    client.close();
    await metrics.close();
    await running.shutdown(100);
  });
  const getBuild = (buildId: string) =>
    new Promise<void>((resolve, reject) => client.getBuild({ buildId }, (error) => (error ? reject(error) : resolve())));

  await getBuild('known');
  await assert.rejects(getBuild('missing'), (e: ServiceError) => e.code === status.NOT_FOUND);
  await assert.rejects(getBuild('missing'), (e: ServiceError) => e.code === status.NOT_FOUND);
  for await (const _ of client.watchBuild({ buildId: 'known', afterSequence: '0', follow: false })) void _;
  await assert.rejects(
    new Promise((resolve, reject) => client.listBuilds({ pageSize: 0, pageToken: '', state: 0 }, (e, r) => (e ? reject(e) : resolve(r)))),
    (e: ServiceError) => e.code === status.UNIMPLEMENTED,
  );

  const scrape = await scrapeMetrics(metrics.url);
  assert.equal(scrape.status, 200);
  assert.match(scrape.contentType, /^text\/plain; version=0\.0\.4/);
  assert.equal(scrape.types.get('kindling_rpc_duration_seconds'), 'histogram');
  const count = (method: string, code: string) => sampleValue(scrape.samples, 'kindling_rpc_duration_seconds_count', { service, method, code });
  assert.equal(count('GetBuild', 'OK'), 1);
  assert.equal(count('GetBuild', 'NOT_FOUND'), 2);
  assert.equal(count('WatchBuild', 'OK'), 1);
  assert.equal(count('ListBuilds', 'UNIMPLEMENTED'), 1);
  assert.equal(count('GetBuild', 'INTERNAL'), undefined);
  const series = scrape.samples.filter((s) => s.name === 'kindling_rpc_duration_seconds_count');
  assert.equal(series.length, 4, 'one series per method and code that happened, nothing for the health checks of the harness');
  const inf = sampleValue(scrape.samples, 'kindling_rpc_duration_seconds_bucket', { service, method: 'GetBuild', code: 'NOT_FOUND', le: '+Inf' });
  assert.equal(inf, 2);
  const sum = sampleValue(scrape.samples, 'kindling_rpc_duration_seconds_sum', { service, method: 'GetBuild', code: 'OK' });
  assert.ok(sum !== undefined && sum > 0 && sum < 5, `sum ${sum}`);
  assert.ok((sampleValue(scrape.samples, 'process_cpu_user_seconds_total') ?? 0) > 0, 'the default process metrics are there');
  assert.ok(sampleValue(scrape.samples, 'nodejs_heap_size_used_bytes') !== undefined);

  const other = await fetch(metrics.url.replace('/metrics', '/'));
  assert.equal(other.status, 404);
  await other.text();
  assert.equal((await fetch(metrics.url, { method: 'POST' }).then(async (r) => (await r.text(), r.status))), 405);
});

it('close() leaves nothing listening, even with a keep-alive connection open', async () => {
  const metrics = await startMetricsServer({ host: '127.0.0.1', port: 0, logger: createLogger('test', 'silent') });
  const response = await fetch(metrics.url, { headers: { connection: 'keep-alive' } });
  await response.text();
  await metrics.close();
  const refused = await new Promise<boolean>((resolve) => {
    const socket = connect(metrics.port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });
  assert.ok(refused, 'the port is closed');
});
