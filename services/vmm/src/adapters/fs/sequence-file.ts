import { readFile } from 'node:fs/promises';
import type { SequenceStore } from '../../domain/vm-event-hub.ts';
import { writeFileAtomic } from './atomic-file.ts';

/** The host's VM event sequence in one small file, so numbers keep increasing across restarts. */
export class SequenceFile implements SequenceStore {
  constructor(private readonly path: string) {}

  async load(): Promise<number> {
    const text = await readFile(this.path, 'utf8').catch(() => '0');
    return Number.parseInt(text, 10) || 0;
  }

  save(sequence: number): Promise<void> {
    return writeFileAtomic(this.path, `${sequence}\n`);
  }
}
