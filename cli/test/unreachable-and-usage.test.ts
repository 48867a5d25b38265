/** `kindling vm` and `kindling build`: missing arguments are usage errors, an absent service is named with its address. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { describe, it, before } from 'node:test';
import { fileURLToPath } from 'node:url';

const cliMain = fileURLToPath(new URL('../src/main.ts', import.meta.url));

function kindling(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, KINDLING_PLANNER_ADDR: '', KINDLING_VMM_ADDR: '', KINDLING_FETCHER_ADDR: '' };
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', cliMain, ...args], { env }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

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
