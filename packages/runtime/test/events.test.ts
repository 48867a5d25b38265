import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BuildEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { InProcessEventBus, NatsEventBus, createLogger, subjectMatches, type BusMessage, type EventBus } from '../src/index.ts';
import { freePort, stopChild, waitForPort } from '../src/testing/child-process.ts';
import { captureLog } from './support.ts';
import { startNatsServer, type TestNatsServer } from '../src/testing/index.ts';

function buildEvent(buildId: string, sequence: number): Uint8Array {
  return BuildEvent.encode({ buildId, sequence: String(sequence), time: new Date(), payload: { $case: 'log', value: { stageIndex: 0, stepIndex: 0, stream: 1, data: Buffer.from(`line ${sequence}`) } } }).finish();
}

async function collect(iterable: AsyncIterable<BusMessage>): Promise<BusMessage[]> {
  const out: BusMessage[] = [];
  for await (const message of iterable) out.push(message);
  return out;
}

function busContract(name: string, makeBus: () => Promise<EventBus>): void {
  describe(name, () => {
    let bus: EventBus;
    before(async () => {
      bus = await makeBus();
    });
    after(async () => {
      await bus.close();
    });

    it('delivers published events to matching live subscribers only', async () => {
      const seen: string[] = [];
      const subscription = bus.subscribe('kindling.build.live1.>', (m) => seen.push(m.subject));
      await new Promise((r) => setTimeout(r, 50));
      await bus.publish('kindling.build.live1.state', buildEvent('live1', 1));
      await bus.publish('kindling.build.other.state', buildEvent('other', 1));
      await bus.publish('kindling.build.live1.log', buildEvent('live1', 2));
      for (let i = 0; i < 50 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      subscription.unsubscribe();
      assert.deepEqual(seen, ['kindling.build.live1.state', 'kindling.build.live1.log']);
    });

    it("replays one build's events after the fact, in order", async () => {
      for (let sequence = 1; sequence <= 20; sequence++) {
        await bus.publish(`kindling.build.b42.${sequence % 3 === 0 ? 'state' : 'log'}`, buildEvent('b42', sequence));
        await bus.publish('kindling.build.b43.log', buildEvent('b43', sequence));
      }
      const replayed = await collect(bus.history('kindling.build.b42.>'));
      assert.deepEqual(
        replayed.map((m) => BuildEvent.decode(m.data).sequence),
        Array.from({ length: 20 }, (_, i) => String(i + 1)),
      );
      assert.ok(replayed.every((m) => BuildEvent.decode(m.data).buildId === 'b42'));
      assert.deepEqual(await collect(bus.history('kindling.build.none.>')), []);
    });
  });
}

busContract('in-process event bus', async () => new InProcessEventBus());

describe('NATS event bus with JetStream', () => {
  let nats: TestNatsServer;
  before(async () => {
    nats = await startNatsServer({ jetstream: true });
  });
  after(async () => {
    await nats?.stop();
  });
  busContract('against a real nats-server', async () => {
    const bus = await NatsEventBus.connect(nats.url, createLogger('test', 'silent'));
    assert.equal(bus.durable, true);
    return bus;
  });

  it('keeps history across connections (stored in the KINDLING_EVENTS stream)', async () => {
    const first = await NatsEventBus.connect(nats.url, createLogger('test', 'silent'));
    await first.publish('kindling.vm.host1.vm1.state', buildEvent('x', 1));
    await first.close();
    const second = await NatsEventBus.connect(nats.url, createLogger('test', 'silent'));
    try {
      assert.equal((await collect(second.history('kindling.vm.host1.*.state'))).length, 1);
    } finally {
      await second.close();
    }
  });
});

describe('subject patterns', () => {
  it('match as NATS does', () => {
    assert.equal(subjectMatches('kindling.>', 'kindling.build.a.state'), true);
    assert.equal(subjectMatches('kindling.build.*.state', 'kindling.build.a.state'), true);
    assert.equal(subjectMatches('kindling.build.*.state', 'kindling.build.a.log'), false);
    assert.equal(subjectMatches('kindling.build.a.>', 'kindling.build.a'), false);
    assert.equal(subjectMatches('kindling.build.a', 'kindling.build.a.log'), false);
  });
});

describe('NATS event bus across a nats-server restart', () => {
  it('keeps events in the outbox while NATS is down and publishes them, in order, when it returns', { timeout: 60_000 }, async (t) => {
    const port = await freePort();
    const storeDir = mkdtempSync(join(tmpdir(), 'kindling-nats-restart-'));
    let server: ChildProcess | undefined;
    const startServer = async (): Promise<void> => {
      server = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: 'ignore' });
      await waitForPort(port, { child: server, timeoutMs: 10_000, what: 'nats-server', output: () => '' });
    };
    t.after(async () => {
      if (server) await stopChild(server);
      rmSync(storeDir, { recursive: true, force: true });
    });
    await startServer();
    const log = captureLog();
    // Credentials in the URL (the server ignores them) must reach neither the log nor an error.
    const bus = await NatsEventBus.connect(`nats://kindling:hunter2@127.0.0.1:${port}`, log.logger);
    t.after(() => bus.close());
    const seen: string[] = [];
    bus.subscribe('kindling.build.r1.*', (m) => seen.push(BuildEvent.decode(m.data).sequence));
    await bus.publish('kindling.build.r1.state', buildEvent('r1', 1));
    for (let i = 0; i < 100 && seen.length < 1; i++) await new Promise((r) => setTimeout(r, 20));

    await stopChild(server!);
    server = undefined;
    // published while NATS is away: each resolves once it waits in the outbox
    for (let sequence = 2; sequence <= 4; sequence++) await bus.publish('kindling.build.r1.log', buildEvent('r1', sequence));
    assert.equal(bus.pending, 3, 'the three events wait for NATS');
    await startServer();
    for (let i = 0; i < 250 && !log.lines.some((l) => l.msg === 'NATS connection restored'); i++) await new Promise((r) => setTimeout(r, 40));
    await bus.publish('kindling.build.r1.log', buildEvent('r1', 5));
    // A subscriber can see the last event before its publish ack reaches the outbox: wait for both.
    for (let i = 0; i < 250 && (seen.length < 5 || bus.pending > 0); i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen, ['1', '2', '3', '4', '5'], 'a live subscriber sees every event, in order');
    assert.equal(bus.pending, 0, 'the outbox empties once NATS acknowledges every event');
    const replayed = await collect(bus.history('kindling.build.r1.>'));
    assert.deepEqual(replayed.map((m) => BuildEvent.decode(m.data).sequence), ['1', '2', '3', '4', '5'], 'the stream holds each event once');
    assert.ok(log.lines.some((l) => l.msg.startsWith('NATS connection lost')), log.text());
    assert.ok(log.lines.some((l) => l.msg === 'NATS connection restored'), log.text());
    assert.ok(!log.text().includes('hunter2'), 'no credentials in the log');

    // A service stopping while NATS is down must not hang in close (it used to drain forever).
    await stopChild(server!);
    server = undefined;
    await bus.close();
  });
});
