import type { RecordBucket } from './ports.ts';

/** Records for this process only: the plan-only planner and tests. Values are copied in and out. */
export class InMemoryBucket implements RecordBucket {
  private readonly records = new Map<string, string>();

  async get(key: string): Promise<unknown> {
    const text = this.records.get(key);
    return text === undefined ? undefined : JSON.parse(text);
  }
  async put(key: string, value: unknown): Promise<void> {
    this.records.set(key, JSON.stringify(value));
  }
  async delete(key: string): Promise<void> {
    this.records.delete(key);
  }
  async values(): Promise<unknown[]> {
    return [...this.records.values()].map((text) => JSON.parse(text) as unknown);
  }
}
