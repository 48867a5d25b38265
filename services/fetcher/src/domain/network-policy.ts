import { isIP } from 'node:net';
import { InvalidArgumentError, PermissionDeniedError } from './errors.ts';

/** Which remote sources the fetcher may contact. */
export interface NetworkPolicy {
  /** URL schemes accepted for sources, without ':' (http, https, git+https, git+ssh, ssh). */
  allowedSchemes: string[];
  /** When non-empty, only these hosts ("example.com" or "*.example.com"). */
  allowHosts: string[];
  /** Hosts refused even when allowed above. */
  denyHosts: string[];
  /** Link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254) are refused unless true. */
  allowLinkLocal: boolean;
}

export const DEFAULT_NETWORK_POLICY: NetworkPolicy = {
  allowedSchemes: ['http', 'https', 'git+https', 'git+http', 'git+ssh', 'ssh'],
  allowHosts: [],
  denyHosts: [],
  allowLinkLocal: false,
};

function hostMatches(rule: string, host: string): boolean {
  const r = rule.toLowerCase();
  return r.startsWith('*.') ? host.endsWith(r.slice(1)) : host === r;
}

/** Strips brackets from IPv6 URL hosts. */
export function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

export function checkScheme(policy: NetworkPolicy, scheme: string, shown: string): void {
  if (!policy.allowedSchemes.includes(scheme)) {
    throw new InvalidArgumentError(
      `source ${shown} uses scheme "${scheme}:", which the fetcher does not accept (allowed: ${policy.allowedSchemes.join(', ')})`,
    );
  }
}

/** Refuses a host by the allow/deny lists, and literal link-local addresses. */
export function checkHost(policy: NetworkPolicy, hostname: string, shown: string): void {
  const host = bareHost(hostname).toLowerCase();
  if (policy.denyHosts.some((r) => hostMatches(r, host))) {
    throw new PermissionDeniedError(`host ${host} of ${shown} is on the fetcher's deny list`);
  }
  if (policy.allowHosts.length > 0 && !policy.allowHosts.some((r) => hostMatches(r, host))) {
    throw new PermissionDeniedError(`host ${host} of ${shown} is not on the fetcher's allow list`);
  }
  if (isIP(host)) checkAddress(policy, host, shown);
}

/** Refuses link-local and metadata addresses, checked again after DNS so names cannot smuggle them in. */
export function checkAddress(policy: NetworkPolicy, address: string, shown: string): void {
  if (policy.allowLinkLocal || !isLinkLocal(address)) return;
  throw new PermissionDeniedError(
    `${shown} resolves to ${address}, a link-local/metadata address the fetcher refuses; allow it explicitly with allowLinkLocal if intended`,
  );
}

export function isLinkLocal(address: string): boolean {
  let a = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/u.exec(a);
  if (mapped) a = mapped[1]!;
  if (isIP(a) === 4) return a.startsWith('169.254.');
  if (isIP(a) !== 6) return false;
  if (/^fe[89ab][0-9a-f]:/u.test(a)) return true;
  return expandIpv6(a) === expandIpv6('fd00:ec2::254');
}

function expandIpv6(a: string): string {
  const [head = '', tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const parts = a.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return parts.map((p) => p.padStart(4, '0')).join(':');
}

/** A URL fit for logs and errors: user and password removed. */
export function redactUrl(raw: string | URL): string {
  try {
    const url = new URL(raw.toString());
    if (url.username || url.password) {
      url.username = '';
      url.password = '';
      return url.toString().replace('://', '://***@');
    }
    return url.toString();
  } catch {
    // scp-like git remotes (git@host:repo) carry no secret but the user name; keep as is.
    return String(raw).replace(/\/\/[^/@]*@/u, '//***@');
  }
}
