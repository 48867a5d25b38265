/**
 * deploy/local/setup.sh, run twice as root with KINDLING_SETUP_ROOT in a temp dir: the first run makes
 * the CNI network and the state dir under that root (the packages, node_modules and the base OS are
 * already there), the second prints only "ok:" lines and leaves the tree under the root byte for byte as
 * it was, and the conflist it writes is the machine-builds network with plugins the host has.
 *
 * It runs only where the script would change nothing outside the root: as root, with every package of
 * scripts/install-host-packages.sh installed (so apt-get is not run) and the Debian base OS of the
 * current recipe already in the default cache (so mmdebstrap is not run).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir, loadRecipe, parseSize, recipeHash, type BaseOsImageJson } from '@kindling/vmm/baseos';
import { KINDLING_PLUGIN_DIR } from '@kindling/vmm/cni';

const repoRoot = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const script = 'deploy/local/setup.sh';
const cniBinDir = '/usr/lib/cni';

/** The packages scripts/install-host-packages.sh installs (its packages=( … ) list). */
function hostPackages(): string[] {
  const text = readFileSync(join(repoRoot, 'scripts/install-host-packages.sh'), 'utf8');
  const list = /^packages=\(([^)]*)\)/m.exec(text);
  assert.ok(list, 'no packages=( … ) list in scripts/install-host-packages.sh');
  return list[1]!.split(/\s+/).filter((p) => p !== '');
}

const notInstalled = (pkg: string): boolean =>
  !spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' }).stdout?.includes('install ok installed');

/** Where `kindling baseos build debian/bookworm` finds (or would build) the base OS, as buildBaseOs computes it. */
async function baseOsDir(): Promise<string> {
  const recipe = await loadRecipe('debian/bookworm');
  return join(defaultCacheDir(), 'baseos', await recipeHash(recipe, parseSize(recipe.spec.defaultSize)));
}

async function skipReason(): Promise<string | false> {
  if (process.getuid?.() !== 0) return 'needs root (the script refuses to run otherwise)';
  const missing = hostPackages().filter(notInstalled);
  if (missing.length > 0) return `host packages not installed (the script would run apt-get): ${missing.join(' ')}`;
  const dir = await baseOsDir();
  if (!existsSync(join(dir, 'image.json')))
    return `the Debian base OS is not built in ${dir} (the script would run mmdebstrap): sudo npx kindling baseos build debian/bookworm`;
  return false;
}

const skip = await skipReason();

/** Every entry under dir: its type, mode, size, mtime and a sha256 of a file's bytes (or a link's target). */
function tree(dir: string): string[] {
  const entries: string[] = [];
  const walk = (rel: string): void => {
    const full = join(dir, rel);
    const st = lstatSync(full);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      entries.push(`d ${mode} ${rel}/`);
      for (const name of readdirSync(full).sort()) walk(rel === '' ? name : `${rel}/${name}`);
    } else if (st.isSymbolicLink()) {
      entries.push(`l ${rel} -> ${readlinkSync(full)}`);
    } else {
      const sha = createHash('sha256').update(readFileSync(full)).digest('hex');
      entries.push(`f ${mode} ${st.size} ${st.mtimeMs} ${sha} ${rel}`);
    }
  };
  walk('');
  return entries;
}

interface Run {
  status: number | null;
  lines: string[];
  stderr: string;
}

function setup(root: string): Run {
  const result = spawnSync('bash', [script], {
    cwd: repoRoot,
    env: { ...process.env, KINDLING_SETUP_ROOT: root },
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { status: result.status, lines: result.stdout.split('\n').filter((l) => l !== ''), stderr: result.stderr };
}

describe('deploy/local/setup.sh', { skip }, () => {
  let root = '';
  let baseos = '';
  let kernel = '';
  let first: Run;
  let second: Run;
  let treeAfterFirst: string[] = [];
  let treeAfterSecond: string[] = [];

  before(async () => {
    baseos = await baseOsDir();
    kernel = (JSON.parse(readFileSync(join(baseos, 'image.json'), 'utf8')) as BaseOsImageJson).kernel.id;
    root = mkdtempSync(join(tmpdir(), 'kindling-setup-'));
    first = setup(root);
    treeAfterFirst = tree(root);
    second = setup(root);
    treeAfterSecond = tree(root);
  });
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const conflist = (): string => join(root, 'etc/cni/conf.d/machine-builds.conflist');
  const things = (): string[] => [
    'VM host packages (scripts/install-host-packages.sh)',
    'node_modules',
    `CNI network machine-builds (${conflist()})`,
    `state dir ${join(root, 'var/lib/kindling')}`,
    `base OS debian:bookworm and kernel ${kernel} (${baseos})`,
  ];

  it('the first run makes the CNI network and the state dir under the root, and finds the rest present', () => {
    assert.equal(first.status, 0, first.stderr);
    const [packages, modules, cni, state, base] = things();
    assert.deepEqual(first.lines, [
      `ok: ${packages} already present`,
      `ok: ${modules} already present`,
      `made: ${cni}`,
      `made: ${state}`,
      `ok: ${base} already present`,
    ]);
  });

  it('the second run prints only ok: lines', () => {
    assert.equal(second.status, 0, second.stderr);
    assert.deepEqual(second.lines, things().map((thing) => `ok: ${thing} already present`));
  });

  it('the second run changes nothing under the root', () => {
    assert.ok(treeAfterFirst.some((entry) => entry.endsWith(' etc/cni/conf.d/machine-builds.conflist')), treeAfterFirst.join('\n'));
    assert.ok(treeAfterFirst.includes('d 755 var/lib/kindling/'), treeAfterFirst.join('\n'));
    assert.deepEqual(treeAfterSecond, treeAfterFirst);
  });

  it('the conflist is the machine-builds network, with plugins the host has', () => {
    const conf = JSON.parse(readFileSync(conflist(), 'utf8')) as {
      name: string;
      plugins: Array<{ type: string; ipam?: { type?: string } }>;
    };
    assert.equal(conf.name, 'machine-builds');
    assert.ok(Array.isArray(conf.plugins) && conf.plugins.length > 0, 'no plugins');
    const types = conf.plugins.flatMap((p) => [p.type, ...(p.ipam?.type ? [p.ipam.type] : [])]);
    for (const type of types) {
      // tc-redirect-tap is not in containernetworking-plugins: kindling's kindling-tap stands in for it.
      const found =
        existsSync(join(cniBinDir, type)) || (type === 'tc-redirect-tap' && existsSync(join(KINDLING_PLUGIN_DIR, 'kindling-tap')));
      assert.ok(found, `CNI plugin ${type} is not in ${cniBinDir}`);
    }
    assert.deepEqual(types.filter((t) => t !== 'tc-redirect-tap').sort(), ['bridge', 'firewall', 'host-local']);
  });
});
