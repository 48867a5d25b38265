/**
 * Test support: a real nats-server (Debian package) with JetStream, on a free loopback port, with its
 * store in a temp dir that is removed on stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stopChild, waitForPort } from './child-process.ts';

export interface TestNatsServer {
  readonly url: string;
  /** Stops the server (SIGTERM), waits downMs, and starts it again on the same port and store. */
  restart(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startNatsServer(options: { jetstream?: boolean; binary?: string } = {}): Promise<TestNatsServer> {
  const port = await freePort();
  const storeDir = await mkdtemp(join(tmpdir(), 'kindling-nats-'));
  const args = ['-a', '127.0.0.1', '-p', String(port), '-m', '0'];
  if (options.jetstream ?? true) args.push('-js', '-sd', storeDir);
  const binary = options.binary ?? 'nats-server';
  const launch = async (): Promise<ChildProcess> => {
    const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      await waitForPort(port, { child, timeoutMs: 10_000, what: binary, output: () => stderr });
    } catch (error) {
      await stopChild(child);
      throw error;
    }
    return child;
  };
  let child: ChildProcess | undefined;
  try {
    child = await launch();
  } catch (error) {
    await rm(storeDir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    async restart(downMs: number) {
      if (child) await stopChild(child);
      child = undefined;
      await new Promise((resolve) => setTimeout(resolve, downMs));
      child = await launch();
    },
    async stop() {
      if (child) await stopChild(child);
      child = undefined;
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}
