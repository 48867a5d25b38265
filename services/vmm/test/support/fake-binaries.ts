/**
 * Writes executable `firecracker` and `jailer` stand-ins (shell wrappers around the fake *-main.ts
 * programs) into a directory, with the environment each fake should see baked in, because the
 * driver starts them with an empty environment, as the real jailer would clear it.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const tsxLoader = import.meta.resolve('tsx');
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

async function writeWrapper(
  path: string,
  program: string,
  env: Readonly<Record<string, string>>,
): Promise<string> {
  const vars = Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`);
  // `exec -a "$0"`: the process keeps the name it was started as in /proc/<pid>/cmdline, as a real
  // binary does (the driver recognises Firecracker by its exec file name there).
  const script = `#!/bin/bash\n${vars.join('')}exec -a "$0" ${shellQuote(process.execPath)} --import ${shellQuote(tsxLoader)} ${shellQuote(program)} "$@"\n`;
  await writeFile(path, script);
  await chmod(path, 0o755);
  return path;
}

export interface FakeBinaries {
  readonly firecracker: string;
  readonly jailer: string;
}

export async function writeFakeBinaries(
  dir: string,
  env: { firecracker?: Record<string, string>; jailer?: Record<string, string> } = {},
): Promise<FakeBinaries> {
  return {
    firecracker: await writeWrapper(
      join(dir, 'firecracker'),
      here('./fake-firecracker-main.ts'),
      env.firecracker ?? {},
    ),
    jailer: await writeWrapper(join(dir, 'jailer'), here('./fake-jailer-main.ts'), env.jailer ?? {}),
  };
}

/** The FAKE-REPORT line the fake firecracker prints to its console as it exits. */
export interface FakeReport {
  readonly requests: { method: string; path: string; body: unknown; status: number }[];
  readonly violations: string[];
  readonly vmConfig: Record<string, unknown>;
  readonly mmds: unknown;
}

export function parseFakeReport(consoleLog: string): FakeReport | undefined {
  const line = consoleLog.split('\n').find((l) => l.startsWith('FAKE-REPORT '));
  return line === undefined ? undefined : (JSON.parse(line.slice('FAKE-REPORT '.length)) as FakeReport);
}
