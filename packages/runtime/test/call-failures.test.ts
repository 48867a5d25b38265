import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { BuildServiceClient, BuildServiceService } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import * as errors from '../src/errors.ts';
import { createLogger, createServiceClient, domainErrorFromStatus, isPeerAway, retryWhilePeerAway, startGrpcService, unary, unaryCall, type RunningGrpcService } from '../src/index.ts';
import { captureLog, startBuildService } from './support.ts';

type DomainErrorClass = new (message: string) => errors.DomainError;
const domainErrorClasses = (Object.values(errors) as unknown[]).filter(
  (value): value is DomainErrorClass => typeof value === 'function' && value.prototype instanceof errors.DomainError,
);

/** A handler that fails the way fetch or a stream does when its signal fires: with a DOMException. */
function abortedLikeFetch(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) =>
    signal.addEventListener('abort', () => reject(new DOMException('This operation was aborted', 'AbortError')), { once: true }),
  );
}

describe('failures caused by the client', () => {
  let running: RunningGrpcService;
  let client: BuildServiceClient;
  const log = captureLog();

  before(async () => {
    running = await startBuildService(
      {
        getBuild: unary(async (_request, ctx) => abortedLikeFetch(ctx.signal)),
        cancelBuild: unary(async (_request, ctx) => abortedLikeFetch(ctx.signal)),
        listBuilds: unary(async (request: { pageToken: string }) => {
          const Kind = domainErrorClasses.find((c) => c.name === request.pageToken)!;
          throw new Kind(`${request.pageToken} from the domain`);
        }),
      },
      log.logger,
    );
    client = new BuildServiceClient(running.address, credentials.createInsecure());
  });

  after(async () => {
    client.close();
    await running.shutdown(100);
  });

  async function logLineOf(method: string): Promise<(typeof log.lines)[number]> {
    for (let i = 0; i < 100; i++) {
      const line = log.lines.find((l) => l.method === `/kindling.planner.v1.BuildService/${method}`);
      if (line) return line;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no log line for ${method}: ${log.text()}`);
  }

  it('maps every DomainError subclass to its own status code with its message', async () => {
    assert.equal(domainErrorClasses.length, 12);
    for (const Kind of domainErrorClasses) {
      const expected = new Kind('x').code;
      const error = await new Promise<ServiceError>((resolve) =>
        client.listBuilds({ pageSize: 1, pageToken: Kind.name, state: 0 }, (e) => resolve(e!)),
      );
      assert.equal(status[error.code], expected, Kind.name);
      assert.equal(error.details, `${Kind.name} from the domain`);
    }
  });

  it("a handler's own abort error after the deadline is DEADLINE_EXCEEDED, logged as such, not an internal failure", async () => {
    const error = await new Promise<ServiceError>((resolve) =>
      client.getBuild({ buildId: 'b1' }, new Metadata(), { deadline: new Date(Date.now() + 200) }, (e) => resolve(e!)),
    );
    assert.equal(error.code, status.DEADLINE_EXCEEDED);
    const line = await logLineOf('GetBuild');
    assert.equal(line.code, 'DEADLINE_EXCEEDED');
    assert.equal(line.level, 30);
    assert.equal(line.msg, 'rpc');
  });

  it("a handler's own abort error after the client cancelled is logged CANCELLED, not an internal failure", async () => {
    const call = client.cancelBuild({ buildId: 'b2', reason: '' }, () => {});
    await new Promise((r) => setTimeout(r, 100));
    call.cancel();
    const line = await logLineOf('CancelBuild');
    assert.equal(line.code, 'CANCELLED');
    assert.equal(line.level, 30);
  });
});

describe('a call to a service that is not there', () => {
  it('is UNAVAILABLE saying the service went away or cannot be reached, with grpc-js reason', async () => {
    // a port that was just free: nothing listens on it
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const client = createServiceClient(BuildServiceClient, `127.0.0.1:${port}`);
    try {
      const error = await unaryCall('planner', (cb) => client.getBuild({ buildId: 'b' }, new Metadata(), { deadline: Date.now() + 5000 }, cb)).then(
        () => assert.fail('the call succeeded'),
        (e: unknown) => e as errors.DomainError,
      );
      assert.ok(error instanceof errors.UnavailableError, String(error));
      assert.match(error.message, /^planner: the planner went away or cannot be reached \(No connection established.*ECONNREFUSED/);
    } finally {
      client.close();
    }
  });
});

describe('retryWhilePeerAway', () => {
  async function freePort(): Promise<number> {
    return new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
  }

  it('waits out a service that starts while it retries, and stops at once on any other failure', async () => {
    const port = await freePort();
    const client = createServiceClient(BuildServiceClient, `127.0.0.1:${port}`);
    let calls = 0;
    let server: RunningGrpcService | undefined;
    const starting = new Promise<void>((resolve) =>
      setTimeout(() => {
        void startGrpcService({
          name: 'late',
          host: '127.0.0.1',
          port,
          logger: createLogger('test', 'silent'),
          services: [
            {
              name: 'kindling.planner.v1.BuildService',
              definition: BuildServiceService,
              implementation: {
                getBuild: unary(async () => ({ build: undefined })),
                cancelBuild: unary(async () => {
                  calls += 1;
                  throw new errors.NotFoundError('no build b');
                }),
              },
            },
          ],
        }).then((s) => {
          server = s;
          resolve();
        });
      }, 700),
    );
    try {
      const answer = await retryWhilePeerAway(() => unaryCall<{ build?: unknown }>('planner', (cb) => client.getBuild({ buildId: 'b' }, cb)), { graceMs: 20_000 });
      assert.deepEqual(answer, { build: undefined });
      await starting;
      await assert.rejects(
        retryWhilePeerAway(() => unaryCall('planner', (cb) => client.cancelBuild({ buildId: 'b', reason: '' }, cb)), { graceMs: 20_000 }),
        (e: unknown) => e instanceof errors.NotFoundError,
      );
      assert.equal(calls, 1, 'a NOT_FOUND is not retried');
    } finally {
      client.close();
      await starting;
      await server?.shutdown(100);
    }
  });

  it('gives up with the last error when the grace runs out', async () => {
    const client = createServiceClient(BuildServiceClient, `127.0.0.1:${await freePort()}`);
    try {
      await assert.rejects(
        retryWhilePeerAway(() => unaryCall('planner', (cb) => client.getBuild({ buildId: 'b' }, cb)), { graceMs: 600 }),
        (e: unknown) => e instanceof errors.UnavailableError && /went away or cannot be reached/.test(e.message),
      );
    } finally {
      client.close();
    }
  });
});

describe('isPeerAway', () => {
  const failed = (details: string, code = status.UNAVAILABLE) =>
    domainErrorFromStatus('vmm', Object.assign(new Error(`${code} ${details}`), { code, details, metadata: new Metadata() }) as ServiceError);
  it('tells a call that never left from one lost in flight, and both from a refusal by the service', () => {
    const unsent = failed('No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1');
    const dropped = failed('Connection dropped');
    const refused = failed('the host is draining');
    assert.deepEqual([isPeerAway(unsent), isPeerAway(dropped), isPeerAway(refused)], [true, true, false]);
    assert.deepEqual([isPeerAway(unsent, { unsentOnly: true }), isPeerAway(dropped, { unsentOnly: true })], [true, false]);
    assert.equal(isPeerAway(failed('Connection dropped', status.INTERNAL)), false);
  });
});
