import { lookup } from 'node:dns/promises';
import type { HostResolver } from '../../ports/host-resolver.ts';

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), every address in its order. */
export const systemHostResolver: HostResolver = async (host) =>
  (await lookup(host, { all: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
