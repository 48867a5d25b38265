/**
 * How a command reaches the vmm or the planner: the address flag (with its environment variable and
 * default), the TLS flags, and one place that turns a failed call into `kindling <command>: <one line>`
 * and exit 1.
 */
import type { ChannelCredentials, Client, ClientOptions } from '@grpc/grpc-js';
import { BuildServiceClient } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { VmmServiceClient } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createServiceClient } from '@kindling/runtime';
import { describeCallFailure } from './call-failure.ts';
import { tlsFilesOf, tlsOptions } from './command-line.ts';

interface ServiceEnd<C extends Client> {
  readonly name: string;
  readonly flag: string;
  readonly setting: string;
  readonly Client: new (address: string, credentials: ChannelCredentials, options?: Partial<ClientOptions>) => C;
}

export const VMM: ServiceEnd<VmmServiceClient> = { name: 'vmm', flag: 'vmm', setting: '--vmm or KINDLING_VMM_ADDR', Client: VmmServiceClient };
export const PLANNER: ServiceEnd<BuildServiceClient> = {
  name: 'planner',
  flag: 'planner',
  setting: '--planner or KINDLING_PLANNER_ADDR',
  Client: BuildServiceClient,
};

/** --vmm and the TLS flags, for parseCommandLine. */
export const vmmOptions = {
  vmm: { type: 'string', default: process.env.KINDLING_VMM_ADDR || '127.0.0.1:50053' },
  ...tlsOptions,
} as const;

/** --planner and the TLS flags, for parseCommandLine. */
export const plannerOptions = {
  planner: { type: 'string', default: process.env.KINDLING_PLANNER_ADDR || '127.0.0.1:50051' },
  ...tlsOptions,
} as const;

/** The usage lines of those flags. */
export const vmmUsage = `      --vmm HOST:PORT      vmm address (default $KINDLING_VMM_ADDR or 127.0.0.1:50053)
      --tls-ca/--tls-cert/--tls-key PATH   TLS to the vmm
`;
export const plannerUsage = `      --planner HOST:PORT  planner address (default $KINDLING_PLANNER_ADDR or 127.0.0.1:50051)
      --tls-ca/--tls-cert/--tls-key PATH   TLS to the planner
`;

type ConnectionValues = { 'tls-ca'?: string; 'tls-cert'?: string; 'tls-key'?: string } & Record<string, unknown>;

/**
 * Opens a client of end at the address its flag holds, runs use, closes the client. A failure (a gRPC
 * status, or an Error thrown by use) is printed as one line and the command exits 1.
 */
export async function withService<C extends Client>(
  command: string,
  end: ServiceEnd<C>,
  values: ConnectionValues,
  use: (client: C) => Promise<number>,
): Promise<number> {
  const address = String(values[end.flag]);
  let client: C | undefined;
  try {
    client = createServiceClient(end.Client, address, tlsFilesOf(values));
    return await use(client);
  } catch (error) {
    process.stderr.write(`kindling ${command}: ${describeCallFailure(end.name, address, end.setting, error)}\n`);
    return 1;
  } finally {
    client?.close();
  }
}

/** A usage error: the message, then the usage, on stderr; exit 2. */
export function usageError(command: string, message: string, usage: string): number {
  process.stderr.write(`kindling ${command}: ${message}\n${usage}`);
  return 2;
}
