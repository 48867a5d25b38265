/**
 * Test support for helpers that run a server as a child process on a loopback port: pick a free
 * port, wait until the child listens on it (failing as soon as the child dies), stop it.
 */
import type { ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const HOST = '127.0.0.1';
const POLL_MS = 50;

/** A port free on 127.0.0.1 right now (the OS picks it; another process may take it before you bind). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface WaitForPortOptions {
  /** The process expected to listen: its exit (or failure to start) ends the wait with an error at once. */
  child?: ChildProcess;
  /** Default 10 s. */
  timeoutMs?: number;
  /** Names the server in errors, e.g. 'nats-server'. */
  what?: string;
  /** What the child printed so far, appended to the error when it exits. */
  output?: () => string;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, options: WaitForPortOptions = {}): Promise<void> {
  const { child, timeoutMs = 10_000, what = 'the server', output } = options;
  const address = `${HOST}:${port}`;
  const deadline = Date.now() + timeoutMs;
  let startError: Error | undefined;
  const onError = (error: Error): void => void (startError = error);
  child?.on('error', onError);
  try {
    for (;;) {
      const open = await acceptsConnections(port);
      const ended = child && howChildEnded(child, startError);
      if (ended) {
        const printed = output?.().trim();
        throw new Error(`${what} ${ended} before listening on ${address}${printed ? `: ${printed}` : ''}`);
      }
      if (open) return;
      if (Date.now() > deadline) throw new Error(`${what} did not listen on ${address} within ${timeoutMs} ms`);
      await sleep(POLL_MS);
    }
  } finally {
    child?.off('error', onError);
  }
}

/** SIGTERM, then SIGKILL if the child is still running after graceMs; resolves once it has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  // no pid: it never started, and no 'exit' will come
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, HOST);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function howChildEnded(child: ChildProcess, startError: Error | undefined): string | undefined {
  if (startError) return `could not start (${startError.message})`;
  if (child.exitCode !== null) return `exited with code ${child.exitCode}`;
  if (child.signalCode !== null) return `was killed by ${child.signalCode}`;
  return undefined;
}
