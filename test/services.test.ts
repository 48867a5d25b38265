/**
 * Each service as an operator runs it: its main.ts in its own process on 127.0.0.1 with a free port,
 * queried by reflection (as grpcurl) and health; a bad setting stops it with exit code 2 naming the
 * setting; SIGTERM shuts it down gracefully.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertServiceBasics } from '@kindling/runtime/testing';
import { startServiceProcess } from '../cli/src/local-suite.ts';

const services = [
  { dir: 'planner', name: 'kindling.planner.v1.BuildService' },
  { dir: 'fetcher', name: 'kindling.fetcher.v1.FetcherService' },
  { dir: 'vmm', name: 'kindling.vmm.v1.VmmService' },
  { dir: 'provisioner', name: 'kindling.provisioner.v1.ProvisionerService' },
] as const;

async function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

for (const service of services) {
  describe(`${service.dir} service process`, () => {
    it('serves reflection and health on a free loopback port and stops on SIGTERM', async () => {
      const stateDir = mkdtempSync(join(tmpdir(), `kindling-${service.dir}-`));
      const prefix = `KINDLING_${service.dir.toUpperCase()}`;
      let child: ChildProcess | undefined;
      try {
        const started = await startServiceProcess(service.dir, [], {
          env: { [`${prefix}_STATE_DIR`]: stateDir, [`${prefix}_CACHE_DIR`]: stateDir },
        });
        child = started.child;
        await assertServiceBasics(started.address, service.name);
        child.kill('SIGTERM');
        assert.equal(await exitCode(child), 0);
      } finally {
        child?.kill('SIGKILL');
        rmSync(stateDir, { recursive: true, force: true });
      }
    });

    it('exits 2 naming the setting when a setting is bad', async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', `services/${service.dir}/src/main.ts`, '--port', 'eighty'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      assert.equal(await exitCode(child), 2);
      assert.match(stderr, new RegExp(`--port \\(KINDLING_${service.dir.toUpperCase()}_PORT\\)`));
    });
  });
}
