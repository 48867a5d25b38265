/**
 * The README's main job, end to end and for real: `kindling quickstart` builds examples/hello in a
 * microVM under QEMU, boots the committed image and probes its entrypoint over SSH. Then nothing may be
 * left on the host: no sandbox or VM netns, no qemu process.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { runInSandbox } from './support/in-sandbox.ts';

/** qemu processes whose command line mentions marker (the run's work-dir prefix). */
function qemuProcesses(marker: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return (
          readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'qemu-system-x86' &&
          readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)
        );
      } catch {
        return false;
      }
    })
    .map(Number);
}

function kindlingNetns(): string[] {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  return out.split('\n').filter((line) => line.includes('kindling'));
}

describe('quickstart', () => {
  it('builds examples/hello into an image, boots it and its entrypoint runs as the Dockerfile says', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root (VMs, netns, CNI)');
    const child = spawn(process.execPath, ['cli/bin/kindling.js', 'quickstart'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, `quickstart failed:\n${output}`);
    assert.match(output, /=> build succeeded: hello:latest/);
    assert.match(output, /greeting: hello from kindling/);
    assert.match(output, /user: app uid=\d+/);
    assert.match(output, /workdir: \/srv\/hello/);
    assert.match(output, /args: --interval 5/);
    assert.match(output, /^active$/m);
    const pid = /netns kindling-qs-(\d+)/.exec(output)?.[1];
    assert.ok(pid, 'quickstart names its sandbox');
    assert.deepEqual(kindlingNetns().filter((n) => n.startsWith(`kindling-qs-${pid}`) || /^kindling-\d+-/.test(n)), [], 'no network namespace left behind');
    assert.deepEqual(qemuProcesses('kindling-quickstart-'), [], 'no qemu process left behind');
  });
});

describe('build failures', () => {
  it('fails a build on a non-zero RUN with its exit code and output, cancels one mid-RUN, and leaves no VM', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root (VMs, netns, CNI)');
    const { code, stdout, stderr } = await runInSandbox('test/support/build-failures-scenario.ts');
    assert.equal(code, 0, `scenario failed: ${stderr}`);
    const result = JSON.parse(stdout) as {
      failed: { state: string; error: { code: string; message: string; exitCode?: number; outputTail: string; line: number; stepIndex: number } };
      cancelled: { state: string; error: { code: string; message: string }; cancelRequested: boolean };
      vmsLeft: string[];
      images: string[];
    };
    assert.equal(result.failed.state, 'BUILD_STATE_FAILED');
    assert.equal(result.failed.error.exitCode, 3);
    assert.equal(result.failed.error.line, 3);
    assert.match(result.failed.error.message, /returned a non-zero code: 3/);
    assert.match(result.failed.error.outputTail, /something broke/);
    assert.ok(result.cancelled.cancelRequested, 'the RUN step started before the cancel');
    assert.equal(result.cancelled.state, 'BUILD_STATE_CANCELLED');
    assert.equal(result.cancelled.error.code, 'CANCELLED');
    assert.deepEqual(result.vmsLeft, [], 'build VMs are deleted after failure and cancellation');
    assert.ok(!result.images.some((i) => i.startsWith('e2e/')), `no image committed for failed builds: ${result.images.join(', ')}`);
    assert.deepEqual(qemuProcesses('kindling-e2e-'), [], 'no qemu process left behind');
    assert.deepEqual(kindlingNetns().filter((n) => n.includes('-sbx-') || /^kindling-\d+-/.test(n)), []);
  });
});
