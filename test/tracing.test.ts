/**
 * One build is one trace, across real service processes on 127.0.0.1: planner, fetcher, vmm and
 * provisioner as an operator runs them. A FROM scratch build with a COPY of a local context dir boots
 * no VM: the planner resolves and lists the context on the fetcher, streams the files it reads there
 * into CreateImageFromArchive on the vmm, which reads nothing back but makes the ext4 image. The logs
 * of every service that served the build show its trace id on that build's RPCs. (The provisioner is
 * only called by builds with a VM; it runs here so the suite is whole, and serves none of this build.)
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { credentials, Metadata } from '@grpc/grpc-js';
import { BuildState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { BuildServiceClient, type Build, type CreateBuildResponse, type GetBuildResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { unaryCall } from '@kindling/runtime';
import { fetcherArgs, plannerArgs, provisionerArgs, startServiceProcess, stopServiceProcess, type StartedService } from '../cli/src/local-suite.ts';

type LogLine = Record<string, unknown> & { msg?: string; method?: string; trace_id?: string; buildId?: string };

const callerTraceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const callerTraceparent = `00-${callerTraceId}-00f067aa0ba902b7-01`;

/** The JSON lines a service logs from now on (its RPCs come after its "serving" line). */
function collectLog(service: StartedService): { lines: LogLine[]; closed: Promise<void> } {
  const lines: LogLine[] = [];
  let partial = '';
  service.child.stdout!.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const complete = text.split('\n');
    partial = complete.pop()!;
    for (const line of complete) {
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {}
    }
  });
  return { lines, closed: new Promise((resolve) => service.child.stdout!.once('close', () => resolve())) };
}

async function waitForEnd(client: BuildServiceClient, buildId: string): Promise<Build> {
  for (let i = 0; i < 600; i++) {
    const { build } = await unaryCall<GetBuildResponse>('planner', (cb) => client.getBuild({ buildId }, cb));
    if (build && [BuildState.BUILD_STATE_SUCCEEDED, BuildState.BUILD_STATE_FAILED, BuildState.BUILD_STATE_CANCELLED].includes(build.state)) return build;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`build ${buildId} did not end within 60 s`);
}

describe('one build is one trace', () => {
  it("carries the build's trace id to every service the build calls, and shows it on the build", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'kindling-tracing-'));
    t.after(() => (process.env.KEEP ? undefined : rmSync(dir, { recursive: true, force: true })));
    const context = join(dir, 'context');
    mkdirSync(join(context, 'etc'), { recursive: true });
    writeFileSync(join(context, 'etc/greeting.txt'), 'hello from a trace\n');
    writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\nCOPY etc/greeting.txt /etc/greeting.txt\nCMD ["/bin/true"]\n');
    for (const sub of ['cni-conf', 'no-cni-plugins', 'vmm']) mkdirSync(join(dir, sub), { recursive: true });
    const collected = new Map<string, ReturnType<typeof collectLog>>();

    // the services' per-RPC lines are at info
    const level = process.env.KINDLING_LOG_LEVEL;
    process.env.KINDLING_LOG_LEVEL = 'info';
    t.after(() => (level === undefined ? delete process.env.KINDLING_LOG_LEVEL : (process.env.KINDLING_LOG_LEVEL = level)));
    const started: StartedService[] = [];
    const stopAll = async (): Promise<void> => {
      for (const service of started.reverse()) await stopServiceProcess(service);
      started.length = 0;
    };
    t.after(stopAll);
    const start = async (name: string, args: string[]): Promise<string> => {
      const service = await startServiceProcess(name, args);
      started.push(service);
      collected.set(name, collectLog(service));
      return service.address;
    };
    const vmm = await start('vmm', [
      `--state-dir=${join(dir, 'vmm')}`,
      `--cache-dir=${join(dir, 'no-base-os')}`,
      '--register-base-os=false',
      `--cni-conf-dir=${join(dir, 'cni-conf')}`,
      `--cni-bin-path=${join(dir, 'no-cni-plugins')}`,
      '--netns-prefix=kindling-tracetest-',
      '--host-name=tracetest',
    ]);
    const fetcherCache = join(dir, 'fetcher');
    const fetcher = await start('fetcher', fetcherArgs(fetcherCache));
    const provisioner = await start('provisioner', provisionerArgs(fetcher, fetcherCache));
    const planner = await start('planner', [...plannerArgs(join(dir, 'planner'), { fetcher, vmm, provisioner }), '--vmm-host-name=tracetest']);

    const client = new BuildServiceClient(planner, credentials.createInsecure());
    t.after(() => client.close());
    const createBuild = (tag: string, metadata: Metadata): Promise<CreateBuildResponse> =>
      new Promise((resolve, reject) =>
        client.createBuild({ source: { source: { $case: 'contextPath', value: context }, dockerfilePath: '' }, tag, buildArgs: {}, target: '', noCache: true, secrets: [], labels: {}, keepStages: false }, metadata, (error, response) =>
          error ? reject(error) : resolve(response),
        ),
      );

    // a caller that sent a traceparent: the build continues its trace
    const withParent = new Metadata();
    withParent.set('traceparent', callerTraceparent);
    const continued = await createBuild('trace/continued:1', withParent);
    assert.equal(continued.build?.traceId, callerTraceId, 'CreateBuild answers with the trace id of the build');
    // a caller that sent none: the planner starts a trace of the build's own
    const fresh = await createBuild('trace/fresh:1', new Metadata());
    const freshTraceId = fresh.build?.traceId ?? '';
    assert.match(freshTraceId, /^[0-9a-f]{32}$/);
    assert.notEqual(freshTraceId, callerTraceId);

    const builds = [
      { id: continued.buildId, traceId: callerTraceId, tag: 'trace/continued:1' },
      { id: fresh.buildId, traceId: freshTraceId, tag: 'trace/fresh:1' },
    ];
    for (const build of builds) {
      const ended = await waitForEnd(client, build.id);
      assert.equal(ended.state, BuildState.BUILD_STATE_SUCCEEDED, JSON.stringify(ended.error));
      assert.equal(ended.traceId, build.traceId, 'GetBuild shows the trace id');
    }

    await stopAll();
    await Promise.all([...collected.values()].map((log) => log.closed));
    const logs = Object.fromEntries([...collected].map(([name, log]) => [name, log.lines]));
    const rpcs = (service: string, traceId: string): LogLine[] => logs[service]!.filter((l) => l.msg === 'rpc' && l.trace_id === traceId);
    const methods = (service: string, traceId: string): string[] => [...new Set(rpcs(service, traceId).map((l) => String(l.method).split('/').pop() ?? ''))].sort();

    for (const build of builds) {
      // the planner: CreateBuild in the caller's trace, and the build's own lines
      const createLine = logs.planner!.find((l) => l.msg === 'rpc' && String(l.method).endsWith('/CreateBuild') && l.trace_id === build.traceId);
      assert.ok(createLine, `the planner logged CreateBuild of ${build.tag} with trace_id ${build.traceId}`);
      const buildLines = logs.planner!.filter((l) => l.buildId === build.id && l.msg !== 'rpc');
      assert.ok(buildLines.length > 0 && buildLines.every((l) => l.trace_id === build.traceId), `every line the planner logged for build ${build.id} has its trace id`);
      // the fetcher resolved and listed the context and served the COPY's file, the vmm made the image
      assert.deepEqual(
        methods('fetcher', build.traceId).filter((m) => ['ResolveContext', 'ListFiles', 'ReadBlob'].includes(m)),
        ['ListFiles', 'ReadBlob', 'ResolveContext'],
        `fetcher RPCs of the build's trace: ${methods('fetcher', build.traceId).join(', ')}`,
      );
      assert.ok(methods('vmm', build.traceId).includes('CreateImageFromArchive'), `vmm RPCs of the build's trace: ${methods('vmm', build.traceId).join(', ')}`);
      assert.ok(rpcs('vmm', build.traceId).every((l) => l.code === 'OK'));
      // each served call is a span of its own
      const spanIds = [...rpcs('fetcher', build.traceId), ...rpcs('vmm', build.traceId)].map((l) => l.span_id);
      assert.equal(new Set(spanIds).size, spanIds.length);
    }
    // the two builds ran at once and their traces do not mix: one image made in each
    for (const build of builds) {
      assert.equal(rpcs('vmm', build.traceId).filter((l) => String(l.method).endsWith('/CreateImageFromArchive')).length, 1);
    }
    assert.equal(logs.provisioner!.filter((l) => l.msg === 'rpc' && builds.some((b) => b.traceId === l.trace_id)).length, 0, 'no VM, so no provisioner call');
  });
});
