/**
 * A stand-in `jailer` for driver tests that follows jailer.md's "Jailer Operation": it rejects a
 * command line jailer.md does not describe, validates its inputs as the real jailer does (the exec
 * file is canonicalized and its name must contain "firecracker", the chroot base must exist, the
 * parent cgroup is a relative path, a `--cgroup` is `<file>=<value>` with exactly one `=`),
 * creates `<chroot_base>/<exec_file_name>/<id>/root`,
 * copies the exec file there, creates `<cgroup_base>/<parent_cgroup>/<id>` in the hierarchies named
 * by FAKE_PROC_MOUNTS and writes the --cgroup values (to `<id>.<file>` beside it), chowns the jail root, writes
 * `<exec_file_name>.pid` and runs the exec file with `--id=<id> --start-time-us=… --start-time-cpu-us=…`
 * plus the arguments after `--`, dropping to --uid/--gid. It cannot chroot a Node process, so it
 * passes the jail root as FAKE_FC_ROOT instead.
 */
import { spawn } from 'node:child_process';
import {
  chownSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { parseCgroupMounts } from '../../src/adapters/firecracker/cgroups.ts';

const fail = (message: string): never => {
  process.stderr.write(`jailer: ${message}\n`);
  process.exit(1);
};

const argv = process.argv.slice(2);
const single = new Map<string, string>();
const multi: Record<string, string[]> = { '--cgroup': [], '--resource-limit': [] };
let daemonize = false;
let extra: string[] = [];
for (let i = 0; i < argv.length; i++) {
  const flag = argv[i] ?? '';
  if (flag === '--') {
    extra = argv.slice(i + 1);
    break;
  }
  if (flag === '--daemonize' || flag === '--new-pid-ns') {
    daemonize ||= flag === '--daemonize';
    continue;
  }
  const value = argv[++i];
  if (value === undefined) fail(`${flag} needs a value`);
  if (flag in multi) multi[flag]?.push(value as string);
  else if (
    [
      '--id',
      '--exec-file',
      '--uid',
      '--gid',
      '--cgroup-version',
      '--parent-cgroup',
      '--chroot-base-dir',
      '--netns',
    ].includes(flag)
  ) {
    if (single.has(flag)) fail(`${flag} given twice`);
    single.set(flag, value as string);
  } else fail(`unknown argument ${flag}`);
}
for (const required of ['--id', '--exec-file', '--uid', '--gid'])
  if (!single.has(required)) fail(`missing ${required}`);
const id = single.get('--id') ?? '';
if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) fail(`invalid --id ${id}`);
const canonical = (path: string): string => {
  try {
    return realpathSync(path);
  } catch (error) {
    return fail(`cannot canonicalize ${path}: ${(error as Error).message}`);
  }
};
// Like the jailer: the jail and the pid file are named after the canonical exec file.
const execFile = canonical(single.get('--exec-file') ?? '');
if (!statSync(execFile).isFile()) fail(`${execFile} is not a file`);
const execName = basename(execFile);
if (!execName.includes('firecracker'))
  fail(`Invalid filename. The filename of \`--exec-file\` option must contain "firecracker": ${execName}`);
const chrootBase = canonical(single.get('--chroot-base-dir') ?? '/srv/jailer');
if (!statSync(chrootBase).isDirectory()) fail(`${chrootBase} is not a directory`);
const uid = Number(single.get('--uid'));
const gid = Number(single.get('--gid'));
const version = single.get('--cgroup-version') ?? '1';
if (version !== '1' && version !== '2') fail(`invalid --cgroup-version ${version}`);
const parent = single.get('--parent-cgroup') ?? execName;
if (parent.startsWith('/') || parent.split('/').some((c) => c === '.' || c === '..'))
  fail(`invalid --parent-cgroup ${parent}`);
for (const c of multi['--cgroup'] ?? [])
  // <controller>.<property>=<value>: the jailer splits the file name on "." into exactly two parts.
  if (c.split('=').length !== 2 || !/^[a-z_]+\.[a-z_]+=.+$/s.test(c)) fail(`invalid --cgroup ${c}`);
for (const r of multi['--resource-limit'] ?? [])
  if (!/^(fsize|no-file)=\d+$/.test(r)) fail(`invalid --resource-limit ${r}`);
const netns = single.get('--netns');
if (netns !== undefined && !netns.startsWith('/')) fail(`--netns must be a path: ${netns}`);

const chrootDir = join(chrootBase, execName, id, 'root');
mkdirSync(chrootDir, { recursive: true });
copyFileSync(execFile, join(chrootDir, execName));
writeFileSync(join(process.env.FAKE_JAILER_LOG_DIR ?? chrootDir, `${id}.argv.json`), JSON.stringify(argv));

const mounts = parseCgroupMounts(readFileSync(process.env.FAKE_PROC_MOUNTS ?? '/proc/mounts', 'utf8'));
for (const entry of multi['--cgroup'] ?? []) {
  const [file = '', value = ''] = entry.split(/=(.*)/s, 2);
  const controller = file.split('.')[0] ?? '';
  const base = version === '2' ? mounts.unifiedMount : mounts.v1[controller];
  if (base === undefined) fail(`cgroup controller ${controller} not found for cgroup v${version}`);
  const dir = join(base as string, parent, id);
  mkdirSync(dir, { recursive: true });
  // Beside the directory, not in it: a plain directory holding files could not be rmdir'ed like a cgroup.
  writeFileSync(`${dir}.${file}`, value);
}
chownSync(chrootDir, uid, gid);

const child = spawn(
  join(chrootDir, execName),
  [`--id=${id}`, '--start-time-us=0', '--start-time-cpu-us=0', ...extra],
  {
    cwd: chrootDir,
    stdio: daemonize ? 'ignore' : 'inherit',
    detached: daemonize,
    env: { ...process.env, FAKE_FC_ROOT: chrootDir, FAKE_FC_UID: String(uid), FAKE_FC_GID: String(gid) },
  },
);
// create_new, as the jailer opens it: a pid file left from another run is an error.
writeFileSync(join(chrootDir, `${execName}.pid`), String(child.pid), { flag: 'wx' });
if (daemonize) {
  child.unref();
  process.exit(0);
}
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
