// Runs a kindling service's main.ts as its own process (as deployed), on a free loopback port.
import { spawn } from 'node:child_process';
import { freePort, stopChild, waitForPort } from '@kindling/runtime/testing';

export interface ServiceProcess {
  pid: number;
  port: number;
  address: string;
  stop(): Promise<void>;
}

export async function startServiceProcess(mainPath: string, args: string[], timeoutMs = 60_000, nodeArgs: string[] = []): Promise<ServiceProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', mainPath, `--port=${port}`, '--log-level=error', ...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const stop = (): Promise<void> => stopChild(child, 5000);
  try {
    await waitForPort(port, { child, timeoutMs, what: mainPath });
  } catch (error) {
    await stop();
    throw error;
  }
  return { pid: child.pid ?? 0, port, address: `127.0.0.1:${port}`, stop };
}
