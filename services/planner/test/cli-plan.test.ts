/** `kindling plan`: in-process without a planner, and over gRPC against a real planner server. */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLogger, type RunningGrpcService } from '@kindling/runtime';
import { loadPlannerConfig } from '../src/config.ts';
import { startPlannerService } from '../src/server.ts';

const cliMain = fileURLToPath(new URL('../../../cli/src/main.ts', import.meta.url));

function kindling(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', cliMain, ...args], { env: { ...process.env, KINDLING_PLANNER_ADDR: '', ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('kindling plan', () => {
  let dir: string;
  let running: RunningGrpcService;
  let good: string;
  let bad: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kindling-plan-'));
    good = join(dir, 'Dockerfile');
    bad = join(dir, 'Dockerfile.bad');
    await writeFile(good, 'ARG V=1\nFROM debian:12 AS build\nARG V\nRUN make V=$V\nFROM scratch AS final\nCOPY --from=build /out /app/\nCMD ["/app/run"]\n');
    await writeFile(bad, 'FROM scratch\nCOPPY a /b\nUSER ${U:?set U}\n');
    const catalog = { listImages: async () => [{ name: 'debian', tag: '12', kind: 'base-os' as const }] };
    running = await startPlannerService(loadPlannerConfig(['--port', '0', '--host', '127.0.0.1'], {}), { logger: createLogger('test', 'silent'), catalog });
  });

  after(async () => {
    await running.shutdown(100);
    await rm(dir, { recursive: true, force: true });
  });

  it('plans in-process without a planner and prints the steps', async () => {
    const { code, stdout, stderr } = await kindling(['plan', '-f', good, '--build-arg', 'V=7']);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /stage 0 \(build\) FROM debian:12 \(unresolved\)/);
    assert.match(stdout, /\s4 {2}RUN make V=\$V/);
    assert.match(stdout, /cmd +\["\/app\/run"\]/);
    assert.match(stderr, /warning: .*Dockerfile:2:1: FROM debian:12: not checked/);
  });

  it('takes a bare --build-arg K from the environment, as docker build does, and skips it when unset', async () => {
    const { code, stdout, stderr } = await kindling(['plan', '-f', good, '--json', '--build-arg', 'V', '--build-arg', 'KINDLING_TEST_UNSET'], { V: 'from-env' });
    assert.equal(code, 0, stderr);
    const response = JSON.parse(stdout) as { plan: { buildArgs: Record<string, string>; unusedBuildArgs?: string[] } };
    assert.deepEqual([response.plan.buildArgs, response.plan.unusedBuildArgs ?? []], [{ V: 'from-env' }, []]);
    const empty = await kindling(['plan', '-f', good, '--build-arg', '=x']);
    assert.deepEqual([empty.code, /--build-arg "=x": expected KEY=VALUE or KEY/.test(empty.stderr)], [2, true]);
  });

  it('says which Dockerfile it could not read and how to name one (exit 2)', async () => {
    const missing = await kindling(['plan', '-f', join(dir, 'nope')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no Dockerfile at .*nope: give its path with -f PATH/);
    const directory = await kindling(['plan', '-f', dir]);
    assert.equal(directory.code, 2);
    assert.match(directory.stderr, /is a directory: -f takes the Dockerfile itself \(e\.g\. -f .*\/Dockerfile\)/);
  });

  it('says plainly when the planner cannot be reached (exit 1)', async () => {
    const { code, stderr } = await kindling(['plan', '-f', good, '--planner', '127.0.0.1:1']);
    assert.equal(code, 1);
    assert.match(stderr, /kindling plan: planner 127\.0\.0\.1:1: .*ECONNREFUSED.* \(is the planner running there\?/);
    assert.doesNotMatch(stderr, /Resolution note/);
  });

  it('asks the planner given with --planner, and resolves bases through its catalog', async () => {
    const { code, stdout, stderr } = await kindling(['plan', '-f', good, '--planner', running.address, '--target', 'build', '--json']);
    assert.equal(code, 0, stderr);
    const response = JSON.parse(stdout) as { plan: { targetStageIndex?: number; stages: { base: { image: string; resolved: boolean } }[] } };
    assert.equal(response.plan.targetStageIndex ?? 0, 0);
    assert.deepEqual(response.plan.stages[0]?.base, { image: 'debian:12', resolved: true });
  });

  it('prints every error with its line and exits 1, locally and remotely', async () => {
    for (const env of [{}, { KINDLING_PLANNER_ADDR: running.address }]) {
      const { code, stderr } = await kindling(['plan', '-f', bad], env);
      assert.equal(code, 1);
      assert.match(stderr, /error: .*Dockerfile.bad:2:1: COPPY: unknown instruction: COPPY \(did you mean COPY\?\)/);
      assert.match(stderr, /error: .*Dockerfile.bad:3:1: USER: .*U: set U/);
    }
  });

  it('stops quietly with its exit code when the reader closes the pipe early (kindling plan | head)', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', cliMain, 'plan', '-f', good], {
      env: { ...process.env, KINDLING_PLANNER_ADDR: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy(); // the reader is gone before the first line is written
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|at \S+ \(/);
  });
});
