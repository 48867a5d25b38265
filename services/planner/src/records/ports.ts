/**
 * Ports of the planner's own state: build records and the step cache's last-use times. Both are small
 * JSON records by key in a bucket: a JetStream KV bucket when NATS is configured, files under the
 * state dir otherwise (or in memory, for tests and the plan-only planner).
 */
import type { Build } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';

/** JSON values by key. Keys are any string; each adapter encodes them as its storage allows. */
export interface RecordBucket {
  get(key: string): Promise<unknown>;
  put(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every record, in no particular order. */
  values(): Promise<unknown[]>;
}

/** kindling.planner.v1.Build records by build id (secrets already removed from their requests). */
export interface BuildRecordStore {
  get(id: string): Promise<Build | undefined>;
  put(build: Build): Promise<void>;
  list(): Promise<Build[]>;
}
