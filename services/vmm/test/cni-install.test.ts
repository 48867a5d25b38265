import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadNetworkConfigList } from '../src/adapters/cni/conflist.ts';
import { installConflist } from '../src/adapters/cni/install.ts';
import { KINDLING_PLUGIN_DIR } from '../src/adapters/cni/plugin-exec.ts';

describe('kindling cni install', () => {
  it('installs machine-builds (bridge + host-local + firewall + tap), idempotently, with overrides', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'kindling-test-cniconf-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const first = await installConflist({
      dir,
      subnet: '10.77.0.0/24',
      bridge: 'kbr0',
      binDirs: [KINDLING_PLUGIN_DIR],
    });
    assert.equal(first.written, true);
    const list = await loadNetworkConfigList('machine-builds', dir);
    assert.deepEqual(
      list.plugins.map((p) => p.type),
      ['bridge', 'firewall', 'tc-redirect-tap'],
    );
    const bridge = list.plugins[0] as unknown as { bridge: string; ipam: { type: string; subnet: string } };
    assert.equal(bridge.bridge, 'kbr0');
    assert.deepEqual([bridge.ipam.type, bridge.ipam.subnet], ['host-local', '10.77.0.0/24']);
    // kindling-tap stands in for tc-redirect-tap; plugins that are nowhere are reported, not hidden.
    assert.equal(first.plugins['tc-redirect-tap'], path.join(KINDLING_PLUGIN_DIR, 'kindling-tap'));
    assert.match(first.plugins.bridge ?? '', /^MISSING: CNI plugin "bridge" not found/);

    const again = await installConflist({
      dir,
      subnet: '10.77.0.0/24',
      bridge: 'kbr0',
      binDirs: [KINDLING_PLUGIN_DIR],
    });
    assert.equal(again.written, false);
  });

  it('refuses to replace a conflist an operator changed, unless forced', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'kindling-test-cniconf-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'machine-builds.conflist');
    await writeFile(file, '{"cniVersion":"1.0.0","name":"machine-builds","plugins":[{"type":"bridge"}]}');
    await assert.rejects(installConflist({ dir }), /exists with other content.*--force/);
    assert.match(await readFile(file, 'utf8'), /"plugins":\[\{"type":"bridge"\}\]/);
    assert.equal((await installConflist({ dir, force: true })).written, true);
    assert.equal((await loadNetworkConfigList('machine-builds', dir)).plugins.length, 3);
  });

  it('rejects a subnet that is not an IPv4 CIDR', async () => {
    await assert.rejects(installConflist({ dir: '/nonexistent', subnet: '10.0.0.0' }), /not an IPv4 CIDR/);
    await assert.rejects(
      installConflist({ dir: '/nonexistent', subnet: '999.0.0.0/24' }),
      /not an IPv4 CIDR/,
    );
    await assert.rejects(installConflist({ dir: '/nonexistent', subnet: '10.0.0.0/99' }), /not an IPv4 CIDR/);
  });

  it('installs only a shipped example under its own name, and only with a bridge name Linux accepts', async () => {
    await assert.rejects(
      installConflist({ dir: '/nonexistent', name: '../../package' }),
      /no example CNI network "\.\.\/\.\.\/package" in .*: kindling ships machine-builds/,
    );
    await assert.rejects(
      installConflist({ dir: '/nonexistent', name: 'nope' }),
      /no example CNI network "nope"/,
    );
    await assert.rejects(
      installConflist({ dir: '/nonexistent', bridge: 'a-bridge-name-too-long' }),
      /bridge "a-bridge-name-too-long" is not a Linux interface name/,
    );
  });
});
