import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGitSource } from '../src/domain/git-url.ts';
import { checkHost, DEFAULT_NETWORK_POLICY, isLinkLocal, redactUrl } from '../src/domain/network-policy.ts';
import { contextRelativePath } from '../src/domain/context-path.ts';
import { parseHttpUrl, urlFileName } from '../src/domain/http-context.ts';

test('git context URLs in docker syntax', () => {
  const p = DEFAULT_NETWORK_POLICY;
  const cases: [string, Partial<ReturnType<typeof parseGitSource>>][] = [
    [
      'https://github.com/docker/rootfs.git',
      { remote: 'https://github.com/docker/rootfs.git', ref: undefined, subdir: '.' },
    ],
    ['https://github.com/docker/rootfs.git#container', { ref: 'container', subdir: '.' }],
    ['https://github.com/docker/rootfs.git#v1.0', { ref: 'v1.0' }],
    ['https://github.com/docker/rootfs.git#container:docker', { ref: 'container', subdir: 'docker' }],
    ['https://github.com/docker/rootfs.git#:docker', { ref: undefined, subdir: 'docker' }],
    [
      'git@github.com:docker/rootfs.git#main:build',
      { remote: 'git@github.com:docker/rootfs.git', ref: 'main', subdir: 'build', transport: 'ssh' },
    ],
    ['git+https://example.com/repo.git#main', { remote: 'https://example.com/repo.git', transport: 'https' }],
    ['git+ssh://git@example.com/repo.git', { remote: 'ssh://git@example.com/repo.git', transport: 'ssh' }],
  ];
  for (const [raw, want] of cases) {
    const got = parseGitSource(raw, p);
    for (const [k, v] of Object.entries(want)) assert.equal(got[k as keyof typeof got], v, `${raw}: ${k}`);
  }
  assert.throws(() => parseGitSource('git://example.com/r.git', p), /--allowed-schemes lists "git"/);
  assert.deepEqual(
    parseGitSource('git://example.com/r.git#v1:sub', { ...p, allowedSchemes: ['git'] }),
    { remote: 'git://example.com/r.git', ref: 'v1', subdir: 'sub', shown: 'git://example.com/r.git', transport: 'git' },
  );
  const withToken = parseGitSource('https://user:tok3n@example.com/r.git#main', p);
  assert.doesNotMatch(withToken.shown, /tok3n/);
  assert.match(withToken.remote, /tok3n/, 'git still gets the credentials');
  for (const bad of [
    'file:///etc/repo.git',
    'ftp://x/r.git',
    'https://x/r.git#main:../../etc',
    'https://x/r.git#-bad',
  ]) {
    assert.throws(
      () => parseGitSource(bad, p),
      (err: Error & { code?: string }) => err.code === 'INVALID_ARGUMENT',
      bad,
    );
  }
  assert.throws(
    () => parseGitSource('https://169.254.169.254/r.git', p),
    (err: Error & { code?: string }) => err.code === 'PERMISSION_DENIED',
  );
});

test('network policy: link-local and metadata addresses, allow and deny lists', () => {
  for (const a of [
    '169.254.169.254',
    '169.254.0.1',
    'fe80::1',
    'fd00:ec2::254',
    'FD00:EC2:0:0:0:0:0:254',
    '::ffff:169.254.169.254',
    // How URLs spell an IPv4-mapped address: a dual-stack socket connects to 169.254.169.254.
    '::ffff:a9fe:a9fe',
    '0:0:0:0:0:ffff:a9fe:a9fe',
    '::169.254.169.254',
    '64:ff9b::a9fe:a9fe',
    'fe80::1%eth0',
    'febf::1',
  ]) {
    assert.equal(isLinkLocal(a), true, a);
  }
  for (const a of [
    '127.0.0.1',
    '10.0.0.1',
    'fd00:ec2::253',
    '::1',
    '2001:db8::1',
    '::ffff:127.0.0.1',
    '::ffff:a9ff:1',
    'fec0::1',
    '169.255.0.1',
  ])
    assert.equal(isLinkLocal(a), false, a);
  // Every spelling a URL accepts for the metadata address is refused by name, before any connection.
  for (const url of [
    'http://169.254.169.254/latest/meta-data/',
    'http://[::ffff:169.254.169.254]/x',
    'http://[::ffff:a9fe:a9fe]/x',
    'http://2852039166/x',
    'http://0xa9fea9fe/x',
    'http://[fd00:ec2:0::254]/x',
  ]) {
    assert.throws(
      () => parseHttpUrl(url, DEFAULT_NETWORK_POLICY),
      (err: Error & { code?: string }) =>
        err.code === 'PERMISSION_DENIED' && /link-local\/metadata address.*--allow-link-local/.test(err.message),
      url,
    );
  }
  const policy = { ...DEFAULT_NETWORK_POLICY, allowHosts: ['*.example.com'], denyHosts: ['bad.example.com'] };
  assert.doesNotThrow(() => checkHost(policy, 'git.example.com', 'x'));
  assert.throws(() => checkHost(policy, 'bad.example.com', 'x'), /deny list/);
  assert.throws(() => checkHost(policy, 'BAD.example.com.', 'x'), /deny list/, 'a trailing dot is the same host');
  assert.doesNotThrow(() => checkHost(policy, 'git.example.com.', 'x'));
  assert.throws(() => checkHost(policy, 'example.org', 'x'), /allow list/);
  assert.doesNotThrow(() =>
    checkHost({ ...DEFAULT_NETWORK_POLICY, allowLinkLocal: true }, '169.254.169.254', 'x'),
  );
});

test('credentials are redacted from URLs; context paths are cleaned or refused', () => {
  assert.equal(redactUrl('https://u:p@example.com/a?b'), 'https://***@example.com/a?b');
  assert.equal(redactUrl('https://example.com/a'), 'https://example.com/a');
  assert.equal(contextRelativePath('./a//b/../c/'), 'a/c');
  for (const bad of ['..', '../a', 'a/../../b', '/abs'])
    assert.throws(() => contextRelativePath(bad), /outside|absolute/, bad);
});

test('ADD URL file names: the last path segment, decoded when it can be', () => {
  assert.equal(urlFileName(new URL('http://h/dir/tool%20v2.tgz?x=1')), 'tool v2.tgz');
  assert.equal(urlFileName(new URL('http://h/a%zz')), 'a%zz');
  assert.equal(urlFileName(new URL('http://h/')), 'index');
});
