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
  it('kindling build prints each step and exits 0, or exits 1 naming the failed line; a failed RUN has its exit code and output, a cancel stops one mid-RUN, and no VM is left', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root (VMs, netns, CNI)');
    const { code, stdout, stderr } = await runInSandbox('test/support/build-failures-scenario.ts');
    assert.equal(code, 0, `scenario failed: ${stderr}`);
    const result = JSON.parse(stdout) as {
      cli: { hello: { code: number; output: string }; failing: { code: number; output: string } };
      failed: { state: string; error: { code: string; message: string; exitCode?: number; outputTail: string; line: number; stepIndex: number } };
      cancelled: { state: string; error: { code: string; message: string }; cancelRequested: boolean };
      vmsLeft: string[];
      images: string[];
    };
    const { hello, failing } = result.cli;
    assert.equal(hello.code, 0, hello.output);
    // one start and one DONE line per step (examples/hello has 12), in the spirit of --progress=plain
    assert.equal(hello.output.match(/^#0\.\d+ \[line \d+\] /gm)?.length, 12, hello.output);
    assert.equal(hello.output.match(/^#0\.\d+ DONE \d+\.\ds$/gm)?.length, 12, hello.output);
    assert.match(hello.output, /^#0\.7 \[line 16\] RUN .*useradd/m);
    assert.match(hello.output, /\n=> build succeeded: e2e\/hello:1\n$/);
    assert.equal(failing.code, 1, failing.output);
    assert.match(failing.output, /^#0\.2 \[line 3\] RUN .*something broke/m);
    assert.match(failing.output, /^ {3}\| something broke$/m, 'the failed RUN output is shown');
    assert.match(failing.output, /\n=> build failed\nERROR: Dockerfile line 3: RUN echo "something broke" >&2; exit 3 returned a non-zero code: 3\n/);

    assert.equal(result.failed.state, 'BUILD_STATE_FAILED');
    assert.equal(result.failed.error.exitCode, 3);
    assert.equal(result.failed.error.line, 3);
    assert.match(result.failed.error.message, /returned a non-zero code: 3/);
    assert.match(result.failed.error.outputTail, /something broke/);
    assert.ok(result.cancelled.cancelRequested, 'the RUN step started before the cancel');
    assert.equal(result.cancelled.state, 'BUILD_STATE_CANCELLED');
    assert.equal(result.cancelled.error.code, 'CANCELLED');
    assert.deepEqual(result.vmsLeft, [], 'build VMs are deleted after failure and cancellation');
    assert.ok(result.images.includes('e2e/hello:1'), result.images.join(', '));
    assert.ok(!result.images.some((i) => /^e2e\/(fails|cancelled):/.test(i)), `no image committed for failed builds: ${result.images.join(', ')}`);
    assert.deepEqual(qemuProcesses('kindling-e2e-'), [], 'no qemu process left behind');
    assert.deepEqual(kindlingNetns().filter((n) => n.includes('-sbx-') || /^kindling-\d+-/.test(n)), []);
  });
});
