/**
 * Every example under examples/ plans cleanly, and its build context holds every file its COPY/ADD
 * steps name, as a real fetcher resolves it: examples/url-build over HTTP from a loopback server,
 * the others as local directories. No VM is booted; `kindling quickstart --example DIR` builds one.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { FetcherServiceClient, type ListFilesResponse, type ResolveContextRequest, type ResolveContextResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { loadFetcherConfig, startFetcherService } from '@kindling/fetcher';
import { planDockerfile } from '@kindling/planner';
import { createLogger, type RunningGrpcService } from '@kindling/runtime';
import { defaultCacheDir } from '@kindling/vmm/baseos';
import { buildSourceFor } from '../cli/src/commands/build.ts';

const examplesDir = fileURLToPath(new URL('../examples/', import.meta.url));
const examples = readdirSync(examplesDir).filter((name) => existsSync(join(examplesDir, name, 'Dockerfile'))).sort();
// The names the Debian base OS recipe gives its image (baseos/debian/bookworm/recipe.json).
const baseNames = (JSON.parse(readFileSync(new URL('../baseos/debian/bookworm/recipe.json', import.meta.url), 'utf8')) as { names: string[] }).names;
const catalog = baseNames.map((reference) => {
  const [name = '', tag = ''] = reference.split(':');
  return { name, tag, kind: 'base-os' as const, digest: 'sha256:' + '0'.repeat(64) };
});

function planExample(name: string, text = readFileSync(join(examplesDir, name, 'Dockerfile'), 'utf8')) {
  const outcome = planDockerfile(text, { images: catalog });
  const problems = outcome.diagnostics.map((d) => `${name}/Dockerfile:${d.line}: ${d.severity}: ${d.message}`);
  if (!outcome.ok) assert.fail(`examples/${name} does not plan:\n${problems.join('\n')}`);
  assert.deepEqual(problems, [], `examples/${name} plans with diagnostics`);
  return outcome.plan;
}

/** Serves one directory's files (and nothing else) on 127.0.0.1, as a static web server would. */
async function serveDirectory(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
    if (name === '' || name.includes('/') || name.startsWith('.') || !existsSync(join(root, name))) return void res.writeHead(404).end();
    res.end(readFileSync(join(root, name)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return { server, url: `http://127.0.0.1:${address.port}` };
}

describe('examples', () => {
  let fetcher: RunningGrpcService;
  let client: FetcherServiceClient;
  let cacheDir: string;
  let http: { server: Server; url: string };

  before(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'kindling-examples-'));
    fetcher = await startFetcherService(loadFetcherConfig(['--port=0', '--host=127.0.0.1', `--cache-dir=${cacheDir}`], {}), { logger: createLogger('fetcher', 'silent') });
    client = new FetcherServiceClient(fetcher.address, credentials.createInsecure());
    http = await serveDirectory(join(examplesDir, 'url-build'));
  });

  after(async () => {
    client.close();
    await fetcher.shutdown(100);
    await new Promise((resolve) => http.server.close(resolve));
    await rm(cacheDir, { recursive: true, force: true });
  });

  const resolveContext = (request: Partial<ResolveContextRequest>): Promise<ResolveContextResponse> =>
    new Promise((resolve, reject) => client.resolveContext({ dockerfilePath: '', ...request } as ResolveContextRequest, (e, r) => (e ? reject(e) : resolve(r))));
  const listFiles = (contextId: string, patterns: string[]): Promise<ListFilesResponse> =>
    new Promise((resolve, reject) => client.listFiles({ contextId, patterns, excludes: [], parents: false }, (e, r) => (e ? reject(e) : resolve(r))));

  /** Each COPY/ADD source pattern of the plan matches at least one file in the resolved context. */
  async function assertContextHolds(name: string, contextId: string, patterns: string[]): Promise<void> {
    const listed = await listFiles(contextId, patterns);
    for (const pattern of patterns) {
      const match = listed.sources.find((s) => s.pattern === pattern);
      assert.ok(match && match.files.length > 0, `examples/${name}: the context has nothing for ${pattern}`);
    }
  }

  it('are the four documented ones, each with a README that gives its build command', () => {
    assert.deepEqual(examples, ['hello', 'multistage-c', 'url-build', 'web']);
    for (const name of examples.filter((n) => n !== 'hello')) {
      const readme = readFileSync(join(examplesDir, name, 'README.md'), 'utf8');
      assert.match(readme, /kindling build -t \S+ /, `examples/${name}/README.md shows a kindling build command`);
      if (name !== 'url-build') assert.ok(readme.includes(`examples/${name}`), `examples/${name}/README.md builds examples/${name}`);
    }
  });

  for (const name of ['hello', 'multistage-c', 'web']) {
    it(`${name}: plans cleanly and its local context holds every COPY/ADD source`, async () => {
      const plan = planExample(name);
      const context = await resolveContext({ source: { $case: 'local', value: { path: join(examplesDir, name) } } });
      assert.equal(context.dockerfile, readFileSync(join(examplesDir, name, 'Dockerfile'), 'utf8'));
      await assertContextHolds(name, context.contextId, plan.contextSources);
    });
  }

  it('multistage-c: three stages, and the image takes only the binary from builder', () => {
    const plan = planExample('multistage-c');
    assert.deepEqual(plan.stages.map((s) => s.name), ['source', 'builder', '']);
    const final = plan.stages.at(-1)!;
    const copies = final.steps.filter((s) => s.expanded.startsWith('COPY'));
    // The plan names stages by index: stage 1 is builder.
    assert.deepEqual(copies.map((s) => s.expanded), ['COPY --from=stage:1 ["/out/hello-c"] /usr/local/bin/hello-c']);
    assert.deepEqual(final.dependsOn, [1]);
    assert.deepEqual(plan.image.entrypoint, ['/usr/local/bin/hello-c']);
    assert.equal(plan.image.user, 'nobody');
  });

  it('web: exposes 8080 and serves through systemd-socket-activate', () => {
    const plan = planExample('web');
    assert.deepEqual(plan.image.exposedPorts, ['8080/tcp']);
    assert.equal(plan.image.entrypoint[0], '/usr/bin/systemd-socket-activate');
    assert.deepEqual(plan.image.cmd, ['/srv/web/public']);
    assert.equal(plan.image.user, 'web');
  });

  it('web: the entrypoint binary is in the Debian base OS (when one is built in the cache)', async (t) => {
    const baseos = join(defaultCacheDir(), 'baseos');
    const rootfs = existsSync(baseos) ? readdirSync(baseos).map((d) => join(baseos, d, 'rootfs.ext4')).find((f) => existsSync(f)) : undefined;
    if (!rootfs) return t.skip(`no base-OS build under ${baseos}`);
    for (const path of ['/usr/bin/systemd-socket-activate', '/bin/sh']) {
      const stat = spawnSync('debugfs', ['-R', `stat ${path}`, rootfs], { encoding: 'utf8' });
      assert.match(stat.stdout, /^Inode: \d+/m, `${path} is not in ${rootfs}: ${stat.stderr}`);
    }
  });

  it('url-build: `kindling build URL` asks for an HTTP context; the fetcher reads the Dockerfile and each ADD from beside it', async () => {
    const dockerfileUrl = `${http.url}/Dockerfile`;
    assert.deepEqual(buildSourceFor(dockerfileUrl, ''), { source: { $case: 'dockerfileUrl', value: dockerfileUrl }, dockerfilePath: '' });
    const context = await resolveContext({ source: { $case: 'http', value: { dockerfileUrl } } });
    const local = await readFile(join(examplesDir, 'url-build', 'Dockerfile'), 'utf8');
    assert.equal(context.dockerfile, local);
    const plan = planExample('url-build', context.dockerfile);
    assert.deepEqual(plan.contextSources.sort(), ['docker-entrypoint.sh', 'greeter-agent.sh']);
    await assertContextHolds('url-build', context.contextId, plan.contextSources);
    assert.deepEqual(plan.image.entrypoint, ['docker-entrypoint.sh']);
    assert.deepEqual(plan.image.cmd, ['agent', '-dev']);
  });
});
