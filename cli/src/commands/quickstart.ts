/**
 * `kindling quickstart`: the whole job on one machine, in a sandbox. Builds (or reuses) the Debian base
 * OS, starts the four services in a network namespace of their own, builds examples/hello into the
 * image hello:latest inside a microVM, boots that image, shows what its entrypoint reports over SSH,
 * then stops and removes everything it created.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir, ensureDebianBase, printProgress } from '@kindling/vmm/baseos';
import { startLocalSuite } from '../local-suite.ts';
import { bootAndInspect } from '../quickstart/boot-and-inspect.ts';
import { run as runBuild } from './build.ts';
import { parseCommandLine } from '../command-line.ts';

export const describe = 'build examples/hello into a microVM image and boot it, all on this machine (root)';

const usage = `usage: sudo npx kindling quickstart [--example DIR] [--tag NAME:TAG] [--probe 'SHELL COMMAND'] [--cache-dir DIR]

Needs root and the VM host packages (bash scripts/install-host-packages.sh). Everything runs in a
network namespace of its own (kindling-qs-<pid>); nothing is left behind but the base-OS cache.
`;

const netnsVariable = 'KINDLING_QUICKSTART_NETNS';
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

function ip(...args: string[]): void {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')}: ${result.stderr.trim()}`);
}

/** Re-runs this command inside a fresh network namespace, and removes the namespace afterwards. */
function runInSandbox(argv: string[]): number {
  const netns = `kindling-qs-${process.pid}`;
  ip('netns', 'add', netns);
  try {
    ip('-n', netns, 'link', 'set', 'lo', 'up');
    const result = spawnSync('ip', ['netns', 'exec', netns, process.execPath, join(repoRoot, 'cli/bin/kindling.js'), 'quickstart', ...argv], {
      stdio: 'inherit',
      env: { ...process.env, [netnsVariable]: netns },
    });
    return result.status ?? 1;
  } finally {
    spawnSync('ip', ['netns', 'del', netns]);
  }
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('quickstart', usage, {
    args: argv,
    options: {
      example: { type: 'string', default: join(repoRoot, 'examples/hello') },
      tag: { type: 'string', default: 'hello:latest' },
      probe: { type: 'string', default: 'cat /srv/hello/status.txt && systemctl is-active kindling-entrypoint' },
      'cache-dir': { type: 'string', default: defaultCacheDir() },
    },
  });
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  if (process.getuid?.() !== 0) {
    process.stderr.write('kindling quickstart: needs root (it boots VMs and creates network namespaces); run it with sudo\n');
    return 1;
  }
  const say = (line: string): void => void process.stdout.write(`[quickstart] ${line}\n`);
  if (process.env[netnsVariable] === undefined) {
    say('base OS: debian:bookworm (built once, then cached)');
    await ensureDebianBase({ cacheDir: values['cache-dir'], progress: printProgress(process.stdout, false) });
    return runInSandbox(argv);
  }

  const started = performance.now();
  const workDir = await mkdtemp(join(tmpdir(), 'kindling-quickstart-'));
  say(`sandbox netns ${process.env[netnsVariable]}, work dir ${workDir}`);
  const suite = await startLocalSuite({ workDir, cacheDir: values['cache-dir'], subnet: '10.209.0.0/24', log: say });
  try {
    say(`building ${values.example} as ${values.tag}`);
    const built = await runBuild(['--planner', suite.planner, '--tag', values.tag, values.example]);
    if (built !== 0) {
      say(`the build failed; service logs are in ${join(workDir, 'logs')} until the end of this run`);
      return built;
    }
    say(`booting ${values.tag}`);
    const report = await bootAndInspect(suite, values.tag, values.probe, say);
    process.stdout.write(report);
    say(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  } finally {
    await suite.stop();
    await rm(workDir, { recursive: true, force: true });
  }
}
