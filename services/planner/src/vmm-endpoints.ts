/**
 * The planner's VM hosts: --vmm-addresses, a comma-separated list of `name=host:port` or `host:port`
 * (the name, used in build records, defaults to the address); without it, --vmm-address named
 * --vmm-host-name as the only one.
 */
import type { Setting } from '@kindling/runtime';

export interface VmmEndpoint {
  /** The host's name in build records and cache entries. */
  readonly name: string;
  /** host:port of its vmm. */
  readonly address: string;
}

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const addressPattern = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})$/;

/** Parses one entry; throws an Error saying what is wrong with it. */
export function parseVmmEndpoint(entry: string): VmmEndpoint {
  const at = entry.indexOf('=');
  const name = at === -1 ? entry : entry.slice(0, at).trim();
  const address = at === -1 ? entry : entry.slice(at + 1).trim();
  const port = addressPattern.exec(address)?.[1];
  if (port === undefined || Number(port) < 1 || Number(port) > 65535) {
    throw new Error(`"${entry}": expected host:port or name=host:port (port 1 to 65535)`);
  }
  if (at !== -1 && !namePattern.test(name)) throw new Error(`"${entry}": a host name is letters, digits, ".", "_" and "-"`);
  return { name, address };
}

/** A setting holding a list of VM hosts; empty means none given. Names must be unique. */
export function vmmEndpointList(description: string): Setting<VmmEndpoint[]> {
  return {
    description,
    default: [],
    parse(raw) {
      const endpoints = raw
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '')
        .map(parseVmmEndpoint);
      const seen = new Set<string>();
      for (const { name } of endpoints) {
        if (seen.has(name)) throw new Error(`the host name "${name}" is given twice`);
        seen.add(name);
      }
      return endpoints;
    },
    show: (endpoints) => endpoints.map((e) => (e.name === e.address ? e.address : `${e.name}=${e.address}`)).join(','),
  };
}

/** The hosts builds are placed on: --vmm-addresses when given, else --vmm-address as one entry. */
export function vmmEndpointsOf(config: { vmmAddresses: readonly VmmEndpoint[]; vmmAddress: string; vmmHostName: string }): VmmEndpoint[] {
  if (config.vmmAddresses.length > 0) return [...config.vmmAddresses];
  return [{ name: config.vmmHostName, address: config.vmmAddress }];
}
