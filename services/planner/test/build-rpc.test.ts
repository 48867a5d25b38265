/**
 * The build RPCs over gRPC with a real planner: validation, records, and the event history of a build
 * whose VM host cannot be reached (no VM needed; the full flow with VMs is in test/e2e.test.ts), and
 * the planner's metrics scraped over HTTP.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { BuildState, type BuildEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { BuildServiceClient, type Build, type CreateBuildRequest, type CreateBuildResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { createLogger, InProcessEventBus, startMetricsServer, type RunningGrpcService, type RunningMetricsServer } from '@kindling/runtime';
import { freePort, sampleValue, scrapeMetrics } from '@kindling/runtime/testing';
import { GrpcBuildContextSource } from '../src/adapters/clients/fetcher-client.ts';
import { GrpcBuildGuest } from '../src/adapters/clients/provisioner-client.ts';
import { GrpcBuildVmHost } from '../src/adapters/clients/vmm-client.ts';
import { registerBuildsGauge, stepDurationObserver } from '../src/adapters/metrics/planner-metrics.ts';
import type { BuildObserver } from '../src/execution/build-shared.ts';
import { loadPlannerConfig } from '../src/config.ts';
import { BuildCoordinator } from '../src/execution/build-coordinator.ts';
import { startPlannerService } from '../src/server.ts';

function request(overrides: Partial<CreateBuildRequest>): CreateBuildRequest {
  return {
    source: { source: { $case: 'dockerfile', value: 'FROM debian:bookworm\nRUN true\n' }, dockerfilePath: '' },
    tag: 'app:1',
    buildArgs: {},
    target: '',
    noCache: false,
    secrets: [],
    labels: {},
    keepStages: false,
    ...overrides,
  };
}

describe('build RPCs', () => {
  let running: RunningGrpcService;
  let client: BuildServiceClient;
  let builds: BuildCoordinator;
  let unreachable: string;
  let metrics: RunningMetricsServer;
  let observer: BuildObserver;

  before(async () => {
    unreachable = `127.0.0.1:${await freePort()}`;
    const logger = createLogger('test', 'silent');
    const config = loadPlannerConfig(['--port', '0'], {});
    observer = stepDurationObserver();
    builds = new BuildCoordinator(
      {
        context: new GrpcBuildContextSource(unreachable),
        vmHost: new GrpcBuildVmHost('nowhere', unreachable),
        guest: new GrpcBuildGuest(unreachable),
        observer,
      },
      new InProcessEventBus(),
      { sshReadyTimeoutMs: 1000, stopTimeoutMs: 1000, extraDiskBytes: 0, defaultTimeoutMs: 20_000 },
      logger,
    );
    running = await startPlannerService(config, { logger, builds });
    running.health.setServing(true);
    registerBuildsGauge(builds, logger);
    metrics = await startMetricsServer({ host: '127.0.0.1', port: 0, logger });
    client = new BuildServiceClient(running.address, credentials.createInsecure());
  });

  after(async () => {
    client.close();
    await builds.shutdown();
    await running.shutdown(100);
    await metrics.close();
  });

  const create = (r: CreateBuildRequest): Promise<CreateBuildResponse> =>
    new Promise((resolve, reject) => client.createBuild(r, (e, res) => (e ? reject(e) : resolve(res))));

  it('rejects a bad tag, a missing source and an unset secret variable before starting anything', async () => {
    await assert.rejects(create(request({ tag: 'App:1' })), (e: ServiceError) => e.code === status.INVALID_ARGUMENT && /tag: "App:1"/.test(e.details));
    await assert.rejects(create(request({ source: { source: undefined, dockerfilePath: '' } })), (e: ServiceError) => e.code === status.INVALID_ARGUMENT && /source/.test(e.details));
    await assert.rejects(
      create(request({ secrets: [{ id: 'npmrc', value: { $case: 'env', value: 'KINDLING_TEST_UNSET_VARIABLE' } }] })),
      (e: ServiceError) => e.code === status.FAILED_PRECONDITION && /KINDLING_TEST_UNSET_VARIABLE/.test(e.details),
    );
    const listed = await new Promise<Build[]>((resolve, reject) =>
      client.listBuilds({ pageSize: 0, pageToken: '', state: 0 }, (e, r) => (e ? reject(e) : resolve(r.builds))),
    );
    assert.equal(listed.length, 0);
  });

  it('answers NOT_FOUND for an unknown build', async () => {
    await assert.rejects(
      new Promise((resolve, reject) => client.getBuild({ buildId: 'nope' }, (e, r) => (e ? reject(e) : resolve(r)))),
      (e: ServiceError) => e.code === status.NOT_FOUND && /build nope not found/.test(e.details),
    );
  });

  it('fails a build whose VM host is unreachable, with the history in order and resumable', async () => {
    const { buildId, build } = await create(request({ secrets: [{ id: 's', value: { $case: 'data', value: Buffer.from('hunter2') } }] }));
    assert.equal(build?.request?.secrets[0]?.value, undefined, 'secret values are not kept in the record');
    const events: BuildEvent[] = [];
    for await (const { event } of client.watchBuild({ buildId, afterSequence: '0', follow: true })) events.push(event);
    assert.deepEqual(events.map((e) => e.sequence), events.map((_, i) => String(i + 1)));
    const states = events.flatMap((e) => (e.payload?.$case === 'state' ? [e.payload.value] : []));
    assert.deepEqual(states.map((s) => BuildState[s.state]), ['BUILD_STATE_QUEUED', 'BUILD_STATE_PLANNING', 'BUILD_STATE_FAILED']);
    assert.equal(states.at(-1)?.error?.code, 'UNAVAILABLE');
    assert.match(states.at(-1)?.error?.message ?? '', /^vmm: /);

    const resumed: string[] = [];
    for await (const { event } of client.watchBuild({ buildId, afterSequence: '1', follow: false })) resumed.push(event.sequence);
    assert.deepEqual(resumed, events.slice(1).map((e) => e.sequence));

    const cancelled = await new Promise<Build>((resolve, reject) => client.cancelBuild({ buildId, reason: 'late' }, (e, r) => (e ? reject(e) : resolve(r.build!))));
    assert.equal(cancelled.state, BuildState.BUILD_STATE_FAILED, 'cancelling a finished build changes nothing');
    const failed = await new Promise<Build[]>((resolve, reject) =>
      client.listBuilds({ pageSize: 10, pageToken: '', state: BuildState.BUILD_STATE_FAILED }, (e, r) => (e ? reject(e) : resolve(r.builds))),
    );
    assert.deepEqual(failed.map((b) => b.id), [buildId]);

    const scrape = await scrapeMetrics(metrics.url);
    assert.equal(scrape.types.get('kindling_builds'), 'gauge');
    assert.equal(sampleValue(scrape.samples, 'kindling_builds', { state: 'FAILED' }), 1);
    for (const state of ['QUEUED', 'PLANNING', 'RUNNING', 'SUCCEEDED', 'CANCELLED']) assert.equal(sampleValue(scrape.samples, 'kindling_builds', { state }), 0, state);
    const rpcs = (method: string, code: string) =>
      sampleValue(scrape.samples, 'kindling_rpc_duration_seconds_count', { service: 'kindling.planner.v1.BuildService', method, code });
    assert.equal(rpcs('CreateBuild', 'INVALID_ARGUMENT'), 2, 'the bad tag and the missing source of the first test');
    assert.equal(rpcs('GetBuild', 'NOT_FOUND'), 1);
    assert.equal(rpcs('WatchBuild', 'OK'), 2);
  });

  it('exports step wall times by instruction kind as kindling_build_step_duration_seconds', async () => {
    // Steps only run in a VM or on a scratch stage after the vmm answered: here the observer the
    // coordinator was given is fed directly, and the histogram read back over HTTP.
    observer.stepEnded('RUN', 3, true);
    observer.stepEnded('RUN', 0.2, false);
    observer.stepEnded('COPY', 0.01, true);
    const { samples, types } = await scrapeMetrics(metrics.url);
    assert.equal(types.get('kindling_build_step_duration_seconds'), 'histogram');
    assert.equal(sampleValue(samples, 'kindling_build_step_duration_seconds_count', { kind: 'RUN' }), 2);
    assert.equal(sampleValue(samples, 'kindling_build_step_duration_seconds_bucket', { kind: 'RUN', le: '1' }), 1);
    assert.equal(sampleValue(samples, 'kindling_build_step_duration_seconds_sum', { kind: 'RUN' }), 3.2);
    assert.equal(sampleValue(samples, 'kindling_build_step_duration_seconds_count', { kind: 'COPY' }), 1);
  });
});
