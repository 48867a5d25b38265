import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FailedPreconditionError, UnavailableError } from '../../domain/errors.ts';
import type { GitSource } from '../../domain/git-url.ts';
import { bareHost, checkAddress, type NetworkPolicy } from '../../domain/network-policy.ts';
import type { HostResolver } from '../../ports/host-resolver.ts';

/**
 * What makes git connect only to addresses the fetcher resolved and checked,
 * instead of resolving the remote's name again by itself (where a second DNS
 * answer could point at a refused address).
 */
export interface GitPinning {
  /** git configuration entries (key, value). */
  config: [string, string][];
  env: Record<string, string>;
  /** Appended to the ssh command git runs. */
  sshOptions: string;
}

const NOT_PINNED: GitPinning = { config: [], env: {}, sshOptions: '' };

/**
 * Resolves the remote's host once, refuses it if any address is refused by the
 * policy, and pins git to those addresses: http.curloptResolve (git ≥ 2.37) for
 * http(s), -o HostName/HostKeyAlias for ssh, a proxy command for git://.
 * `dir` is the fetch's private directory (the git:// proxy script goes there).
 */
export async function pinGitRemote(
  source: GitSource,
  policy: NetworkPolicy,
  resolveHost: HostResolver,
  sshCommand: string,
  dir: string,
): Promise<GitPinning> {
  const { host, port } = remoteEndpoint(source, sshCommand);
  // An address in the URL was checked by parseGitSource (and each redirect hop): nothing to resolve.
  if (isIP(bareHost(host).replace(/%.*$/u, ''))) return NOT_PINNED;
  const shown = `git remote ${source.shown}`;
  let answer;
  try {
    answer = await resolveHost(host);
  } catch (err) {
    throw new UnavailableError(
      `cannot resolve ${host}, the host of ${shown} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check the name and the fetcher's DNS`,
      { cause: err },
    );
  }
  if (answer.length === 0) throw new UnavailableError(`${host}, the host of ${shown}, resolves to no address`);
  for (const a of answer) {
    if (!isIP(a.address)) throw new UnavailableError(`${host}, the host of ${shown}, resolved to "${a.address}", not an address`);
    checkAddress(policy, a.address, shown);
  }
  const addresses = answer.map((a) => a.address);
  switch (source.transport) {
    case 'http':
    case 'https': {
      const version = await gitVersion();
      if (compareVersions(version, [2, 37]) < 0) {
        throw new FailedPreconditionError(
          `git ${version.join('.')} on the fetcher host cannot be told which checked address to connect to (http.curloptResolve needs git 2.37 or later), so the fetcher does not let it fetch ${source.shown} by name; upgrade git, or name the host by address`,
        );
      }
      const list = addresses.map((a) => (isIP(a) === 6 ? `[${a}]` : a)).join(',');
      return { ...NOT_PINNED, config: [['http.curloptResolve', `${host}:${port}:${list}`]] };
    }
    case 'ssh': {
      // ssh stores keys of non-22 ports as [host]:port, but drops the port when HostKeyAlias is set.
      const alias = port === 22 ? host : `[${host}]:${port}`;
      return { ...NOT_PINNED, sshOptions: `-o ${shellQuote(`HostName=${addresses[0]!}`)} -o ${shellQuote(`HostKeyAlias=${alias}`)}` };
    }
    case 'git': {
      const proxy = join(dir, 'kindling-git-proxy');
      await writeFile(proxy, `#!/bin/sh\nexec ${shellQuote(process.execPath)} -e "$KINDLING_GIT_PROXY" "$@"\n`, {
        mode: 0o700,
      });
      return {
        ...NOT_PINNED,
        env: {
          GIT_PROXY_COMMAND: proxy,
          KINDLING_GIT_PROXY: GIT_PROXY_SCRIPT,
          KINDLING_GIT_PIN_HOST: host.toLowerCase(),
          KINDLING_GIT_PIN_ADDRESS: addresses[0]!,
        },
      };
    }
  }
}

/** The host git will contact and the port it will use there. */
function remoteEndpoint(source: GitSource, sshCommand: string): { host: string; port: number } {
  if (source.transport === 'ssh' && !source.remote.includes('://')) {
    const host = bareHost(source.remote.replace(/^[^@]*@/u, '').split(':')[0]!);
    return { host, port: sshCommandPort(sshCommand) ?? 22 };
  }
  const url = new URL(source.remote);
  const host = bareHost(url.hostname);
  const urlPort = url.port === '' ? undefined : Number(url.port);
  switch (source.transport) {
    case 'http':
      return { host, port: urlPort ?? 80 };
    case 'https':
      return { host, port: urlPort ?? 443 };
    case 'git':
      return { host, port: urlPort ?? 9418 };
    case 'ssh':
      // git passes the URL's port as -p after the configured command, and ssh keeps the first -p.
      return { host, port: sshCommandPort(sshCommand) ?? urlPort ?? 22 };
  }
}

/** A port given in the ssh command itself (-p N, -pN, -o Port=N); a Port in an ssh config file is not seen. */
export function sshCommandPort(sshCommand: string): number | undefined {
  const words = sshCommand.trim().split(/\s+/u);
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    const next = words[i + 1] ?? '';
    const value =
      w === '-p'
        ? next
        : /^-p\d+$/u.test(w)
          ? w.slice(2)
          : w === '-o' && /^port[= ]?\d*$/iu.test(next)
            ? next.replace(/^port=?/iu, '') || (words[i + 2] ?? '')
            : /^-oport=?\d+$/iu.test(w)
              ? w.replace(/^-oport=?/iu, '')
              : undefined;
    if (value !== undefined && /^\d+$/u.test(value)) return Number(value);
  }
  return undefined;
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/gu, `'\\''`)}'`;
}

/** Connects git's git:// stream to the checked address; git runs it as `<proxy> <host> <port>`. */
const GIT_PROXY_SCRIPT = `
const [, host = '', port = ''] = process.argv;
const { KINDLING_GIT_PIN_HOST: pinned, KINDLING_GIT_PIN_ADDRESS: address } = process.env;
if (host.toLowerCase() !== pinned) {
  process.stderr.write('kindling: git asked to connect to ' + host + ', but only ' + pinned + ' was checked\\n');
  process.exit(1);
}
const socket = require('node:net').connect({ host: address, port: Number(port) });
socket.on('error', (e) => {
  process.stderr.write('kindling: cannot connect to ' + host + ' (' + address + ') port ' + port + ': ' + e.message + '\\n');
  process.exit(1);
});
process.stdin.pipe(socket);
socket.pipe(process.stdout);
`;

let version: Promise<number[]> | undefined;

/** The git binary's version, asked once per process. */
function gitVersion(): Promise<number[]> {
  version ??= promisify(execFile)('git', ['version'], { env: { PATH: process.env.PATH } }).then(
    ({ stdout }) => (/(\d+)\.(\d+)/u.exec(stdout) ?? []).slice(1).map(Number),
    (err: unknown) => {
      version = undefined;
      throw err;
    },
  );
  return version;
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < b.length; i++) if ((a[i] ?? 0) !== b[i]) return (a[i] ?? 0) - b[i]!;
  return 0;
}
