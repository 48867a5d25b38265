import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { credentials, Metadata } from '@grpc/grpc-js';
import { context, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { BuildServiceClient, type GetBuildResponse, type ListBuildsResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { activeTraceId, createServiceClient, unary, unaryCall, type RunningGrpcService } from '../src/index.ts';
import { captureLog, startBuildService, type CapturedLog } from './support.ts';

// The examples of https://www.w3.org/TR/trace-context/ (traceparent and tracestate sections).
const specTraceId = '0af7651916cd43dd8448eb211c80319c';
const specParentId = 'b7ad6b7169203331';
const specTraceparent = `00-${specTraceId}-${specParentId}-01`;
const specTracestate = 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE';
const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

interface Seen {
  traceparent: string | undefined;
  tracestate: string | undefined;
  activeTraceId: string | undefined;
}

async function rpcLines(log: CapturedLog, count: number): Promise<Array<Record<string, unknown>>> {
  const lines = (): Array<Record<string, unknown>> => log.lines.filter((l) => l.msg === 'rpc');
  for (let i = 0; i < 100 && lines().length < count; i++) await new Promise((r) => setTimeout(r, 20));
  return lines();
}

describe('trace context over gRPC metadata', () => {
  const frontLog = captureLog({ service: 'front' });
  const backLog = captureLog({ service: 'back' });
  let front: RunningGrpcService;
  let back: RunningGrpcService;
  let backClient: BuildServiceClient;
  let client: BuildServiceClient;
  const seenByBack: Seen[] = [];
  const seenByFront: Seen[] = [];

  before(async () => {
    back = await startBuildService(
      {
        listBuilds: unary(async (_request, ctx) => {
          seenByBack.push({
            traceparent: ctx.metadata.get('traceparent')[0] as string | undefined,
            tracestate: ctx.metadata.get('tracestate')[0] as string | undefined,
            activeTraceId: activeTraceId(),
          });
          return { builds: [], nextPageToken: '' };
        }),
      },
      backLog.logger,
    );
    backClient = createServiceClient(BuildServiceClient, back.address);
    front = await startBuildService(
      {
        // a handler that calls another service: the nested call continues the trace
        getBuild: unary(async (_request, ctx) => {
          seenByFront.push({ traceparent: ctx.metadata.get('traceparent')[0] as string | undefined, tracestate: undefined, activeTraceId: activeTraceId() });
          await new Promise((r) => setTimeout(r, 5));
          await unaryCall<ListBuildsResponse>('back', (cb) => backClient.listBuilds({ pageSize: 1, pageToken: '', state: 0 }, cb), ctx.signal);
          return { build: undefined };
        }),
      },
      frontLog.logger,
    );
    client = new BuildServiceClient(front.address, credentials.createInsecure());
  });

  after(async () => {
    client.close();
    backClient.close();
    await front.shutdown(100);
    await back.shutdown(100);
  });

  const getBuild = (metadata: Metadata): Promise<GetBuildResponse> =>
    new Promise((resolve, reject) => client.getBuild({ buildId: 'b1' }, metadata, (error, response) => (error ? reject(error) : resolve(response))));

  it("continues the caller's trace: the handler, its log line and its nested call carry the trace id, the nested call a new parent span id", async () => {
    const metadata = new Metadata();
    metadata.set('traceparent', specTraceparent);
    metadata.set('tracestate', specTracestate);
    await getBuild(metadata);

    assert.equal(seenByFront.at(-1)?.activeTraceId, specTraceId);
    const [frontLine] = (await rpcLines(frontLog, 1)).filter((l) => l.buildId === 'b1');
    assert.equal(frontLine?.trace_id, specTraceId);
    assert.match(String(frontLine?.span_id), /^[0-9a-f]{16}$/);
    assert.notEqual(frontLine?.span_id, specParentId, 'the server span is a new span under the caller');

    const nested = seenByBack.at(-1)!;
    const [, traceId, parentId, flags] = traceparentPattern.exec(nested.traceparent ?? '') ?? [];
    assert.equal(traceId, specTraceId, 'the nested call carries the same trace id');
    assert.ok(parentId && parentId !== specParentId && parentId !== frontLine?.span_id, `a new parent span id: ${parentId}`);
    assert.equal(flags, '01', 'the sampled flag passes through');
    assert.equal(nested.tracestate, specTracestate, 'tracestate passes through unchanged');
    assert.equal(nested.activeTraceId, specTraceId);
    const [backLine] = await rpcLines(backLog, 1);
    assert.equal(backLine?.trace_id, specTraceId);
    assert.notEqual(backLine?.span_id, parentId);
  });

  it('starts a new trace when the caller sent no traceparent, or one the spec rejects', async () => {
    const invalid = [
      '',
      `00-00000000000000000000000000000000-${specParentId}-01`, // all-zero trace id
      `00-${specTraceId}-0000000000000000-01`, // all-zero parent id
      `ff-${specTraceId}-${specParentId}-01`, // version ff
      `00-${specTraceId.toUpperCase()}-${specParentId}-01`, // upper-case hex
      `00-${specTraceId}-${specParentId}-01-extra`, // version 00 with more fields
    ];
    const traceIds = new Set<string>();
    for (const value of invalid) {
      const metadata = new Metadata();
      if (value) metadata.set('traceparent', value);
      await getBuild(metadata);
      const traceId = seenByFront.at(-1)?.activeTraceId;
      assert.match(String(traceId), /^[0-9a-f]{32}$/, `a fresh trace id for "${value}"`);
      assert.notEqual(traceId, specTraceId);
      assert.equal(seenByBack.at(-1)?.activeTraceId, traceId, 'the nested call joins the new trace');
      assert.equal(traceparentPattern.exec(seenByBack.at(-1)?.traceparent ?? '')?.[3], '00', 'a new root is not sampled');
      traceIds.add(traceId!);
    }
    assert.equal(traceIds.size, invalid.length, 'each call is a trace of its own');
  });

  it('accepts a future version with more fields (the spec says to parse its first four)', async () => {
    const metadata = new Metadata();
    metadata.set('traceparent', `01-${specTraceId}-${specParentId}-01-what-comes-next`);
    await getBuild(metadata);
    assert.equal(seenByFront.at(-1)?.activeTraceId, specTraceId);
  });

  it("a client made with createServiceClient sends the active context's trace", async () => {
    const spanContext = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED };
    await context.with(trace.setSpanContext(ROOT_CONTEXT, spanContext), () =>
      unaryCall<ListBuildsResponse>('back', (cb) => backClient.listBuilds({ pageSize: 1, pageToken: '', state: 0 }, cb)),
    );
    const [, traceId, parentId] = traceparentPattern.exec(seenByBack.at(-1)?.traceparent ?? '') ?? [];
    assert.equal(traceId, spanContext.traceId);
    assert.notEqual(parentId, spanContext.spanId, 'the CLIENT span is the parent the server sees');
    assert.equal(seenByBack.at(-1)?.tracestate, undefined, 'no tracestate when there is none');
  });
});
