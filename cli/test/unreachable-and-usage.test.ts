/**
 * `kindling vm` and `kindling build`: missing arguments and non-numeric sizes are usage errors, an absent
 * service is named with its address, and image digests are shown legibly.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { describe, it, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { Image, VmmServiceService } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { kindling } from './support/cli-services.ts';

/** A loopback port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

describe('kindling vm and build on the command line', () => {
  let address: string;
  before(async () => {
    address = `127.0.0.1:${await closedPort()}`;
  });

  it('vm subcommands without their IMAGE or ID exit 2 naming what is missing, before calling the vmm', async () => {
    for (const [sub, needs] of [['run', 'IMAGE'], ['get', 'ID'], ['stop', 'ID'], ['rm', 'ID']] as const) {
      const { code, stderr } = await kindling(['vm', sub, '--vmm', address]);
      assert.equal(code, 2, sub);
      assert.match(stderr, new RegExp(`^kindling vm ${sub}: needs ${needs}\\nusage:`), sub);
    }
    const bare = await kindling(['vm']);
    assert.deepEqual([bare.code, bare.stdout, /^usage:/.test(bare.stderr)], [2, '', true]);
  });

  it('a missing command or subcommand is a usage error on stderr that says what is missing (exit 2)', async () => {
    const cases: [string[], RegExp][] = [
      [[], /^usage: kindling <command>/],
      [['baseos'], /^kindling baseos: needs a subcommand\nusage:/],
      [['baseos', 'frob'], /^kindling baseos: unknown subcommand "frob"\nusage:/],
      [['baseos', 'build'], /^kindling baseos: build needs a <recipe> \(kindling baseos list shows them\)\nusage:/],
      [['cni'], /^kindling cni: needs a subcommand\nusage:/],
      [['cni', 'frob'], /^kindling cni: unknown subcommand "frob"\nusage:/],
    ];
    for (const [args, expected] of cases) {
      const { code, stdout, stderr } = await kindling(args);
      assert.deepEqual([code, stdout], [2, ''], args.join(' '));
      assert.match(stderr, expected, args.join(' '));
    }
    const help = await kindling(['--help']);
    assert.deepEqual([help.code, help.stderr, /^usage: kindling <command>/.test(help.stdout)], [0, '', true]);
  });

  it('vCPUs, memory, disk and timeouts that are not whole numbers exit 2 naming the flag', async () => {
    for (const args of [
      ['vm', 'run', 'debian:12', '--cpus', 'two'],
      ['vm', 'stop', 'demo', '--timeout', '30s'],
      ['build', '-t', 'hello:dev', '--memory', '1G', '--planner', address, '.'],
    ]) {
      const { code, stderr } = await kindling(args);
      const flag = args.find((a) => /^--(cpus|timeout|memory)$/.test(a));
      assert.equal(code, 2, args.join(' '));
      assert.match(stderr, new RegExp(`: ${flag} "[^"]+": expected a whole number\\nusage:`), args.join(' '));
    }
  });

  it('vm images shows each digest as its algorithm and 12 hex digits', async (t) => {
    const server = new Server();
    const digest = 'blake3-blocks-4m:79016c91747c0123456789abcdef';
    const image = Image.fromPartial({ name: 'debian', tag: '12', aliases: ['debian:bookworm'], digest, sizeBytes: String(2048 * 1024 ** 2) });
    server.addService(VmmServiceService, { listImages: (_call: unknown, callback: (e: null, r: unknown) => void) => callback(null, { images: [image] }) });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    t.after(() => server.forceShutdown());
    const { code, stdout, stderr } = await kindling(['vm', 'images', '--vmm', `127.0.0.1:${port}`]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, 'debian:12 (also debian:bookworm)  2048 MiB  blake3-blocks-4m:79016c91747c  base OS\n');
  });

  it('an unreadable TLS file is named, not a crash with a stack trace', async () => {
    for (const args of [
      ['vm', 'images', '--vmm', address],
      ['build', '-t', 'hello:dev', '--planner', address, '.'],
      ['plan', '-f', fileURLToPath(new URL('../../examples/hello/Dockerfile', import.meta.url)), '--planner', address],
    ]) {
      const { code, stderr } = await kindling([...args, '--tls-ca', '/nonexistent/ca.pem']);
      assert.equal(code, 1, args.join(' '));
      assert.match(stderr, /^kindling \w+( images)?: .*cannot read the TLS CA bundle at \/nonexistent\/ca\.pem: ENOENT[^\n]*\n$/, args.join(' '));
    }
  });

  it('an unreachable vmm is named with its address and how to set it, without grpc-js internals', async () => {
    const { code, stderr } = await kindling(['vm', 'ls', '--vmm', address]);
    assert.equal(code, 1);
    assert.match(stderr, new RegExp(`^kindling vm ls: cannot reach the vmm at ${address} \\(connect ECONNREFUSED ${address}\\): is it running there\\? Give its address with --vmm or KINDLING_VMM_ADDR\\n$`));
  });

  it('an unreachable planner is named with its address and how to set it, without grpc-js internals', async () => {
    const { code, stderr } = await kindling(['build', '-t', 'hello:dev', '--planner', address, fileURLToPath(new URL('../../examples/hello', import.meta.url))]);
    assert.equal(code, 1);
    assert.match(stderr, new RegExp(`^kindling build: cannot reach the planner at ${address} \\(connect ECONNREFUSED ${address}\\): is it running there\\? Give its address with --planner or KINDLING_PLANNER_ADDR\\n$`));
    assert.doesNotMatch(stderr, /Resolution note/);
  });
});
