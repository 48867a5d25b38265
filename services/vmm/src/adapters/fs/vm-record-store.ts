import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { VmRecord } from '../../domain/vm.ts';
import type { GuestFile } from '../../ports/disk.ts';
import type { VmRecordStore } from '../../ports/stores.ts';
import { readJsonIfExists, writeFileAtomic } from './atomic-file.ts';

/** VM records on the local filesystem: <root>/<id>/vm.json beside the VM's disk, sockets and log. */
export class FsVmRecordStore implements VmRecordStore {
  constructor(private readonly root: string) {}

  vmDir(id: string): string {
    return join(this.root, id);
  }

  async get(id: string): Promise<VmRecord | undefined> {
    return readJsonIfExists<VmRecord>(join(this.vmDir(id), 'vm.json'));
  }

  async list(): Promise<VmRecord[]> {
    const names = await readdir(this.root).catch(() => []);
    const records = await Promise.all(names.filter((n) => !n.startsWith('.')).map((n) => this.get(n)));
    return records
      .filter((r): r is VmRecord => r !== undefined)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async save(record: VmRecord): Promise<void> {
    await writeFileAtomic(
      join(this.vmDir(record.id), 'vm.json'),
      `${JSON.stringify(record, null, 2)}\n`,
      0o600,
    );
  }

  async saveIdentity(id: string, files: GuestFile[]): Promise<void> {
    const stored = files.map((f) => ({ ...f, content: Buffer.from(f.content).toString('base64') }));
    await writeFileAtomic(this.identityPath(id), `${JSON.stringify(stored)}\n`, 0o600);
  }

  async readIdentity(id: string): Promise<GuestFile[] | undefined> {
    const stored = await readJsonIfExists<(GuestFile & { content: string })[]>(this.identityPath(id));
    return stored?.map((f) => ({ ...f, content: Buffer.from(f.content, 'base64') }));
  }

  async dropIdentity(id: string): Promise<void> {
    await rm(this.identityPath(id), { force: true });
  }

  private identityPath(id: string): string {
    return join(this.vmDir(id), 'identity.json');
  }

  async remove(id: string): Promise<void> {
    await rm(this.vmDir(id), { recursive: true, force: true });
  }
}
