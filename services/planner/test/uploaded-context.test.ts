/**
 * A build whose context is an archive uploaded with FetcherService.UploadContext (BuildSource.upload_id),
 * through a real fetcher and a real planner on 127.0.0.1. No VM: the VM host is unreachable, as in
 * build-rpc.test.ts, so a build resolves its context and then fails at the vmm; the context itself is
 * checked through the planner's fetcher client (ResolveContext + ListFiles).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { loadFetcherConfig, startFetcherService } from '@kindling/fetcher';
import { BuildState, type BuildStateChanged } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { ContextKind, FetcherServiceClient, type UploadContextResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { BuildServiceClient, type BuildSource, type CreateBuildResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { createLogger, InProcessEventBus, NotFoundError, type RunningGrpcService } from '@kindling/runtime';
import { freePort } from '@kindling/runtime/testing';
import { GrpcBuildContextSource } from '../src/adapters/clients/fetcher-client.ts';
import { GrpcBuildGuest } from '../src/adapters/clients/provisioner-client.ts';
import { GrpcBuildVmHost } from '../src/adapters/clients/vmm-client.ts';
import { loadPlannerConfig } from '../src/config.ts';
import { BuildCoordinator } from '../src/execution/build-coordinator.ts';
import { startPlannerService } from '../src/server.ts';

function upload(client: FetcherServiceClient, fileName: string, data: Buffer): Promise<UploadContextResponse> {
  return new Promise((resolve, reject) => {
    const call = client.uploadContext((error, response) => (error ? reject(error) : resolve(response)));
    call.write({ part: { $case: 'header', value: { fileName, size: String(data.length) } } });
    call.write({ part: { $case: 'chunk', value: data } });
    call.end();
  });
}

const uploaded = (uploadId: string, dockerfilePath = ''): BuildSource => ({ source: { $case: 'uploadId', value: uploadId }, dockerfilePath });

describe('builds from an uploaded context archive', () => {
  const logger = createLogger('test', 'silent');
  let dir: string;
  let fetcher: RunningGrpcService;
  let fetcherClient: FetcherServiceClient;
  let context: GrpcBuildContextSource;
  let planner: RunningGrpcService;
  let builds: BuildCoordinator;
  let client: BuildServiceClient;
  let archive: UploadContextResponse;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kindling-planner-upload-'));
    const src = join(dir, 'src');
    mkdirSync(join(src, 'app'), { recursive: true });
    mkdirSync(join(src, 'build'));
    writeFileSync(join(src, 'build', 'app.Dockerfile'), 'FROM debian:bookworm\nCOPY app/ /srv/app/\n');
    writeFileSync(join(src, 'app', 'main.sh'), '#!/bin/sh\necho hi\n');
    execFileSync('tar', ['-czf', join(dir, 'ctx.tar.gz'), '-C', src, '.']);

    fetcher = await startFetcherService(loadFetcherConfig(['--port=0', `--cache-dir=${join(dir, 'cache')}`], {}), { logger });
    fetcher.health.setServing(true);
    const fetcherAddress = `127.0.0.1:${fetcher.port}`;
    fetcherClient = new FetcherServiceClient(fetcherAddress, credentials.createInsecure());
    archive = await upload(fetcherClient, 'ctx.tar.gz', readFileSync(join(dir, 'ctx.tar.gz')));
    context = new GrpcBuildContextSource(fetcherAddress);

    const unreachable = `127.0.0.1:${await freePort()}`;
    builds = new BuildCoordinator(
      { context: new GrpcBuildContextSource(fetcherAddress), vmHost: new GrpcBuildVmHost('nowhere', unreachable), guest: new GrpcBuildGuest(unreachable) },
      new InProcessEventBus(),
      { sshReadyTimeoutMs: 1000, stopTimeoutMs: 1000, extraDiskBytes: 0, defaultTimeoutMs: 20_000 },
      logger,
    );
    planner = await startPlannerService(loadPlannerConfig(['--port', '0'], {}), { logger, builds });
    planner.health.setServing(true);
    client = new BuildServiceClient(planner.address, credentials.createInsecure());
  });

  after(async () => {
    client?.close();
    await builds?.shutdown();
    await planner?.shutdown(100);
    context?.close();
    fetcherClient?.close();
    await fetcher?.shutdown(100);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a build to its end and returns its final state change. */
  async function finalState(source: BuildSource): Promise<BuildStateChanged | undefined> {
    const { buildId } = await new Promise<CreateBuildResponse>((resolve, reject) =>
      client.createBuild({ source, tag: 'app:1', buildArgs: {}, target: '', noCache: false, secrets: [], labels: {}, keepStages: false }, (e, r) =>
        e ? reject(e) : resolve(r),
      ),
    );
    let last: BuildStateChanged | undefined;
    for await (const { event } of client.watchBuild({ buildId, afterSequence: '0', follow: true })) {
      if (event.payload?.$case === 'state') last = event.payload.value;
    }
    return last;
  }

  it('resolves the upload as a tarball context with the Dockerfile path, and lists its files', async () => {
    const signal = AbortSignal.timeout(20_000);
    const resolved = await context.resolve(uploaded(archive.uploadId, 'build/app.Dockerfile'), signal);
    assert.equal(resolved.kind, ContextKind.CONTEXT_KIND_TARBALL);
    assert.equal(resolved.dockerfilePath, 'build/app.Dockerfile');
    assert.match(resolved.dockerfile, /COPY app\/ \/srv\/app\//);
    assert.match(resolved.displayRoot, new RegExp(archive.uploadId));
    const listed = await context.listFiles(resolved.contextId, ['app/'], [], signal);
    assert.deepEqual(listed.sources[0]?.files.map((f) => f.path), ['app', 'app/main.sh']);
  });

  it('plans a build from the upload: it gets past context resolution and stops at the unreachable VM host', async () => {
    const state = await finalState(uploaded(archive.uploadId, 'build/app.Dockerfile'));
    assert.equal(state?.state, BuildState.BUILD_STATE_FAILED);
    assert.equal(state?.error?.code, 'UNAVAILABLE');
    assert.match(state?.error?.message ?? '', /^vmm: /);
  });

  it('fails with NOT_FOUND naming an upload id the fetcher does not have', async () => {
    const unknown = `upload-${'0'.repeat(64)}`;
    await assert.rejects(context.resolve(uploaded(unknown), AbortSignal.timeout(20_000)), (e: Error) => e instanceof NotFoundError && e.message.includes(unknown));
    const state = await finalState(uploaded(unknown));
    assert.equal(state?.state, BuildState.BUILD_STATE_FAILED);
    assert.equal(state?.error?.code, 'NOT_FOUND');
    assert.match(state?.error?.message ?? '', new RegExp(`^fetcher: uploaded archive ${unknown} is not in the fetcher's cache`));
  });
});
