import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { buildBaseOs, ensureDebianBase, type BaseOsBuild } from '../src/baseos/build.ts';
import { loadRecipe, parseSize, recipeHash } from '../src/baseos/recipe.ts';
import { fileIsElf, locatePayload } from '../src/baseos/vmlinux.ts';
import { removeWorkDir } from '../src/baseos/work-dir.ts';
import { baseOsUnavailable, commandMissing, debugfs } from './support/baseos-image.ts';

describe('base-OS recipes', () => {
  it('hashes a recipe by its files and the size: same input, same key; any change, a new key', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'kindling-test-recipe-'));
    try {
      const root = path.join(dir, 'baseos');
      await cp(path.resolve(import.meta.dirname, '../../../baseos/debian'), path.join(root, 'debian'), {
        recursive: true,
      });
      const recipe = await loadRecipe('debian/bookworm', root);
      assert.ok(recipe.files.includes('overlay/usr/lib/kindling/kindling-boot'));
      const a = await recipeHash(recipe, parseSize('2G'));
      assert.equal(await recipeHash(await loadRecipe('debian/bookworm', root), parseSize('2G')), a);
      assert.notEqual(await recipeHash(recipe, parseSize('3G')), a);
      await writeFile(path.join(root, 'debian/bookworm/hooks/customize.sh'), '# changed\n', { flag: 'a' });
      assert.notEqual(await recipeHash(await loadRecipe('debian/bookworm', root), parseSize('2G')), a);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('parses sizes and refuses nonsense with the accepted forms', () => {
    assert.equal(parseSize('2G'), 2 * 1024 ** 3);
    assert.equal(parseSize('512MiB'), 512 * 1024 ** 2);
    assert.throws(() => parseSize('big'), /not a size like 2G/);
    assert.throws(() => parseSize('1M'), /too small/);
  });

  it('names the known recipes when asked for an unknown one', async () => {
    await assert.rejects(
      buildBaseOs('debian/sid-nope', { progress: () => undefined }),
      /known recipes: .*debian\/bookworm/,
    );
  });

  it('says clearly that the Alpine recipe needs a Docker engine when none runs', async (t) => {
    let engine = false;
    try {
      execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], { stdio: 'ignore' });
      engine = true;
    } catch {
      // no docker CLI or no engine: the case this test is about
    }
    if (engine) return t.skip('a Docker engine runs here; the build would really run');
    const cacheDir = await mkdtemp(path.join(tmpdir(), 'kindling-test-cache-'));
    try {
      await assert.rejects(
        buildBaseOs('alpine/3.20', { cacheDir, progress: () => undefined }),
        (e: Error) => {
          assert.equal(e.name, 'DockerUnavailableError');
          assert.match(
            e.message,
            /alpine\/3\.20 is built with Docker.*install and start a Docker engine.*debian\/bookworm/s,
          );
          return true;
        },
      );
      // Nothing half-built stays in the cache.
      assert.deepEqual(execFileSync('find', [cacheDir, '-mindepth', '2'], { encoding: 'utf8' }), '');
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it("removes a killed build's work dir without reaching into what is still mounted in it", async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root (mount)');
    const dir = await mkdtemp(path.join(tmpdir(), 'kindling-test-workdir-'));
    const mountPoint = path.join(dir, 'tree/proc');
    await mkdir(mountPoint, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'kindling-test', mountPoint]);
    t.after(() => {
      if (readFileSync('/proc/mounts', 'utf8').includes(mountPoint))
        execFileSync('umount', ['-l', mountPoint]);
      rmSync(dir, { recursive: true, force: true });
    });
    await writeFile(path.join(mountPoint, 'inside'), 'x');
    await removeWorkDir(dir);
    assert.equal(existsSync(dir), false);
    assert.equal(readFileSync('/proc/mounts', 'utf8').includes(mountPoint), false);
  });

  it('finds the compressed payload of a bzImage from its boot header', () => {
    const img = Buffer.alloc(8192);
    img.write('HdrS', 0x202, 'latin1');
    img.writeUInt16LE(0x20f, 0x206);
    img.writeUInt8(3, 0x1f1); // setup sectors: protected-mode code at (3+1)*512
    img.writeUInt32LE(100, 0x248);
    img.writeUInt32LE(64, 0x24c);
    Buffer.from([0x02, 0x21, 0x4c, 0x18]).copy(img, 2048 + 100);
    assert.deepEqual(locatePayload(img), { compression: 'lz4', offset: 2148, length: 64 });
    assert.throws(() => locatePayload(Buffer.alloc(1024)), /not an x86 bzImage/);
  });
});

describe('the guest boot unit', () => {
  const overlay = path.resolve(
    import.meta.dirname,
    '../../../baseos/debian/bookworm/overlay/usr/lib/kindling',
  );

  it('fetches guest.json from an MMDS v2 endpoint (token, then GET / as JSON)', async (t) => {
    const doc = { vmId: 'vm-9', hostname: 'from-mmds', authorizedKeys: ['ssh-ed25519 AAAA x'] };
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.method === 'PUT' && req.url === '/latest/api/token') return res.end('tok-123');
      if (
        req.method === 'GET' &&
        req.url === '/' &&
        req.headers['x-metadata-token'] === 'tok-123' &&
        req.headers.accept === 'application/json'
      )
        return res.end(JSON.stringify(doc));
      res.statusCode = 401;
      res.end('no');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => server.close());
    const { port } = server.address() as AddressInfo;
    const { stdout } = await promisify(execFile)('bash', [
      path.join(overlay, 'mmds-get'),
      '127.0.0.1',
      String(port),
    ]);
    assert.deepEqual(JSON.parse(stdout), doc);
    assert.deepEqual(seen, ['PUT /latest/api/token', 'GET /']);
  });

  it('fails when MMDS answers with an error status', async (t) => {
    const server = createServer((_req, res) => {
      res.statusCode = 404;
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => server.close());
    const { port } = server.address() as AddressInfo;
    await assert.rejects(
      promisify(execFile)('bash', [path.join(overlay, 'mmds-get'), '127.0.0.1', String(port)]),
    );
  });

  it('renders the entrypoint unit with systemd quoting, USER, WORKDIR and STOPSIGNAL', (t) => {
    if (commandMissing('jq')) return t.skip('needs jq (the image has it; the host may not)');
    const guest = {
      image: {
        entrypoint: ['/bin/sh', '-c'],
        cmd: ['echo "$HOME" 100% \\ done'],
        env: ['A=b c', 'P=$x%y'],
        user: 'app:staff',
        workingDir: '/srv',
        stopSignal: 'SIGINT',
      },
    };
    const unit = execFileSync('jq', ['-r', '-f', path.join(overlay, 'entrypoint-unit.jq')], {
      input: JSON.stringify(guest),
      encoding: 'utf8',
    });
    assert.match(
      unit,
      /^ExecStart=\/usr\/bin\/env -- "\/bin\/sh" "-c" "echo \\"\$\$HOME\\" 100%% \\\\ done"$/m,
    );
    assert.match(unit, /^Environment="P=\$x%%y"$/m);
    assert.match(unit, /^User=app\nGroup=staff$/m);
    assert.match(unit, /^WorkingDirectory=\/srv$/m);
    assert.match(unit, /^KillSignal=SIGINT$/m);
    const base = execFileSync('jq', ['-r', '-f', path.join(overlay, 'entrypoint-unit.jq')], {
      input: '{"vmId":"x"}',
      encoding: 'utf8',
    });
    assert.equal(base.trim(), '', 'base images get no entrypoint unit');
  });
});

describe('the Debian bookworm base image', { skip: baseOsUnavailable() }, () => {
  let build: BaseOsBuild;

  before(async () => {
    build = await ensureDebianBase();
  });

  it('is registered as debian:bookworm and debian:12 with its digest, size and kernel', async () => {
    const json = JSON.parse(await readFile(build.imageJsonPath, 'utf8')) as BaseOsBuild['imageJson'];
    assert.deepEqual(json.names, ['debian:bookworm', 'debian:12']);
    assert.equal(json.base, true);
    assert.match(json.digest, /^blake3-blocks-4m:[0-9a-f]{64}$/);
    assert.equal(json.sizeBytes, 2 * 1024 ** 3);
    assert.equal(
      json.kernel.version,
      (await readFile(path.join(build.dir, 'kernel/version'), 'utf8')).trim(),
    );
    assert.match(json.kernel.version, /cloud-amd64$/);
    assert.equal(json.defaultKernelId, json.kernel.id);
  });

  it('rebuilds an unchanged recipe from the cache', async () => {
    const again = await ensureDebianBase({ progress: () => undefined });
    assert.equal(again.cached, true);
    assert.equal(again.dir, build.dir);
    assert.deepEqual(again.timings, []);
  });

  it('ships kernels for both hypervisors: a bzImage, an initrd, an ELF vmlinux and the config', async () => {
    assert.equal(await fileIsElf(build.kernel.vmlinux), true);
    assert.equal(await fileIsElf(build.kernel.vmlinuz), false);
    const config = await readFile(build.kernel.config, 'utf8');
    assert.match(config, /^CONFIG_VIRTIO_MMIO=[ym]$/m);
    // The initrd is a compressed cpio archive; its member names are plain text once inflated.
    const head = (await readFile(build.kernel.initrd)).subarray(0, 4);
    const inflate = head[0] === 0x1f && head[1] === 0x8b ? 'gzip' : 'zstd';
    const archive = execFileSync(inflate, ['-dc', build.kernel.initrd], { maxBuffer: 1 << 30 }).toString(
      'latin1',
    );
    for (const m of ['virtio_mmio', 'virtio_blk', 'virtio_net'])
      assert.match(archive, new RegExp(`${m}\\.ko`), `${m} in the initrd`);
  });

  it('holds sshd and the boot unit, no host keys and no apt lists, and passes e2fsck', () => {
    const img = build.rootfs;
    assert.match(debugfs(img, 'stat /usr/sbin/sshd'), /Type: regular/);
    assert.match(debugfs(img, 'stat /usr/bin/jq'), /Type: regular/);
    // dbus lets systemd-logind act on the ACPI power button, which graceful StopVm presses.
    assert.match(debugfs(img, 'stat /usr/bin/dbus-daemon'), /Type: regular/);
    assert.match(debugfs(img, 'stat /usr/lib/kindling/mmds-get'), /Mode: +0755/);
    assert.match(
      debugfs(img, 'cat /usr/lib/systemd/system/kindling-boot.service'),
      /ExecStart=\/usr\/lib\/kindling\/kindling-boot/,
    );
    assert.match(
      debugfs(img, 'stat /etc/systemd/system/multi-user.target.wants/kindling-boot.service'),
      /Type: symlink/,
    );
    assert.match(
      debugfs(img, 'stat /usr/lib/systemd/system-generators/kindling-entrypoint-generator'),
      /Mode: +0755/,
    );
    assert.doesNotMatch(debugfs(img, 'ls /etc/ssh'), /ssh_host_/);
    assert.doesNotMatch(debugfs(img, 'ls /var/lib/apt/lists'), /_dists_/);
    assert.match(debugfs(img, 'cat /etc/ssh/sshd_config.d/kindling.conf'), /UseDNS no/);
    execFileSync('e2fsck', ['-fn', img], { stdio: 'pipe' });
  });
});
