/**
 * Where the planner keeps its records: JetStream KV buckets when NATS is configured, else one JSON
 * file per record under the state dir (<state-dir>/builds, <state-dir>/cache-last-use).
 */
import { join } from 'node:path';
import { FailedPreconditionError, withoutCredentials, type Logger } from '@kindling/runtime';
import type { LastUseRecords } from '../execution/step-cache.ts';
import { BucketBuildRecords, BucketLastUse } from './build-records.ts';
import { FileBucket } from './file-bucket.ts';
import { BUILDS_BUCKET, CACHE_BUCKET, openNatsRecordBuckets } from './nats-kv-bucket.ts';
import type { BuildRecordStore } from './ports.ts';

export interface PlannerRecords {
  readonly builds: BuildRecordStore;
  readonly lastUse: LastUseRecords;
  close(): Promise<void>;
}

export async function openPlannerRecords(settings: { natsUrl: string | undefined; stateDir: string }, log: Logger): Promise<PlannerRecords> {
  if (settings.natsUrl !== undefined) {
    try {
      const buckets = await openNatsRecordBuckets(settings.natsUrl);
      log.info({ url: withoutCredentials(settings.natsUrl), buckets: [BUILDS_BUCKET, CACHE_BUCKET] }, 'planner records in JetStream KV');
      return { builds: new BucketBuildRecords(buckets.builds), lastUse: new BucketLastUse(buckets.cache), close: buckets.close };
    } catch (error) {
      // the event bus makes the same choice: without JetStream it runs live-only rather than not at all
      if (!(error instanceof FailedPreconditionError)) throw error;
      log.warn({ err: error, stateDir: settings.stateDir }, 'NATS has no JetStream: planner records are kept in the state dir instead');
    }
  }
  const [builds, lastUse] = await Promise.all([FileBucket.open(join(settings.stateDir, 'builds')), FileBucket.open(join(settings.stateDir, 'cache-last-use'))]).catch(
    (error: Error) => {
      throw new FailedPreconditionError(`setting --state-dir (KINDLING_PLANNER_STATE_DIR): ${error.message}`, { cause: error });
    },
  );
  log.info({ stateDir: settings.stateDir }, 'planner records in the state dir');
  return { builds: new BucketBuildRecords(builds), lastUse: new BucketLastUse(lastUse), close: async () => {} };
}
