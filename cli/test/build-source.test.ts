/** `kindling build CONTEXT`: which context form a command line names, as docker's CLI reads it. */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { buildSourceFor } from '../src/commands/build.ts';

test('git contexts in every form docker and BuildKit accept', () => {
  for (const url of [
    'https://git.example.com/team/app.git#v1.2:docker',
    'https://git.example.com/team/app.git',
    'git@git.example.com:team/app.git#main',
    'ssh://git@git.example.com/team/app#main',
    'git+https://git.example.com/team/app#main',
    'git+ssh://git@git.example.com/team/app',
    'git://git.example.com/team/app.git',
  ]) {
    assert.deepEqual(buildSourceFor(url, ''), { source: { $case: 'gitUrl', value: url }, dockerfilePath: '' }, url);
  }
  assert.deepEqual(buildSourceFor('github.com/team/app#main', 'ci/Dockerfile').source, {
    $case: 'gitUrl',
    value: 'https://github.com/team/app#main',
  });
  assert.equal(buildSourceFor('https://git.example.com/a.git#main', 'ci/Dockerfile').dockerfilePath, 'ci/Dockerfile');
});

test('http(s) URLs are tarballs by extension, else a Dockerfile URL; .git inside a path is not git', () => {
  assert.equal(buildSourceFor('https://example.com/ctx.tar.zst', '').source?.$case, 'tarballUrl');
  assert.equal(buildSourceFor('https://example.com/ctx.tar.gz', '').source?.$case, 'tarballUrl');
  assert.equal(buildSourceFor('https://example.com/images/redis/Dockerfile', '').source?.$case, 'dockerfileUrl');
  assert.equal(buildSourceFor('https://example.com/x.git/Dockerfile', '').source?.$case, 'dockerfileUrl');
});

test('a directory context and its -f are read from the current directory, as docker does', () => {
  assert.deepEqual(buildSourceFor('examples/hello', ''), {
    source: { $case: 'contextPath', value: resolve('examples/hello') },
    dockerfilePath: '',
  });
  assert.deepEqual(buildSourceFor('examples/hello', '../elsewhere/Dockerfile.dev'), {
    source: { $case: 'contextPath', value: resolve('examples/hello') },
    dockerfilePath: resolve('../elsewhere/Dockerfile.dev'),
  });
});
