/**
 * images, rmi, ps, inspect and run's failure paths against a real vmm process (qemu driver, no VM
 * booted): listings as tables and as one JSON document, internal images hidden without -a, failed
 * calls as one line with exit 1, usage errors with exit 2, and a run that cannot boot leaving nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { importImage, jsonOf, kindling, makeExt4, startVmm, tempDir } from './support/cli-services.ts';

interface ImagesJson {
  images: { ref: string; name: string; tag: string; digest: string; sizeBytes: number; allocatedBytes: number; created: string; metadata: { cmd: string[]; env: string[] } }[];
}

test('kindling images, rmi, ps, inspect and run against a real vmm', async (t) => {
  const dir = tempDir(t, 'vmm');
  const vmm = await startVmm(t, dir);
  const at = ['--vmm', vmm.address];
  await importImage(vmm, makeExt4(dir, 'app'), 'app:1', { cmd: ['/srv/app', '--serve'], env: ['MODE=prod'] });
  await importImage(vmm, makeExt4(dir, 'snapshot'), `kindling-cache/${'ab'.repeat(32)}:latest`, { labels: { 'kindling.cache.key': 'sha256:x' } });

  await t.test('images lists the store as a table and as JSON; internal images only with -a', async () => {
    const table = await kindling(['images', ...at]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^REPOSITORY\s+TAG\s+DIGEST\s+SIZE\s+ON DISK\s+CREATED\s+FROM$/);
    assert.equal(lines.length, 2);
    assert.match(lines[1]!, /^app\s+1\s+blake3-blocks-4m:[0-9a-f]{12}\s+8\.0 MiB\s+/);

    const listed = jsonOf<ImagesJson>(await kindling(['images', '--json', ...at]));
    assert.deepEqual(listed.images.map((i) => i.ref), ['app:1']);
    const app = listed.images[0]!;
    assert.deepEqual([app.name, app.tag, app.sizeBytes, app.metadata.cmd, app.metadata.env], ['app', '1', 8 * 1024 ** 2, ['/srv/app', '--serve'], ['MODE=prod']]);
    assert.match(app.digest, /^blake3-blocks-4m:[0-9a-f]{64}$/);
    assert.ok(app.allocatedBytes > 0 && !Number.isNaN(Date.parse(app.created)));

    const all = jsonOf<ImagesJson>(await kindling(['images', '-a', '--json', ...at]));
    assert.deepEqual(all.images.map((i) => i.ref).sort(), ['app:1', `kindling-cache/${'ab'.repeat(32)}:latest`]);
  });

  await t.test('ps lists no VMs, as a header and as an empty JSON list', async () => {
    const table = await kindling(['ps', '-a', ...at]);
    assert.deepEqual([table.code, table.stdout], [0, 'VM ID  IMAGE  STATE  ADDRESS  CREATED\n']);
    assert.deepEqual(jsonOf(await kindling(['ps', '--json', ...at])), { vms: [] });
  });

  await t.test('a failed call is one line naming the service and its answer, exit 1; missing arguments exit 2', async () => {
    const inspect = await kindling(['inspect', 'no-such-vm', ...at]);
    assert.equal(inspect.code, 1);
    assert.match(inspect.stderr, new RegExp(`^kindling inspect: vmm at ${vmm.address}: .*no-such-vm[^\\n]*\\n$`));
    const missingImage = await kindling(['rmi', 'nothing:here', ...at]);
    assert.equal(missingImage.code, 1);
    assert.match(missingImage.stderr, new RegExp(`^kindling rmi: vmm at ${vmm.address}: [^\\n]*nothing:here[^\\n]*\\n$`));
    for (const [command, needs] of [['inspect', 'needs one VM id'], ['logs', 'needs one VM id'], ['stop', 'needs a VM id'], ['rm', 'needs a VM id'], ['rmi', 'needs an IMAGE'], ['run', 'needs IMAGE']]) {
      const result = await kindling([command!, ...at]);
      assert.equal(result.code, 2, command);
      assert.match(result.stderr, new RegExp(`^kindling ${command}: ${needs}\\nusage: kindling ${command}`), command);
    }
    const badEnv = await kindling(['run', '--env', '1X=y', 'app:1', ...at]);
    assert.equal(badEnv.code, 2);
    assert.match(badEnv.stderr, /^kindling run: --env "1X=y": expected KEY=VALUE or KEY/);
  });

  await t.test('a run that cannot boot (an empty image) exits 1 and leaves no VM and no per-run image', async () => {
    // Flags go before IMAGE: everything after "--" is the VM's.
    for (const args of [['-d', 'app:1'], ['-d', '--env', 'MODE=dev', 'app:1', '--', '/srv/app', '--debug']]) {
      const result = await kindling(['run', ...at, ...args]);
      assert.equal(result.code, 1, args.join(' '));
      // The vmm refuses an image without init or kernel (or, with --env/ARGS, may not have TagImage yet): one line either way.
      assert.match(result.stderr, /^kindling run: [^\n]*(cannot boot|kernel|TagImage)[^\n]*\n$/, args.join(' '));
    }
    assert.deepEqual(jsonOf(await kindling(['ps', '-a', '--json', ...at])), { vms: [] });
    const all = jsonOf<ImagesJson>(await kindling(['images', '-a', '--json', ...at]));
    assert.deepEqual(all.images.map((i) => i.ref).sort(), ['app:1', `kindling-cache/${'ab'.repeat(32)}:latest`]);
    const vmDirs = join(vmm.stateDir, 'vms');
    assert.deepEqual(existsSync(vmDirs) ? readdirSync(vmDirs) : [], []);
  });

  await t.test('rmi removes an image; the listing no longer has it', async () => {
    const removed = await kindling(['rmi', 'app:1', ...at]);
    assert.deepEqual([removed.code, removed.stdout], [0, 'removed app:1\n'], removed.stderr);
    assert.deepEqual(jsonOf(await kindling(['images', '--json', ...at])), { images: [] });
  });
});
