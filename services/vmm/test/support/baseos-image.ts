/** Helpers for tests that use the cached Debian base image and write into ext4 images with debugfs. */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

export function commandMissing(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
}

/** Why the Debian base OS cannot be built here, or false when it can (it is built once and cached). */
export function baseOsUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (mmdebstrap --mode=root)';
  for (const cmd of ['mmdebstrap', 'mkfs.ext4', 'debugfs', 'lz4'])
    if (commandMissing(cmd)) return `needs ${cmd}`;
  return false;
}

/** Runs one debugfs request read-only and returns its output. */
export const debugfs = (image: string, request: string): string =>
  execFileSync('debugfs', ['-R', request, image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export interface InjectedFile {
  readonly path: string;
  readonly content: string | Buffer;
  readonly mode: number;
}

/** Writes files into an unmounted ext4 image (debugfs -w), creating parent directories with dirMode. */
export function injectFiles(
  image: string,
  files: InjectedFile[],
  scratch: string,
  dirs: { path: string; mode: number }[] = [],
): void {
  const lines: string[] = [];
  for (const d of dirs)
    lines.push(`mkdir ${d.path}`, `sif ${d.path} mode 0${(0o40000 | d.mode).toString(8)}`);
  files.forEach((f, i) => {
    const local = `${scratch}/inject-${i}`;
    writeFileSync(local, f.content);
    lines.push(
      `rm ${f.path}`,
      `write ${local} ${f.path}`,
      `sif ${f.path} mode 0${(0o100000 | f.mode).toString(8)}`,
    );
  });
  const script = `${scratch}/debugfs-cmds`;
  writeFileSync(script, lines.join('\n') + '\n');
  execFileSync('debugfs', ['-w', '-f', script, image], { stdio: 'pipe' });
}
