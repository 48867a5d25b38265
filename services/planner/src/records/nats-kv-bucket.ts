/** A RecordBucket as a JetStream KV bucket (one revision kept per key), values as JSON. */
import { connect, type KV, type NatsConnection } from 'nats';
import { FailedPreconditionError, UnavailableError, withoutCredentials } from '@kindling/runtime';
import { escapeKey } from './key-escaping.ts';
import type { RecordBucket } from './ports.ts';

export const BUILDS_BUCKET = 'kindling_builds';
export const CACHE_BUCKET = 'kindling_cache';

/** KV keys allow [-/_=.A-Za-z0-9] (no leading dot): "sha256:ab" is stored as "sha256=3Aab". */
export function kvKeyOf(key: string): string {
  return escapeKey(key, '=');
}

export class NatsKvBucket implements RecordBucket {
  constructor(private readonly kv: KV) {}

  async get(key: string): Promise<unknown> {
    const entry = await this.kv.get(kvKeyOf(key));
    return entry && entry.operation === 'PUT' ? entry.json<unknown>() : undefined;
  }

  async put(key: string, value: unknown): Promise<void> {
    await this.kv.put(kvKeyOf(key), JSON.stringify(value));
  }

  async delete(key: string): Promise<void> {
    await this.kv.delete(kvKeyOf(key));
  }

  async values(): Promise<unknown[]> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys()) keys.push(key);
    const entries = await Promise.all(keys.map((key) => this.kv.get(key)));
    return entries.filter((entry) => entry?.operation === 'PUT').map((entry) => entry!.json<unknown>());
  }
}

export interface NatsRecordBuckets {
  readonly builds: RecordBucket;
  readonly cache: RecordBucket;
  close(): Promise<void>;
}

/**
 * Connects to NATS (its own connection: the event bus's is the runtime's) and opens, creating them if
 * missing, the builds and cache buckets. Fails with UnavailableError when NATS cannot be reached, and
 * FailedPreconditionError when it has no JetStream (so no KV).
 */
export async function openNatsRecordBuckets(servers: string): Promise<NatsRecordBuckets> {
  const url = withoutCredentials(servers);
  let connection: NatsConnection;
  try {
    connection = await connect({ servers: servers.split(',').map((server) => server.trim()), name: 'kindling-planner-records', maxReconnectAttempts: -1 });
  } catch (error) {
    throw new UnavailableError(`cannot connect to NATS at ${url}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const views = connection.jetstream().views;
    const builds = new NatsKvBucket(await views.kv(BUILDS_BUCKET, { history: 1 }));
    const cache = new NatsKvBucket(await views.kv(CACHE_BUCKET, { history: 1 }));
    // every put is acknowledged before it returns: nothing is in flight to drain
    return { builds, cache, close: () => connection.close() };
  } catch (error) {
    await connection.close();
    throw new FailedPreconditionError(`cannot open the JetStream KV buckets ${BUILDS_BUCKET} and ${CACHE_BUCKET} at ${url}: ${(error as Error).message}`, { cause: error });
  }
}
