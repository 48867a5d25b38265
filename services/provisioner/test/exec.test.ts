import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CancelledError, InvalidArgumentError } from '../src/domain/errors.ts';
import { startProvisionerFixture, type ProvisionerFixture } from './support/provisioner-fixture.ts';
import { sshdUnavailableReason } from './support/test-sshd.ts';

const run = promisify(execFile);
const skip = await sshdUnavailableReason();

async function withFixture(t: { after(fn: () => Promise<void>): void }): Promise<ProvisionerFixture> {
  const fixture = await startProvisionerFixture();
  t.after(() => fixture.stop());
  return fixture;
}

async function processesMatching(pattern: string): Promise<string> {
  const { stdout } = await run('pgrep', ['-f', pattern]).catch(() => ({ stdout: '' }));
  return stdout.trim();
}

/** Polls until check() holds; generous, since the shared test machine can be slow. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`never became true: ${what}`);
}

function uniqueSleep(): string {
  return `${900 + Math.floor(Math.random() * 99)}.${randomBytes(3).readUIntBE(0, 3)}`;
}

test('exec over a real sshd', { skip }, async (t) => {
  const fixture = await withFixture(t);

  await t.test('exit codes 0, 1 and 127 (command not found)', async () => {
    const ok = await fixture.run({ command: 'echo hello' });
    assert.deepEqual(ok.outcome, { kind: 'exited', exitCode: 0 });
    assert.equal(ok.stdout, 'hello\n');
    assert.deepEqual((await fixture.run({ command: 'exit 1' })).outcome, { kind: 'exited', exitCode: 1 });
    const missing = await fixture.run({ command: 'no-such-command-kindling' });
    assert.deepEqual(missing.outcome, { kind: 'exited', exitCode: 127 });
    assert.match(missing.stderr, /not found/);
    assert.deepEqual((await fixture.run({ argv: ['/no/such/binary'] })).outcome, { kind: 'exited', exitCode: 127 });
  });

  await t.test('death by signal is reported as the signal', async () => {
    const killed = await fixture.run({ command: 'kill -TERM $$' });
    assert.deepEqual(killed.outcome, { kind: 'signaled', signal: 'TERM', coreDumped: false });
  });

  await t.test('stdout and stderr stay separate and ordered under 1 MiB of fast output', async () => {
    const result = await fixture.run({ command: 'i=0; while [ $i -lt 22 ]; do seq 1 10000; seq 1 1000 >&2; i=$((i+1)); done' });
    assert.deepEqual(result.outcome, { kind: 'exited', exitCode: 0 });
    const block = (n: number): string => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join('');
    assert.ok(result.stdout.length > 1024 * 1024);
    assert.equal(result.stdout, block(10000).repeat(22));
    assert.equal(result.stderr, block(1000).repeat(22));
    const times = result.chunks.map((chunk) => chunk.at.getTime());
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'chunks carry arrival timestamps in order');
  });

  await t.test('a step past its timeout is killed with its children and reported as timed out', async () => {
    const tag = uniqueSleep();
    const running = fixture.run({ command: `sleep ${tag} & sleep ${tag}; wait`, timeoutMs: 3000 });
    running.catch(() => {}); // asserted below
    // both must have run, or their absence afterwards proves nothing
    await eventually(async () => (await processesMatching(`^sleep ${tag}`)).split('\n').length === 2, 'both sleeps started');
    const result = await running;
    assert.deepEqual(result.outcome, { kind: 'timed_out', timeoutMs: 3000 });
    await eventually(async () => (await processesMatching(`sleep ${tag}`)) === '', 'timed-out processes gone');
  });

  // without the fix these hang for the sleep's 900+ s: the timeout turns that into a failure
  await t.test('a background process left holding stdout does not hold the step open: it is killed, as Docker kills leftovers', { timeout: 120_000 }, async () => {
    const tag = uniqueSleep();
    const result = await fixture.run({ command: `sleep ${tag} & echo started` });
    assert.deepEqual(result.outcome, { kind: 'exited', exitCode: 0 });
    assert.equal(result.stdout, 'started\n');
    assert.equal(await processesMatching(`sleep ${tag}`), '', 'the leftover is gone when the step returns');
  });

  await t.test('a process that left the group (setsid) and holds stdout does not hold the step open', { timeout: 120_000 }, async (t) => {
    const tag = uniqueSleep();
    t.after(async () => {
      for (const pid of (await processesMatching(`sleep ${tag}`)).split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    });
    const result = await fixture.run({ command: `setsid sleep ${tag} & echo started; exit 7`, timeoutMs: 3000 });
    assert.deepEqual(result.outcome, { kind: 'exited', exitCode: 7 }, 'exited in time: not timed out while the escapee held the channel');
    assert.equal(result.stdout, 'started\n');
    assert.deepEqual((await fixture.run({ command: 'true' })).outcome, { kind: 'exited', exitCode: 0 }, 'the connection is still usable');
  });

  await t.test('env and argv with hostile values arrive byte-exact', async () => {
    const hostile = ["it's", 'say "hi"', '$(touch /tmp/kindling-pwned)', '`id`', 'a; rm -rf /tmp/x', 'line1\nline2\n', 'ünïcödé ✓ 🚀', ' lead and trail ', '$HOME ${PATH}', '\\n\\t', '*', ''];
    const argv = await fixture.run({ argv: ['printf', '%s\\0', ...hostile] });
    assert.deepEqual(argv.outcome, { kind: 'exited', exitCode: 0 });
    assert.deepEqual(argv.stdout.split('\0').slice(0, -1), hostile);

    const env = hostile.map((value, i) => `HOSTILE_${i}=${value}`);
    const printed = await fixture.run({ argv: ['env', '-0'], env });
    const entries = printed.stdout.split('\0').slice(0, -1);
    for (const pair of env) assert.ok(entries.includes(pair), `env entry ${JSON.stringify(pair)} arrived`);
    assert.ok(entries.includes('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'), 'default PATH');
    assert.ok(!entries.some((entry) => entry.startsWith('SSH_')), 'no SSH session variables leak into the step');

    const shell = await fixture.run({ command: 'printf "%s|" "$HOSTILE_2" "$HOSTILE_5"', env });
    assert.equal(shell.stdout, `${hostile[2]}|${hostile[5]}|`);
    assert.equal(existsSync('/tmp/kindling-pwned'), false, 'no command substitution ran');
  });

  await t.test('env and argv past 128 KiB in total arrive intact (Docker allows ARG_MAX), and stdin is /dev/null', async () => {
    const env = ['A', 'B', 'C'].map((key, i) => `BIG_${key}=${String.fromCharCode(97 + i).repeat(60_000)}`);
    const argv = ['sh', '-c', 'printf "%s|%s|%s|%s|" "${#BIG_A}" "${#BIG_B}" "${#BIG_C}" "${#1}"; readlink /proc/self/fd/0', 'sh', 'd'.repeat(100_000)];
    const result = await fixture.run({ argv, env });
    assert.deepEqual(result.outcome, { kind: 'exited', exitCode: 0 }, result.stderr);
    assert.equal(result.stdout, '60000|60000|60000|100000|/dev/null\n');
    const printed = await fixture.run({ argv: ['env'], env });
    for (const pair of env) assert.ok(printed.stdout.split('\n').includes(pair), `${pair.slice(0, 8)}… arrived byte-exact`);
  });

  await t.test('SHELL is honoured for the shell form', async () => {
    const result = await fixture.run({ command: 'echo "$0 $-"', shell: ['/bin/bash', '-e', '-c'] });
    assert.match(result.stdout, /^\/bin\/bash .*e/);
  });

  await t.test('the working directory is created when missing', async () => {
    const root = `/tmp/kindling-workdir-${randomBytes(4).toString('hex')}`;
    t.after(() => run('rm', ['-rf', root]).then(() => {}));
    const result = await fixture.run({ command: 'pwd', workdir: `${root}/a b/c` });
    assert.equal(result.stdout, `${root}/a b/c\n`);
  });

  await t.test('bad input is rejected before anything runs', async () => {
    await assert.rejects(fixture.run({ command: 'true', env: ['NOEQUALS'] }), InvalidArgumentError);
    await assert.rejects(fixture.run({ command: 'true', workdir: 'relative' }), InvalidArgumentError);
    await assert.rejects(fixture.run({ argv: ['echo', 'a\0b'] }), InvalidArgumentError);
  });

  await t.test('cancelling mid-exec kills the remote process group', async () => {
    const tag = uniqueSleep();
    const controller = new AbortController();
    const running = fixture.run({ command: `sleep ${tag} & sleep ${tag}; wait` }, controller.signal);
    running.catch(() => {}); // asserted below; keeps an early failure from leaving it unhandled
    await eventually(async () => (await processesMatching(`^sleep ${tag}`)).split('\n').length === 2, 'both sleeps started');
    controller.abort();
    await assert.rejects(running, CancelledError);
    await eventually(async () => (await processesMatching(`sleep ${tag}`)) === '', 'cancelled processes gone');
    assert.deepEqual((await fixture.run({ command: 'true' })).outcome, { kind: 'exited', exitCode: 0 }, 'the connection is still usable');
  });
});
