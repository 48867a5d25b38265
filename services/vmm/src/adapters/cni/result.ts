/**
 * CNI results in one shape, whatever the spec version the plugins spoke: 1.x (`ips` without
 * `version`), 0.3.x/0.4.0 (`ips[].version`), and the legacy 0.1/0.2 `ip4`/`ip6` form.
 */
export interface CniInterface {
  readonly name: string;
  readonly mac?: string;
  readonly mtu?: number;
  readonly sandbox?: string;
}

export interface CniIpConfig {
  /** CIDR, e.g. 10.200.0.5/24. */
  readonly address: string;
  readonly gateway?: string;
  /** Index into interfaces. */
  readonly interface?: number;
}

export interface CniRoute {
  readonly dst: string;
  readonly gw?: string;
}

export interface CniResult {
  readonly cniVersion: string;
  readonly interfaces: CniInterface[];
  readonly ips: CniIpConfig[];
  readonly routes: CniRoute[];
  readonly dns: { readonly nameservers?: string[]; readonly domain?: string; readonly search?: string[] };
}

export const SUPPORTED_CNI_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

export class CniResultError extends Error {
  override name = 'CniResultError';
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function parseIps(raw: unknown): CniIpConfig[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new CniResultError('"ips" is not a list');
  return raw.map((ip, i) => {
    if (!isObject(ip) || !str(ip.address)) throw new CniResultError(`ips[${i}] has no "address"`);
    return {
      address: ip.address as string,
      ...(str(ip.gateway) ? { gateway: ip.gateway as string } : {}),
      ...(typeof ip.interface === 'number' ? { interface: ip.interface } : {}),
    };
  });
}

function parseInterfaces(raw: unknown): CniInterface[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new CniResultError('"interfaces" is not a list');
  return raw.map((it, i) => {
    if (!isObject(it) || !str(it.name)) throw new CniResultError(`interfaces[${i}] has no "name"`);
    return {
      name: it.name as string,
      ...(str(it.mac) ? { mac: it.mac as string } : {}),
      ...(typeof it.mtu === 'number' ? { mtu: it.mtu } : {}),
      ...(str(it.sandbox) ? { sandbox: it.sandbox as string } : {}),
    };
  });
}

function parseRoutes(raw: unknown): CniRoute[] {
  if (!Array.isArray(raw)) return [];
  return raw
    .filter(isObject)
    .map((r) => ({ dst: String(r.dst), ...(str(r.gw) ? { gw: r.gw as string } : {}) }));
}

function parseDns(raw: unknown): CniResult['dns'] {
  if (!isObject(raw)) return {};
  const list = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.map(String) : undefined);
  const nameservers = list(raw.nameservers);
  const search = list(raw.search);
  return {
    ...(nameservers ? { nameservers } : {}),
    ...(str(raw.domain) ? { domain: raw.domain as string } : {}),
    ...(search ? { search } : {}),
  };
}

/** Parses a plugin's ADD output (or a cached one) of any supported version. */
export function parseCniResult(raw: unknown): CniResult {
  if (!isObject(raw)) throw new CniResultError('result is not a JSON object');
  const cniVersion = str(raw.cniVersion) ?? '0.1.0';
  if (!SUPPORTED_CNI_VERSIONS.includes(cniVersion))
    throw new CniResultError(
      `result has cniVersion ${cniVersion}; supported: ${SUPPORTED_CNI_VERSIONS.join(', ')}`,
    );
  if (cniVersion === '0.1.0' || cniVersion === '0.2.0') {
    const ips: CniIpConfig[] = [];
    const routes: CniRoute[] = [];
    for (const key of ['ip4', 'ip6'] as const) {
      const block = raw[key];
      if (!isObject(block)) continue;
      if (!str(block.ip)) throw new CniResultError(`${key} has no "ip"`);
      ips.push({
        address: block.ip as string,
        ...(str(block.gateway) ? { gateway: block.gateway as string } : {}),
      });
      routes.push(...parseRoutes(block.routes));
    }
    return { cniVersion, interfaces: [], ips, routes, dns: parseDns(raw.dns) };
  }
  // 0.3.x/0.4.0 carry ips[].version ("4"/"6"); 1.x dropped it. Either way the address says which family.
  return {
    cniVersion,
    interfaces: parseInterfaces(raw.interfaces),
    ips: parseIps(raw.ips),
    routes: parseRoutes(raw.routes),
    dns: parseDns(raw.dns),
  };
}
