/**
 * A RecordBucket as one JSON file per key in a directory. Writes go to a temp file that is renamed
 * over the record, so a crash leaves the old record or the new one, never half of one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError, InternalError } from '@kindling/runtime';
import { escapeKey } from './key-escaping.ts';
import type { RecordBucket } from './ports.ts';

const SUFFIX = '.json';
/** Temp files start with a dot, which an encoded key never does. */
const TEMP_PREFIX = '.';

/** One safe file name per key (no "..", no "/"). */
export function fileNameOf(key: string): string {
  return `${escapeKey(key, '%')}${SUFFIX}`;
}

export class FileBucket implements RecordBucket {
  private constructor(readonly dir: string) {}

  /** Creates the directory if needed and removes temp files a crash mid-write left. */
  static async open(dir: string): Promise<FileBucket> {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      for (const name of await readdir(dir)) if (name.startsWith(TEMP_PREFIX)) await rm(join(dir, name), { force: true });
    } catch (error) {
      throw new FailedPreconditionError(`cannot use ${dir} for planner records: ${(error as Error).message}`, { cause: error });
    }
    return new FileBucket(dir);
  }

  async get(key: string): Promise<unknown> {
    return this.read(join(this.dir, fileNameOf(key)));
  }

  async put(key: string, value: unknown): Promise<void> {
    const name = fileNameOf(key);
    const temp = join(this.dir, `${TEMP_PREFIX}${name}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const file = await open(temp, 'wx', 0o600);
      try {
        await file.writeFile(`${JSON.stringify(value)}\n`);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, join(this.dir, name));
    } catch (error) {
      await rm(temp, { force: true });
      throw new InternalError(`cannot write the record ${join(this.dir, name)}: ${(error as Error).message}`, { cause: error });
    }
  }

  async delete(key: string): Promise<void> {
    await rm(join(this.dir, fileNameOf(key)), { force: true });
  }

  async values(): Promise<unknown[]> {
    const names = (await readdir(this.dir)).filter((name) => name.endsWith(SUFFIX) && !name.startsWith(TEMP_PREFIX));
    const values = await Promise.all(names.map((name) => this.read(join(this.dir, name))));
    return values.filter((value) => value !== undefined);
  }

  /** A record deleted meanwhile reads as absent; one that is not JSON is an error naming the file. */
  private async read(path: string): Promise<unknown> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new InternalError(`cannot read the record ${path}: ${(error as Error).message}`, { cause: error });
    }
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new InternalError(`the record ${path} is not JSON: ${(error as Error).message}`, { cause: error });
    }
  }
}
