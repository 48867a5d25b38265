import { createServer, connect, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { FsBlobStore } from '../src/adapters/fs/fs-blob-store.ts';
import { GitContextLoader } from '../src/adapters/git/git-context.ts';
import { UndiciHttpSource } from '../src/adapters/http/undici-http-source.ts';
import { DEFAULT_LIMITS } from '../src/domain/build-context.ts';
import { DEFAULT_NETWORK_POLICY, type NetworkPolicy } from '../src/domain/network-policy.ts';
import type { HostResolver } from '../src/ports/host-resolver.ts';
import { capturingLogger, tempDir } from './support.ts';

/**
 * The address the pinning tests put their servers behind. The name they use,
 * localhost, is 127.0.0.1 in /etc/hosts: git resolving it by itself would miss
 * the server, so a fetch that works proves git went where the fetcher said.
 */
export const PINNED_ADDRESS = '127.0.0.2';

/** A resolver that answers the i-th lookup with answers[i] (the last answer repeats) and records the names asked. */
export function scriptedResolver(...answers: string[]): HostResolver & { asked: string[] } {
  const asked: string[] = [];
  const resolve = (host: string) => {
    const address = answers[Math.min(asked.length, answers.length - 1)]!;
    asked.push(host);
    return Promise.resolve([{ address, family: 4 as const }]);
  };
  return Object.assign(resolve, { asked });
}

/**
 * A git context loader as the fetcher wires it (no gRPC), with resolveHost for
 * git's pinning. The fetcher's own HTTP requests (finding where a repository is)
 * connect to their own checked answer: probeResolver, PINNED_ADDRESS by default.
 */
export async function pinnedGitLoader(
  t: TestContext,
  resolveHost: HostResolver,
  options: { sshCommand?: string; policy?: Partial<NetworkPolicy>; probeResolver?: HostResolver } = {},
): Promise<(url: string) => ReturnType<GitContextLoader['load']>> {
  const blobs = await FsBlobStore.open({ dir: await tempDir(t, 'kindling-fetcher-cache-'), limitBytes: 1024 ** 3 });
  const policy = { ...DEFAULT_NETWORK_POLICY, ...options.policy };
  const http = new UndiciHttpSource(
    policy,
    { maxRedirects: 5, headersTimeoutMs: 30_000, bodyTimeoutMs: 30_000 },
    options.probeResolver ?? scriptedResolver(PINNED_ADDRESS),
  );
  t.after(() => http.close());
  const loader = new GitContextLoader(
    blobs,
    policy,
    DEFAULT_LIMITS,
    capturingLogger().logger,
    http,
    options.sshCommand,
    resolveHost,
  );
  return (url) => loader.load({ kind: 'git', url, dockerfilePath: '' }, AbortSignal.timeout(60_000));
}

/** Relays TCP connections from PINNED_ADDRESS to 127.0.0.1:targetPort, counting them. */
export async function startPinnedRelay(
  t: TestContext,
  targetPort: number,
): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    connections++;
    const outbound = connect(targetPort, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, PINNED_ADDRESS, resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as { port: number }).port, connections: () => connections };
}
