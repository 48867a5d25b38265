/**
 * kindling up / down over a temp state dir on free ports (--base-port 0, --nats-port 0): the four
 * services answer grpc.health.v1 SERVING, a second up says it is already up, down leaves no process of
 * up.json running (checked in /proc) and no nats-server of that state dir.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { HealthClient, HealthCheckResponse_ServingStatus as Serving, type HealthCheckResponse } from '@kindling/proto/gen/grpc/health/v1/health.ts';
import { unaryCall } from '@kindling/runtime';
import { findNatsServer, type UpRecord } from '../src/host-suite.ts';
import { kindling, tempDir } from './support/cli-services.ts';

const SERVICES = ['planner', 'fetcher', 'vmm', 'provisioner'] as const;

/** Live (not zombie) processes whose /proc cmdline contains text. */
function processesWith(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').includes(text)) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

async function health(address: string): Promise<Serving> {
  const client = new HealthClient(address, credentials.createInsecure());
  try {
    const response = await unaryCall<HealthCheckResponse>('health', (cb) => client.check({ service: '' }, cb));
    return response.status;
  } finally {
    client.close();
  }
}

/** up over dir; whatever happens, the test ends with a down of it (and a kill of anything left). */
function upArgs(t: TestContext, dir: string, extra: string[] = []): string[] {
  t.after(async () => {
    await kindling(['down', '--state-dir', dir, '--timeout', '5']);
    for (const pid of processesWith(dir)) process.kill(pid, 'SIGKILL');
  });
  return ['up', '--state-dir', dir, '--base-port', '0', '--nats-port', '0', '--cache-dir', join(dir, 'no-cache'), ...extra];
}

test('kindling up starts the four services (and nats-server), is idempotent, and kindling down leaves nothing running', async (t) => {
  const dir = tempDir(t, 'up');
  const args = upArgs(t, dir);

  const first = await kindling(args);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  assert.match(first.stdout, /kindling is up/);
  const record = JSON.parse(readFileSync(join(dir, 'up.json'), 'utf8')) as UpRecord;
  assert.equal(record.state, 'up');
  for (const name of SERVICES) {
    const service = record.services[name]!;
    assert.ok(alive(service.pid), `${name} runs`);
    assert.equal(await health(service.address), Serving.SERVING, name);
    assert.ok(existsSync(join(dir, 'logs', `${name}.log`)), `${name} log`);
    assert.ok(first.stdout.includes(service.address), `${name}'s address is printed`);
  }
  assert.ok(first.stdout.includes(`KINDLING_PLANNER_ADDR=${record.services.planner!.address}`), first.stdout);
  const withNats = findNatsServer() !== undefined;
  assert.equal(record.nats !== null, withNats, 'nats-server is used exactly when installed');
  if (record.nats) {
    assert.ok(alive(record.nats.pid));
    assert.deepEqual(processesWith(join(dir, 'nats')), [record.nats.pid]);
    assert.match(readFileSync(join(dir, 'logs', 'planner.log'), 'utf8'), /planner records in JetStream KV/);
  }

  await t.test('a second up says it is already up and starts nothing', async () => {
    const again = await kindling(args);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^kindling is already up/);
    const after = JSON.parse(readFileSync(join(dir, 'up.json'), 'utf8')) as UpRecord;
    assert.deepEqual(after, record);
  });

  await t.test('down stops every process of up.json and removes it; a second down says it is not up', async () => {
    const down = await kindling(['down', '--state-dir', dir]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /kindling is down/);
    for (const name of SERVICES) assert.ok(!alive(record.services[name]!.pid), `${name} (pid ${record.services[name]!.pid}) is gone`);
    if (record.nats) assert.ok(!alive(record.nats.pid), 'nats-server is gone');
    assert.deepEqual(processesWith(dir), [], 'no process of the state dir is left');
    assert.ok(!existsSync(join(dir, 'up.json')));
    const again = await kindling(['down', '--state-dir', dir]);
    assert.deepEqual([again.code, again.stdout], [0, `kindling is not up (no ${join(dir, 'up.json')})\n`]);
  });
});

test('kindling up --no-nats runs the services on their in-process buses; a stale up.json is replaced', async (t) => {
  const dir = tempDir(t, 'up-nonats');
  const args = upArgs(t, dir, ['--no-nats']);
  const first = await kindling(args);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  const record = JSON.parse(readFileSync(join(dir, 'up.json'), 'utf8')) as UpRecord;
  assert.equal(record.nats, null);
  assert.match(first.stdout, /in-process bus/);
  assert.match(readFileSync(join(dir, 'logs', 'planner.log'), 'utf8'), /planner records in the state dir/);

  // One service dies: up notices, stops the rest and starts afresh.
  process.kill(record.services.fetcher!.pid, 'SIGKILL');
  const restarted = await kindling(args);
  assert.equal(restarted.code, 0, restarted.stderr + restarted.stdout);
  assert.match(restarted.stdout, /partly up \(running: planner, vmm, provisioner\)/);
  const second = JSON.parse(readFileSync(join(dir, 'up.json'), 'utf8')) as UpRecord;
  for (const name of SERVICES) {
    assert.ok(!alive(record.services[name]!.pid), `the old ${name} is gone`);
    assert.equal(await health(second.services[name]!.address), Serving.SERVING, name);
  }
  const down = await kindling(['down', '--state-dir', dir]);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(processesWith(dir), []);
});

test('kindling up refuses --nats with --no-nats (exit 2)', async () => {
  const result = await kindling(['up', '--nats', '--no-nats', '--state-dir', '/nonexistent']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^kindling up: --nats and --no-nats exclude each other\nusage: /);
});
