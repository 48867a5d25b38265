// Builds the fetcher's view of context files (FileEntry-like) for PutFiles tests.
import { createHash } from 'node:crypto';
import type { ContextFile } from '../../src/domain/copy-plan.ts';

export function digestOf(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function fileEntry(path: string, data: Buffer, mode = 0o644, matchRoot = path): ContextFile {
  return { path, type: 'file', size: data.length, mode, digest: digestOf(data), linkTarget: '', matchRoot };
}

export function directoryEntry(path: string, mode = 0o755, matchRoot = path): ContextFile {
  return { path, type: 'directory', size: 0, mode, digest: '', linkTarget: '', matchRoot };
}

export function symlinkEntry(path: string, linkTarget: string, matchRoot = path): ContextFile {
  return { path, type: 'symlink', size: 0, mode: 0o777, digest: '', linkTarget, matchRoot };
}
