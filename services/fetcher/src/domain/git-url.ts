import { contextRelativePath } from './context-path.ts';
import { InvalidArgumentError } from './errors.ts';
import { checkHost, checkScheme, type NetworkPolicy, redactUrl } from './network-policy.ts';

/** A git context as docker spells it: "<remote>#<ref>:<subdir>". */
export interface GitSource {
  /** What git is given to fetch from (may hold credentials: never log it). */
  remote: string;
  /** Branch, tag or commit; undefined means the remote's HEAD. */
  ref: string | undefined;
  /** Directory inside the repository that is the context ('.' for the top). */
  subdir: string;
  /** The remote without credentials, for logs and errors. */
  shown: string;
  transport: 'http' | 'https' | 'ssh' | 'git';
}

const SCP_LIKE = /^([A-Za-z0-9._~-]+@)?([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(?!\/\/)(.+)$/u;

/**
 * Parses https://host/repo.git#ref:subdir, git+https://…, git+ssh://…,
 * ssh://…, git://… and scp-like git@host:repo.git#ref forms, applying the
 * network policy.
 */
export function parseGitSource(raw: string, policy: NetworkPolicy): GitSource {
  const hash = raw.indexOf('#');
  const base = hash >= 0 ? raw.slice(0, hash) : raw;
  const fragment = hash >= 0 ? raw.slice(hash + 1) : '';
  const colon = fragment.indexOf(':');
  const ref = (colon >= 0 ? fragment.slice(0, colon) : fragment) || undefined;
  const subdirRaw = colon >= 0 ? fragment.slice(colon + 1) : '';
  if (ref !== undefined && (ref.startsWith('-') || /[\s\\~^:?*[]|\.\.|@\{/u.test(ref))) {
    throw new InvalidArgumentError(
      `git ref ${JSON.stringify(ref)} is not a valid branch, tag or commit name`,
    );
  }
  const subdir = subdirRaw === '' ? '.' : contextRelativePath(subdirRaw, 'git subdirectory');
  if (base.startsWith('-'))
    throw new InvalidArgumentError(`git URL ${JSON.stringify(redactUrl(base))} is malformed`);

  const scp = SCP_LIKE.exec(base);
  if (scp && !/^[a-z][a-z0-9+.-]*:\/\//iu.test(base)) {
    checkScheme(policy, policy.allowedSchemes.includes('git+ssh') ? 'git+ssh' : 'ssh', base);
    const host = scp[2]!;
    checkHost(policy, host, base);
    return { remote: base, ref, subdir, shown: base, transport: 'ssh' };
  }
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new InvalidArgumentError(
      `${JSON.stringify(redactUrl(base))} is not a git URL (expected https://host/repo.git#ref:subdir or git@host:repo.git)`,
    );
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme === 'git' && !policy.allowedSchemes.includes('git')) {
    throw new InvalidArgumentError(
      `${redactUrl(url)} uses git://, git's own protocol: unencrypted and unauthenticated, so the fetcher accepts it only when --allowed-schemes lists "git"; prefer the repository's https:// URL`,
    );
  }
  checkScheme(policy, scheme, redactUrl(url));
  checkHost(policy, url.hostname, redactUrl(url));
  const inner = scheme.startsWith('git+') ? scheme.slice(4) : scheme;
  if (inner !== 'http' && inner !== 'https' && inner !== 'ssh' && inner !== 'git') {
    throw new InvalidArgumentError(
      `${redactUrl(url)}: git over "${scheme}:" is not supported; use https, http, ssh or git`,
    );
  }
  const remote = scheme.startsWith('git+') ? base.replace(/^git\+/iu, '') : base;
  return { remote, ref, subdir, shown: redactUrl(remote), transport: inner };
}
