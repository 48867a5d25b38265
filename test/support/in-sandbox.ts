/**
 * Runs a TypeScript scenario inside a network namespace created for it (loopback up), so the CNI bridge
 * and every guest stay off the host's own network; returns the scenario's stdout (JSON by convention).
 */
import { spawn, spawnSync } from 'node:child_process';

export async function runInSandbox(scenario: string, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const netns = `kindling-test-sbx-${process.pid}`;
  const ip = (...a: string[]) => spawnSync('ip', a, { encoding: 'utf8' });
  if (ip('netns', 'add', netns).status !== 0) throw new Error(`cannot create netns ${netns}`);
  try {
    ip('-n', netns, 'link', 'set', 'lo', 'up');
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '--import', 'tsx', scenario, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, stdout, stderr };
  } finally {
    ip('netns', 'del', netns);
  }
}
