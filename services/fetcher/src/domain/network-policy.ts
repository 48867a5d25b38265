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
  const r = rule.toLowerCase().replace(/\.$/u, '');
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
  // "example.com." is the same host as "example.com" (a fully qualified name): compare them as one.
  const host = bareHost(hostname).toLowerCase().replace(/\.$/u, '');
  if (policy.denyHosts.some((r) => hostMatches(r, host))) {
    throw new PermissionDeniedError(`host ${host} of ${shown} is on the fetcher's deny list`);
  }
  if (policy.allowHosts.length > 0 && !policy.allowHosts.some((r) => hostMatches(r, host))) {
    throw new PermissionDeniedError(`host ${host} of ${shown} is not on the fetcher's allow list`);
  }
  checkAddress(policy, host, shown, 'names');
}

/**
 * Refuses link-local and metadata addresses: a literal one in a URL ("names"), and again after DNS
 * ("resolves to"), so names cannot smuggle them in. Anything that is not an IP address passes.
 */
export function checkAddress(
  policy: NetworkPolicy,
  address: string,
  shown: string,
  how: 'names' | 'resolves to' = 'resolves to',
): void {
  if (policy.allowLinkLocal || !isLinkLocal(address)) return;
  throw new PermissionDeniedError(
    `${shown} ${how} ${address}, a link-local/metadata address the fetcher refuses; start the fetcher with --allow-link-local if this is intended`,
  );
}

/**
 * 169.254.0.0/16, fe80::/10 and fd00:ec2::254, also when an IPv6 address
 * carries the IPv4 one (::ffff:169.254.x.x, which URLs spell ::ffff:a9fe:…,
 * reaches the IPv4 address on a dual-stack socket; likewise ::a.b.c.d and
 * NAT64's 64:ff9b::/96).
 */
export function isLinkLocal(address: string): boolean {
  const a = address.toLowerCase().replace(/%.*$/u, '');
  if (isIP(a) === 4) return a.startsWith('169.254.');
  if (isIP(a) !== 6) return false;
  const groups = ipv6Groups(a);
  if ((groups[0]! & 0xffc0) === 0xfe80) return true;
  if (groups.join(':') === METADATA_V6) return true;
  return IPV4_CARRYING_PREFIXES.has(groups.slice(0, 6).join(':')) && groups[6] === 0xa9fe;
}

/** The eight 16-bit groups of an IPv6 address (WHATWG URL parsing turns a dotted IPv4 tail into two groups). */
function ipv6Groups(address: string): number[] {
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const [head = '', tail = ''] = canonical.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const parts = canonical.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return parts.map((p) => parseInt(p, 16));
}

const METADATA_V6 = ipv6Groups('fd00:ec2::254').join(':');
// IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96) and NAT64 (64:ff9b::/96).
const IPV4_CARRYING_PREFIXES = new Set(['0:0:0:0:0:65535', '0:0:0:0:0:0', '100:65435:0:0:0:0']);

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
