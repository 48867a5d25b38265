/** One address a host name resolved to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/**
 * Turns a host name into its addresses. The fetcher checks every answer against
 * its policy and then connects only to those addresses, so a name that resolves
 * differently a moment later (DNS rebinding) cannot reach a refused address.
 */
export type HostResolver = (host: string) => Promise<ResolvedAddress[]>;
