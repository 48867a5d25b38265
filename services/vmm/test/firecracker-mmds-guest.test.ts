/**
 * The guest side of the Firecracker driver's MMDS: the image's `mmds-get` against a metadata
 * service that keeps Firecracker's rules (src/vmm/src/mmds): V2 wants a PUT /latest/api/token
 * with an X-metadata-token-ttl-seconds of 1-21600 and the token on every GET (401 otherwise); V1
 * answers GET without a token and 405 to anything else; JSON only with Accept: application/json.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';

const mmdsGet = path.resolve(
  import.meta.dirname,
  '../../../baseos/debian/bookworm/overlay/usr/lib/kindling/mmds-get',
);

const doc = { vmId: 'vm-9', hostname: 'from-mmds', authorizedKeys: ['ssh-ed25519 AAAA x'] };

/** One MMDS answer by Firecracker's rules; `seen` records method, path and status. */
function answer(version: 'V1' | 'V2', tokens: Set<string>, req: IncomingMessage): [number, string] {
  if (version === 'V2' && req.method === 'PUT') {
    if (req.url !== '/latest/api/token') return [404, `Resource not found: ${req.url}.`];
    if (req.headers['x-forwarded-for'] !== undefined)
      return [400, 'Invalid header. Reason: Unsupported header name. Key: X-Forwarded-For'];
    const ttl = Number(req.headers['x-metadata-token-ttl-seconds']);
    if (req.headers['x-metadata-token-ttl-seconds'] === undefined)
      return [400, 'Token time to live value not found.'];
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21_600)
      return [400, `Invalid time to live value provided for token: ${ttl}.`];
    const token = `token-${tokens.size + 1}`;
    tokens.add(token);
    return [200, token];
  }
  if (req.method !== 'GET') return [405, 'Not allowed HTTP method.'];
  if (version === 'V2') {
    const token = req.headers['x-metadata-token'];
    if (token === undefined) return [401, 'No MMDS token provided.'];
    if (typeof token !== 'string' || !tokens.has(token)) return [401, 'MMDS token not valid.'];
  }
  if (req.url !== '/') return [404, `Resource not found: ${req.url}.`];
  // Without Accept: application/json MMDS answers in IMDS format: the object's keys, one a line.
  return req.headers.accept === 'application/json'
    ? [200, JSON.stringify(doc)]
    : [200, Object.keys(doc).join('\n')];
}

async function fakeMmds(t: TestContext, version: 'V1' | 'V2'): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const tokens = new Set<string>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const [status, body] = answer(version, tokens, req);
    seen.push(`${req.method} ${req.url} ${status}`);
    // Firecracker's MMDS sends a Content-Length body, never chunked.
    res.writeHead(status, {
      'content-type': status === 200 && body.startsWith('{') ? 'application/json' : 'text/plain',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  return { port: (server.address() as AddressInfo).port, seen };
}

describe('mmds-get against Firecracker MMDS rules', () => {
  it('MMDS V2 (what the driver configures): token with a TTL, then GET / as JSON', async (t) => {
    const mmds = await fakeMmds(t, 'V2');
    const { stdout } = await promisify(execFile)('bash', [mmdsGet, '127.0.0.1', String(mmds.port)]);
    assert.deepEqual(JSON.parse(stdout), doc);
    assert.deepEqual(mmds.seen, ['PUT /latest/api/token 200', 'GET / 200']);
    // The stand-in holds the rules mmds-get must meet.
    const base = `http://127.0.0.1:${mmds.port}`;
    assert.equal((await fetch(`${base}/latest/api/token`, { method: 'PUT' })).status, 400, 'no TTL');
    assert.equal(
      (await fetch(`${base}/`, { headers: { accept: 'application/json' } })).status,
      401,
      'no token',
    );
  });

  it('MMDS V1: the refused token request falls back to a GET without one', async (t) => {
    const mmds = await fakeMmds(t, 'V1');
    const { stdout } = await promisify(execFile)('bash', [mmdsGet, '127.0.0.1', String(mmds.port)]);
    assert.deepEqual(JSON.parse(stdout), doc);
    assert.deepEqual(mmds.seen, ['PUT /latest/api/token 405', 'GET / 200']);
  });
});
