import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import {
  BuildServiceClient,
  BuildServiceService,
  PlanBuildResponse,
  Severity,
} from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { HealthCheckResponse_ServingStatus } from '@kindling/proto/gen/grpc/health/v1/health.ts';
import {
  InvalidArgumentError,
  createLogger,
  serverStream,
  startGrpcService,
  statusDetails,
  unary,
  unimplementedMethods,
  type RunningGrpcService,
} from '../src/index.ts';
import { ReflectionTestClient, healthStatus } from '../src/testing/index.ts';

const serviceName = 'kindling.planner.v1.BuildService';

describe('gRPC runtime', () => {
  let running: RunningGrpcService;
  let client: BuildServiceClient;
  const aborted: string[] = [];

  before(async () => {
    running = await startGrpcService({
      name: 'test',
      host: '127.0.0.1',
      port: 0,
      logger: createLogger('test', 'silent'),
      services: [
        {
          name: serviceName,
          definition: BuildServiceService,
          implementation: {
            ...unimplementedMethods(BuildServiceService, 'the test issue'),
            planBuild: unary(async () => {
              const details = PlanBuildResponse.encode({
                diagnostics: [{ severity: Severity.SEVERITY_ERROR, line: 3, column: 1, endLine: 3, endColumn: 5, instruction: 'FORM', message: 'unknown instruction: FORM', rule: 'UnknownInstruction', file: 'Dockerfile' }],
              }).finish();
              throw new InvalidArgumentError('Dockerfile:3: unknown instruction: FORM', {
                details: [{ typeName: 'kindling.planner.v1.PlanBuildResponse', value: details }],
              });
            }),
            createBuild: unary(async () => {
              throw new Error('secret internal detail /etc/shadow');
            }),
            getBuild: unary(async (_request, ctx) => {
              await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
              aborted.push((ctx.signal.reason as Error).name);
              return {};
            }),
            watchBuild: serverStream(async (_request, ctx, send) => {
              for (let sequence = 1; sequence <= 3; sequence++) {
                await send({ event: { buildId: 'b1', sequence: String(sequence) } });
              }
              ctx.log.info('sent');
            }),
          },
        },
      ],
    });
    client = new BuildServiceClient(running.address, credentials.createInsecure());
  });

  after(async () => {
    client.close();
    await running.shutdown(100);
  });

  it('reports NOT_SERVING until the service says it is ready, then SERVING', async () => {
    assert.equal(await healthStatus(running.address), HealthCheckResponse_ServingStatus.NOT_SERVING);
    running.health.setServing(true);
    assert.equal(await healthStatus(running.address), HealthCheckResponse_ServingStatus.SERVING);
    assert.equal(await healthStatus(running.address, serviceName), HealthCheckResponse_ServingStatus.SERVING);
  });

  it('serves reflection from protoc descriptors so imported types resolve as grpcurl resolves them', async () => {
    const reflection = new ReflectionTestClient(running.address);
    try {
      const services = await reflection.listServices();
      assert.ok(services.includes(serviceName));
      assert.ok(services.includes('grpc.health.v1.Health'));
      const registry = await reflection.resolveSymbol(`${serviceName}.GetBuild`);
      const build = registry.getMessage('kindling.planner.v1.Build');
      assert.equal(build?.field.created?.message?.typeName, 'google.protobuf.Timestamp');
      assert.equal(build?.field.state?.enum?.typeName, 'kindling.events.v1.BuildState');
      await assert.rejects(reflection.resolveSymbol('kindling.nope.v1.Nothing'), /not found/);
    } finally {
      reflection.close();
    }
  });

  it('answers UNIMPLEMENTED naming the work that will provide the method', async () => {
    const error = await new Promise<ServiceError>((resolve) =>
      client.listBuilds({ pageSize: 1, pageToken: '', state: 0 }, (e) => resolve(e!)),
    );
    assert.equal(error.code, status.UNIMPLEMENTED);
    assert.match(error.details, /ListBuilds is not implemented yet: the test issue/);
  });

  it('maps domain errors to their code with details, and hides unexpected ones as INTERNAL', async () => {
    const invalid = await new Promise<ServiceError>((resolve) =>
      client.planBuild({ dockerfile: 'FORM x', dockerfilePath: '', buildArgs: {}, target: '', platform: '' }, (e) => resolve(e!)),
    );
    assert.equal(invalid.code, status.INVALID_ARGUMENT);
    assert.equal(invalid.details, 'Dockerfile:3: unknown instruction: FORM');
    const [detail] = statusDetails(invalid);
    assert.equal(detail?.typeName, 'kindling.planner.v1.PlanBuildResponse');
    assert.equal(PlanBuildResponse.decode(detail!.value).diagnostics[0]?.line, 3);

    const internal = await new Promise<ServiceError>((resolve) =>
      client.createBuild({ tag: 'x', buildArgs: {}, target: '', noCache: false, secrets: [], labels: {}, keepStages: false }, (e) => resolve(e!)),
    );
    assert.equal(internal.code, status.INTERNAL);
    assert.doesNotMatch(internal.details, /shadow/);
  });

  it('streams server responses in order', async () => {
    const sequences: string[] = [];
    const stream = client.watchBuild({ buildId: 'b1', afterSequence: '0', follow: true });
    for await (const response of stream) sequences.push(response.event.sequence);
    assert.deepEqual(sequences, ['1', '2', '3']);
  });

  it('aborts the handler signal on client cancellation and on deadline', async () => {
    const call = client.getBuild({ buildId: 'b1' }, () => {});
    await new Promise((r) => setTimeout(r, 100));
    call.cancel();
    const deadlineError = await new Promise<ServiceError>((resolve) =>
      client.getBuild({ buildId: 'b2' }, new Metadata(), { deadline: new Date(Date.now() + 200) }, (e) => resolve(e!)),
    );
    assert.equal(deadlineError.code, status.DEADLINE_EXCEEDED);
    for (let i = 0; i < 50 && aborted.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(aborted.sort(), ['CancelledError', 'DeadlineExceededError']);
  });
});
