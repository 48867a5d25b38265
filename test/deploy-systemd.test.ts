/**
 * The systemd units in deploy/systemd: `systemd-analyze verify` accepts them without a warning (with
 * their paths pointed at this checkout and the running node), every KINDLING_* name in kindling.env
 * is a setting its service really has (from the service's --help), only the vmm runs as root, and
 * every service reads /etc/kindling/kindling.env.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const unitDir = join(repoRoot, 'deploy/systemd');
const services = ['planner', 'fetcher', 'vmm', 'provisioner'] as const;
const serviceUnits = services.map((service) => `kindling-${service}.service`);
const units = [...serviceUnits, 'kindling.target'];
const systemdAnalyze = '/usr/bin/systemd-analyze';
const skipVerify = existsSync(systemdAnalyze) ? false : `${systemdAnalyze} is not installed`;

/** `Key=value` assignments of one section of a unit file (comments and other sections left out). */
function section(unitText: string, name: string): Array<[string, string]> {
  const entries: Array<[string, string]> = [];
  let current = '';
  for (const line of unitText.split('\n').map((l) => l.trim())) {
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) current = header[1]!;
    else if (current === name) {
      const eq = line.indexOf('=');
      assert.ok(eq > 0, `not a Key=value line: ${line}`);
      entries.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
    }
  }
  return entries;
}

function values(unitText: string, sectionName: string, key: string): string[] {
  return section(unitText, sectionName)
    .filter(([k]) => k === key)
    .map(([, v]) => v);
}

const unitText = (unit: string): string => readFileSync(join(unitDir, unit), 'utf8');

/**
 * The unit as systemd-analyze can check it here: the repository is at repoRoot, not /opt/kindling,
 * and node is process.execPath, not /usr/bin/node (verify fails on an ExecStart that does not exist).
 */
function localized(text: string): string {
  return text
    .replace(/^WorkingDirectory=\/opt\/kindling$/gm, `WorkingDirectory=${repoRoot}`)
    .replace(/^ExecStart=\/usr\/bin\/node /gm, `ExecStart=${process.execPath} `);
}

interface Verified {
  status: number | null;
  /** stderr lines about our units (or about no unit at all): each one is a warning or an error. */
  ours: string[];
  /** stderr lines that name only other units (nats-server.service, the host's own units). */
  others: string[];
}

/**
 * Runs systemd-analyze verify on files in dir. It reports problems on stderr, one per line, each
 * naming the unit or the unit file it is about; it also loads the units ours refer to, and on a host
 * whose own units have problems (or without nats-server.service, which only our After= names) it may
 * say so. Those lines are not about our units and are ignored. A line counts as ours if it names a
 * file in dir or one of the given units, or if it names no unit at all (a general failure).
 */
function verify(dir: string, files: string[]): Verified {
  const result = spawnSync(systemdAnalyze, ['verify', ...files.map((f) => join(dir, f))], {
    encoding: 'utf8',
    env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: '' },
    timeout: 60_000,
  });
  const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
  const unitName = /[\w@.\\-]+\.(?:service|target|socket|mount|automount|swap|path|timer|slice|scope|device)\b/g;
  const isOurs = (line: string): boolean => {
    if (line.includes(dir)) return true;
    const named = line.match(unitName) ?? [];
    return named.length === 0 || named.some((name) => files.includes(name));
  };
  return { status: result.status, ours: lines.filter(isOurs), others: lines.filter((line) => !isOurs(line)) };
}

describe('deploy/systemd', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kindling-systemd-'));
    for (const unit of units) writeFileSync(join(dir, unit), localized(unitText(unit)));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('ships the four service units and kindling.target', () => {
    const shipped = readdirSync(unitDir).filter((f) => /\.(service|target)$/.test(f));
    assert.deepEqual(shipped.sort(), [...units].sort());
  });

  it('the localized copies differ from the originals only in the node and repository paths', () => {
    for (const unit of serviceUnits) {
      const copy = readFileSync(join(dir, unit), 'utf8');
      assert.match(copy, new RegExp(`^ExecStart=${process.execPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} --import tsx services/`, 'm'), unit);
      assert.match(copy, new RegExp(`^WorkingDirectory=${repoRoot.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), unit);
    }
  });

  it('systemd-analyze verify accepts every unit without a warning', { skip: skipVerify }, (t) => {
    const result = verify(dir, units);
    for (const line of result.others) t.diagnostic(`ignored (not about our units): ${line}`);
    assert.deepEqual(result.ours, [], 'systemd-analyze verify warned about our units');
    assert.equal(result.status, 0, 'systemd-analyze verify failed');
  });

  it('systemd-analyze verify rejects a unit whose ExecStart does not exist', { skip: skipVerify }, () => {
    const broken = localized(unitText('kindling-fetcher.service')).replace(
      /^ExecStart=\S+/m,
      `ExecStart=${join(dir, 'no-such-dir/node')}`,
    );
    writeFileSync(join(dir, 'kindling-broken.service'), broken);
    const result = verify(dir, ['kindling-broken.service']);
    assert.notEqual(result.status, 0);
    assert.ok(result.ours.some((line) => line.includes('no-such-dir/node')), result.ours.join('\n'));
  });

  it('a warning about one of our units is caught (an unknown key is only a warning)', { skip: skipVerify }, () => {
    const typo = localized(unitText('kindling-fetcher.service')).replace(/^Restart=/m, 'Restrat=');
    writeFileSync(join(dir, 'kindling-typo.service'), typo);
    const result = verify(dir, ['kindling-typo.service']);
    assert.ok(result.ours.some((line) => line.includes("Unknown key 'Restrat'")), result.ours.join('\n'));
  });

  it('every KINDLING_* name in kindling.env is a setting of its service', () => {
    const env = readFileSync(join(unitDir, 'kindling.env'), 'utf8');
    const named = [...env.matchAll(/^\s*#?\s*(KINDLING_[A-Z0-9_]+)=/gm)].map((m) => m[1]!);
    assert.ok(named.length > 20, `only ${named.length} settings found in kindling.env`);
    const known = new Set<string>();
    for (const service of services) {
      const help = spawnSync(process.execPath, ['--import', 'tsx', `services/${service}/src/main.ts`, '--help'], {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(help.status, 0, `${service} --help: ${help.stderr}`);
      const variables = [...help.stdout.matchAll(/\((KINDLING_[A-Z0-9_]+)[;)]/g)].map((m) => m[1]!);
      assert.ok(variables.length > 5, `${service} --help listed no settings`);
      for (const variable of variables) known.add(variable);
    }
    const unknown = named.filter((name) => !known.has(name));
    assert.deepEqual(unknown, [], 'kindling.env names settings no service has');
    for (const service of services) {
      assert.ok(named.some((name) => name.startsWith(`KINDLING_${service.toUpperCase()}_`)), `kindling.env has nothing for ${service}`);
    }
  });

  it('only the vmm runs as root; the others run as kindling', () => {
    for (const service of services) {
      const text = unitText(`kindling-${service}.service`);
      const user = values(text, 'Service', 'User');
      const group = values(text, 'Service', 'Group');
      if (service === 'vmm') {
        assert.ok(user.length === 0 || user.every((u) => u === 'root'), `vmm User=${user.join(',')}`);
        assert.ok(values(text, 'Service', 'CapabilityBoundingSet').join(' ').includes('CAP_NET_ADMIN'));
      } else {
        assert.deepEqual(user, ['kindling'], `${service} User=`);
        assert.deepEqual(group, ['kindling'], `${service} Group=`);
        assert.deepEqual(values(text, 'Service', 'DynamicUser'), [], `${service} DynamicUser=`);
        for (const key of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp']) {
          assert.deepEqual(values(text, 'Service', key), ['yes'], `${service} ${key}=`);
        }
        assert.deepEqual(values(text, 'Service', 'ProtectSystem'), ['strict'], `${service} ProtectSystem=`);
      }
    }
  });

  it('every service unit reads /etc/kindling/kindling.env and starts its own main.ts', () => {
    for (const service of services) {
      const text = unitText(`kindling-${service}.service`);
      assert.deepEqual(values(text, 'Service', 'EnvironmentFile'), ['-/etc/kindling/kindling.env'], service);
      assert.deepEqual(values(text, 'Service', 'WorkingDirectory'), ['/opt/kindling'], service);
      assert.deepEqual(values(text, 'Service', 'ExecStart'), [`/usr/bin/node --import tsx services/${service}/src/main.ts`], service);
      assert.ok(existsSync(join(repoRoot, `services/${service}/src/main.ts`)), service);
    }
  });

  it('kindling.target wants all four services', () => {
    const wants = values(unitText('kindling.target'), 'Unit', 'Wants').flatMap((v) => v.split(/\s+/));
    assert.deepEqual([...wants].sort(), [...serviceUnits].sort());
  });
});
