/** The build record store and the step cache's last-use times, over any RecordBucket. */
import { Build } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import type { LastUseRecords } from '../execution/step-cache.ts';
import { InMemoryBucket } from './memory-bucket.ts';
import type { BuildRecordStore, RecordBucket } from './ports.ts';

/** Builds as their proto JSON, one record per build id. */
export class BucketBuildRecords implements BuildRecordStore {
  constructor(private readonly bucket: RecordBucket = new InMemoryBucket()) {}

  async get(id: string): Promise<Build | undefined> {
    const value = await this.bucket.get(id);
    return value === undefined ? undefined : Build.fromJSON(value);
  }

  async put(build: Build): Promise<void> {
    await this.bucket.put(build.id, Build.toJSON(build));
  }

  async list(): Promise<Build[]> {
    return (await this.bucket.values()).map((value) => Build.fromJSON(value));
  }
}

interface LastUseRecord {
  key: string;
  lastUsed: string;
}

/** When each step-cache entry was last used, as { key, lastUsed: ISO time } by cache key. */
export class BucketLastUse implements LastUseRecords {
  constructor(private readonly bucket: RecordBucket) {}

  async get(key: string): Promise<Date | undefined> {
    const value = (await this.bucket.get(key)) as LastUseRecord | undefined;
    return value === undefined ? undefined : new Date(value.lastUsed);
  }

  async put(key: string, when: Date): Promise<void> {
    const record: LastUseRecord = { key, lastUsed: when.toISOString() };
    await this.bucket.put(key, record);
  }

  async delete(key: string): Promise<void> {
    await this.bucket.delete(key);
  }
}
