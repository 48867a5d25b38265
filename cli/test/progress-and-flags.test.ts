/**
 * The tty progress renderer (live lines per running step, redrawn in place, with a test clock), the
 * firebuild flag spellings of kindling build, and the quantities cache prune and run read.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BuildEvent, BuildState, StepState, type StepEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { resolveFirebuildFlags } from '../src/firebuild-flags.ts';
import { TtyProgress } from '../src/output/tty-progress.ts';
import { parseBytes, parseDuration } from '../src/quantities.ts';
import { parseEnvFlags, runMetadata } from '../src/run-image.ts';
import { ImageMetadata } from '@kindling/proto/gen/kindling/image/v1/image.ts';

const step = (stepIndex: number, state: StepState, extra: Partial<StepEvent> = {}) =>
  BuildEvent.fromPartial({
    buildId: 'b1',
    payload: { $case: 'step', value: { stageIndex: 0, stepIndex, state, instruction: `RUN step-${stepIndex}`, line: stepIndex + 2, ...extra } },
  });

// What a terminal shows after the writes: ESC[1A ESC[2K moves up one line and erases it.
function screen(written: string): string[] {
  const lines: string[] = [];
  let rest = written;
  while (rest.length > 0) {
    if (rest.startsWith('\x1b[1A\x1b[2K')) {
      lines.pop();
      rest = rest.slice(8);
      continue;
    }
    const end = rest.indexOf('\n');
    const next = rest.indexOf('\x1b');
    if (next >= 0 && next < end) throw new Error(`unexpected escape mid-line: ${JSON.stringify(rest.slice(0, 40))}`);
    lines.push(rest.slice(0, end));
    rest = rest.slice(end + 1);
  }
  return lines.map((line) => line.replace(/\s+/g, ' ').trim());
}

test('tty progress: one live line per running step with its elapsed time; finished steps scroll up', () => {
  let now = 1_000;
  let written = '';
  const out = { columns: 80, write: (chunk: string) => ((written += chunk), true) } as unknown as NodeJS.WritableStream;
  const progress = new TtyProgress(out, () => now);
  progress.note('=> build b1');
  progress.event(step(0, StepState.STEP_STATE_STARTED));
  now += 1_500;
  progress.event(step(1, StepState.STEP_STATE_STARTED));
  assert.deepEqual(screen(written), ['=> build b1', '#0.1 [line 2] RUN step-0 1.5s', '#0.2 [line 3] RUN step-1 0.0s']);
  now += 500;
  progress.event(
    BuildEvent.fromPartial({ payload: { $case: 'log', value: { stageIndex: 0, stepIndex: 0, stream: 1, data: Buffer.from('compiling\n') } } }),
  );
  assert.deepEqual(screen(written), ['=> build b1', '| compiling', '#0.1 [line 2] RUN step-0 2.0s', '#0.2 [line 3] RUN step-1 0.5s']);
  progress.event(step(0, StepState.STEP_STATE_SUCCEEDED, { duration: { seconds: '3', nanos: 200_000_000 } }));
  progress.event(step(1, StepState.STEP_STATE_FAILED, { error: { code: 'UNKNOWN', message: 'exit 2', stageIndex: 0, stepIndex: 1, outputTail: '', line: 3 } }));
  progress.event(BuildEvent.fromPartial({ payload: { $case: 'state', value: { state: BuildState.BUILD_STATE_FAILED } } }));
  progress.close();
  assert.deepEqual(screen(written), [
    '=> build b1',
    '| compiling',
    '#0.1 [line 2] RUN step-0 DONE 3.2s',
    '#0.2 [line 3] RUN step-1 ERROR 0.5s',
    'ERROR: exit 2',
    '=> build failed',
  ]);
});

test('firebuild spellings: aliases fold into kindling flags; host settings and other SSH users are refused', () => {
  const base = { file: '', network: '' };
  assert.deepEqual(resolveFirebuildFlags({ ...base, dockerfile: 'ci/Dockerfile', 'machine-cni-network-name': 'builds', 'machine-ssh-user': 'root' }), {
    file: 'ci/Dockerfile',
    network: 'builds',
  });
  assert.deepEqual(resolveFirebuildFlags({ file: 'a', network: 'n', dockerfile: 'a' }), { file: 'a', network: 'n' });
  const problems: [Parameters<typeof resolveFirebuildFlags>[0], RegExp][] = [
    [{ ...base, 'machine-vmlinux': '/boot/vmlinux' }, /^--machine-vmlinux is not a build option: .*--kernel ID/],
    [{ ...base, 'binary-firecracker': '/usr/bin/firecracker' }, /^--binary-firecracker is not a build option: .*vmm with --binary-firecracker PATH/],
    [{ ...base, 'binary-jailer': '/usr/bin/jailer' }, /vmm with --binary-jailer PATH/],
    [{ ...base, 'chroot-base': '/srv/jail' }, /vmm with --firecracker-chroot-base DIR/],
    [{ ...base, 'machine-ssh-user': 'debian' }, /^--machine-ssh-user "debian": kindling runs build steps over SSH as root/],
    [{ file: 'a', network: '', dockerfile: 'b' }, /^--dockerfile "b" contradicts --file "a"/],
  ];
  for (const [values, expected] of problems) {
    const result = resolveFirebuildFlags(values);
    assert.ok('problem' in result, JSON.stringify(values));
    assert.match(result.problem, expected);
  }
});

test('durations and sizes read as docker and Go write them; anything else names the flag', () => {
  assert.equal(parseDuration('1h30m', '--unused-for'), 5_400_000);
  assert.equal(parseDuration('7d', '--unused-for'), 7 * 86_400_000);
  assert.equal(parseDuration('250ms', '--unused-for'), 250);
  for (const bad of ['', '10', 'h', '1h 30m', 'soon']) assert.throws(() => parseDuration(bad, '--unused-for'), /^Error: --unused-for "/);
  assert.equal(parseBytes('1073741824', '--keep-bytes'), 1024 ** 3);
  assert.equal(parseBytes('512M', '--keep-bytes'), 512 * 1024 ** 2);
  assert.equal(parseBytes('10GiB', '--keep-bytes'), 10 * 1024 ** 3);
  for (const bad of ['', '-1', 'lots', '5X']) assert.throws(() => parseBytes(bad, '--keep-bytes'), /^Error: --keep-bytes "/);
});

test('run overrides: --env replaces a key in place or appends, ARGS replace CMD and keep ENTRYPOINT', () => {
  const image = ImageMetadata.fromPartial({ entrypoint: ['/init'], cmd: ['serve'], env: ['PATH=/bin', 'MODE=prod'] });
  assert.deepEqual(runMetadata(image, { env: ['MODE=dev', 'DEBUG=1'], args: ['shell', '-x'] }), {
    ...image,
    env: ['PATH=/bin', 'MODE=dev', 'DEBUG=1'],
    cmd: ['shell', '-x'],
  });
  assert.deepEqual(runMetadata(image, { env: [], args: [] }).cmd, ['serve']);
  assert.deepEqual(parseEnvFlags(['A=1', 'FROM_HERE', 'UNSET_HERE', 'B='], { FROM_HERE: 'x' }), ['A=1', 'FROM_HERE=x', 'B=']);
  assert.throws(() => parseEnvFlags(['=1']), /--env "=1": expected KEY=VALUE/);
});
