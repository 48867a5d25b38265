// Builds the wrapper script a step runs. Every byte that comes from a Dockerfile is
// single-quoted, so no value is ever parsed by the remote shell: the shell only runs our fixed
// wrapper, which execs `env -i` with the exact argv and env.
import type { GuestUser } from './guest-user.ts';
import { DEFAULT_PATH } from './exec-step.ts';

/**
 * The exec request a step sends; the wrapper script follows on stdin. On the command line it would
 * be one argument of the login shell (`sh -c <command>`), which Linux caps at 128 KiB: env and argv
 * together could not pass that, where Docker allows ARG_MAX (each value up to 128 KiB).
 */
export const SCRIPT_FROM_STDIN = 'exec /bin/sh -s';

/** POSIX single quoting: byte-exact for everything but NUL (rejected earlier). */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** First line the wrapper prints on stdout: lets the host learn the process group to kill. */
export function processGroupMarker(nonce: string): RegExp {
  return new RegExp(`kindling-pgid:${nonce}:(\\d+)\\n`);
}

export interface RemoteCommandInput {
  argv: string[];
  env: Map<string, string>;
  workdir: string;
  user?: GuestUser;
  nonce: string;
}

export function buildRemoteCommand(input: RemoteCommandInput): string {
  const { argv, workdir, user, nonce } = input;
  const env = new Map(input.env);
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  if (!env.has('HOME')) env.set('HOME', user?.home ?? '/root');
  const q = shellQuote(workdir);
  // sshd makes the session's shell a session and process-group leader, so $$ is the group id.
  const lines = [`printf 'kindling-pgid:%s:%s\\n' ${shellQuote(nonce)} "$$"`];
  if (user) {
    // BuildKit's WORKDIR (mkdir with parents, as USER) gives every directory it creates to the user
    lines.push(
      `if [ ! -d ${q} ]; then d=${q}; set --; while [ ! -d "$d" ]; do set -- "$d" "$@"; d=\${d%/*}; d=\${d:-/}; done; ` +
        `mkdir -p -- ${q} && chown ${user.uid}:${user.gid} -- "$@" || exit 125; fi`,
    );
  } else {
    lines.push(`if [ ! -d ${q} ]; then mkdir -p -- ${q} || exit 125; fi`);
  }
  lines.push(`cd -- ${q} || exit 125`);
  const envArgs = [...env].map(([key, value]) => shellQuote(`${key}=${value}`));
  const switchUser = user
    ? [
        'setpriv',
        `--reuid=${user.uid}`,
        `--regid=${user.gid}`,
        user.groups.length ? `--groups=${user.groups.join(',')}` : '--clear-groups',
        '--',
      ]
    : [];
  // env would take an argv[0] containing "=" for one more assignment
  const guard = !user && argv[0]?.includes('=') ? ['/bin/sh', '-c', shellQuote('exec "$@"'), 'sh'] : [];
  // stdin carried this script: the step gets /dev/null, as a RUN does in Docker
  lines.push(['exec', 'env', '-i', ...envArgs, ...switchUser, ...guard, ...argv.map(shellQuote), '</dev/null'].join(' '));
  return lines.join('\n');
}

/** Kills a whole remote process group, tolerating one that already exited. */
export function killProcessGroupCommand(pgid: number): string {
  return `kill -KILL -- -${pgid} 2>/dev/null; true`;
}
