/** PlanBuild over gRPC with a real planner server on 127.0.0.1:0 and a real client. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { BuildServiceClient, PlanBuildResponse, Severity, type PlanBuildRequest } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { createLogger, statusDetails, type RunningGrpcService } from '@kindling/runtime';
import { assertServiceBasics } from '@kindling/runtime/testing';
import { loadPlannerConfig } from '../src/config.ts';
import type { CatalogImage } from '../src/domain/catalog.ts';
import type { ImageCatalog } from '../src/ports/image-catalog.ts';
import { plannerServiceName, startPlannerService } from '../src/server.ts';

/** A catalog whose contents (or failure) each test sets. */
class SettableCatalog implements ImageCatalog {
  images: CatalogImage[] = [];
  failure: Error | undefined;
  async listImages(): Promise<CatalogImage[]> {
    if (this.failure) throw this.failure;
    return this.images;
  }
}

const request = (dockerfile: string, overrides: Partial<PlanBuildRequest> = {}): PlanBuildRequest => ({ dockerfile, dockerfilePath: '', buildArgs: {}, target: '', platform: '', ...overrides });

describe('PlanBuild over gRPC', () => {
  let running: RunningGrpcService;
  let client: BuildServiceClient;
  const catalog = new SettableCatalog();

  before(async () => {
    const logger = createLogger('test', 'silent');
    running = await startPlannerService(loadPlannerConfig(['--port', '0', '--host', '127.0.0.1'], {}), { logger, catalog });
    running.health.setServing(true);
    client = new BuildServiceClient(running.address, credentials.createInsecure());
  });

  after(async () => {
    client.close();
    await running.shutdown(100);
  });

  const plan = (r: PlanBuildRequest): Promise<PlanBuildResponse> => new Promise((resolve, reject) => client.planBuild(r, (e, res) => (e ? reject(e) : resolve(res))));

  it('serves health and reflection', async () => {
    await assertServiceBasics(running.address, plannerServiceName);
  });

  it('plans a multi-stage Dockerfile with build args and a target', async () => {
    catalog.images = [{ name: 'debian', tag: '12', kind: 'base-os', digest: 'sha256:' + 'd'.repeat(64) }];
    const text = 'ARG V=1\nFROM debian:12 AS build\nARG V\nRUN --mount=type=secret,id=tok make V=$V\nFROM debian:12 AS final\nCOPY --from=build /out /app/\nCOPY <<EOF /etc/motd\nhi\nEOF\nUSER 1000\nCMD ["/app/run"]\nFROM scratch AS unused\n';
    const response = await plan(request(text, { buildArgs: { V: '2', EXTRA: 'x' }, target: 'final' }));
    const p = response.plan;
    assert.ok(p);
    assert.equal(p.targetStageIndex, 1);
    assert.deepEqual(p.skippedStageIndexes, [2]);
    assert.deepEqual(p.stages.map((s) => s.base?.source), [{ $case: 'image', value: 'debian:12' }, { $case: 'image', value: 'debian:12' }]);
    assert.equal(p.stages[0]?.base?.resolved, true);
    const run = p.stages[0]?.steps.find((s) => s.instruction === 'RUN');
    assert.deepEqual(run?.action?.$case === 'run' && run.action.value.command, { $case: 'script', value: 'make V=$V' });
    assert.ok(run?.context?.env.includes('V=2'));
    assert.match(run?.cacheKey ?? '', /^sha256:[0-9a-f]{64}$/);
    const copy = p.stages[1]?.steps[0];
    assert.deepEqual(copy?.action?.$case === 'copy' && copy.action.value.from, { $case: 'fromStageIndex', value: 0 });
    assert.deepEqual(p.image?.cmd, ['/app/run']);
    assert.equal(p.image?.user, '1000');
    assert.deepEqual(p.secrets, ['tok']);
    assert.deepEqual(p.unusedBuildArgs, ['EXTRA']);
    assert.deepEqual(p.buildArgs, { V: '2' });
    assert.ok(response.diagnostics.some((d) => d.rule === 'UnusedBuildArgs' && d.severity === Severity.SEVERITY_WARNING));
  });

  it('plans an unknown base as unresolved, with a warning naming the available images', async () => {
    catalog.images = [{ name: 'debian', tag: '12', kind: 'base-os' }];
    const response = await plan(request('FROM node:20\nRUN node -v\n', { dockerfilePath: 'web/Dockerfile' }));
    assert.equal(response.plan?.stages[0]?.base?.resolved, false);
    const warning = response.diagnostics.find((d) => d.rule === 'UnresolvedBaseImage');
    assert.deepEqual([warning?.line, warning?.file], [1, 'web/Dockerfile']);
    assert.match(warning?.message ?? '', /available: debian:12/);
  });

  it('shows a digest-pinned base with its digest', async () => {
    const digest = 'sha256:' + 'f'.repeat(64);
    catalog.images = [{ name: 'debian', tag: '12', kind: 'base-os', digest }];
    const response = await plan(request(`FROM debian@${digest} AS a\nFROM debian:12@${digest} AS b\nFROM node@${digest}\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n`));
    assert.deepEqual(
      response.plan?.stages.map((s) => [s.base?.source, s.base?.resolved]),
      [
        [{ $case: 'image', value: `debian@${digest}` }, true],
        [{ $case: 'image', value: `debian:12@${digest}` }, true],
        [{ $case: 'image', value: `node@${digest}` }, false],
      ],
    );
  });

  it('still plans when the image catalog is unreachable', async () => {
    catalog.failure = new Error('vmm at 127.0.0.1:1 unavailable');
    try {
      const response = await plan(request('FROM debian:12\n'));
      assert.ok(response.plan);
      assert.ok(response.diagnostics.some((d) => d.rule === 'ImageCatalogUnavailable'));
      // The base was not checked: it must not read as missing from an empty store.
      const base = response.diagnostics.find((d) => d.rule === 'UnresolvedBaseImage');
      assert.match(base?.message ?? '', /FROM debian:12: not checked against an image catalog/);
      assert.doesNotMatch(base?.message ?? '', /available: none/);
    } finally {
      catalog.failure = undefined;
    }
  });

  it('answers INVALID_ARGUMENT with every diagnostic in the status details', async () => {
    const text = 'FROM scratch\nRUN --bogus true\nCOPPY a /b\nWORKDIR ${DIR:?set DIR}\n';
    const error = await plan(request(text)).then(
      () => assert.fail('expected INVALID_ARGUMENT'),
      (e: ServiceError) => e,
    );
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.match(error.details, /Dockerfile has 3 errors:\nDockerfile:2:5: RUN: unknown flag: --bogus/);
    const [detail] = statusDetails(error);
    assert.equal(detail?.typeName, 'kindling.planner.v1.PlanBuildResponse');
    const decoded = PlanBuildResponse.decode(detail!.value);
    assert.equal(decoded.plan, undefined);
    assert.deepEqual(decoded.diagnostics.filter((d) => d.severity === Severity.SEVERITY_ERROR).map((d) => [d.line, d.instruction, d.rule]), [
      [2, 'RUN', 'InvalidFlag'],
      [3, 'COPPY', 'UnknownInstruction'],
      [4, 'WORKDIR', 'ExpansionError'],
    ]);
  });

  it('rejects a platform other than linux/amd64 and an empty Dockerfile', async () => {
    await assert.rejects(plan(request('FROM scratch\n', { platform: 'linux/arm64' })), (e: ServiceError) => e.code === status.INVALID_ARGUMENT && /linux\/amd64/.test(e.details));
    // Spellings containerd normalizes to linux/amd64 are that platform.
    for (const platform of ['linux/x86_64', 'Linux/AMD64', 'amd64']) assert.ok((await plan(request('FROM scratch\n', { platform }))).plan, platform);
    await assert.rejects(plan(request('')), (e: ServiceError) => e.code === status.INVALID_ARGUMENT && /no instructions/.test(e.details));
  });
});
