import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DockerignoreMatcher, parseDockerignore } from '../src/domain/dockerignore.ts';
import { goMatch } from '../src/domain/go-glob.ts';
import { ContextIndex, keptEntries, matchSegments } from '../src/domain/context-index.ts';

// Go's path/filepath.Match table: [pattern, name, match | 'bad'].
const GO_MATCH: [string, string, boolean | 'bad'][] = [
  ['abc', 'abc', true],
  ['*', 'abc', true],
  ['*c', 'abc', true],
  ['a*', 'a', true],
  ['a*', 'abc', true],
  ['a*', 'ab/c', false],
  ['a*/b', 'abc/b', true],
  ['a*/b', 'a/c/b', false],
  ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
  ['a*b?c*x', 'abxbbxdbxebxczzx', true],
  ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['ab[c]', 'abc', true],
  ['ab[b-d]', 'abc', true],
  ['ab[e-g]', 'abc', false],
  ['ab[^c]', 'abc', false],
  ['ab[^b-d]', 'abc', false],
  ['ab[^e-g]', 'abc', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'ab', false],
  ['a?b', 'a☺b', true],
  ['a[^a]b', 'a☺b', true],
  ['a???b', 'a☺b', false],
  ['a[^a][^a][^a]b', 'a☺b', false],
  ['[a-ζ]*', 'α', true],
  ['*[a-ζ]', 'A', false],
  ['a?b', 'a/b', false],
  ['a*b', 'a/b', false],
  ['[\\]a]', ']', true],
  ['[\\-]', '-', true],
  ['[x\\-]', 'x', true],
  ['[x\\-]', '-', true],
  ['[x\\-]', 'z', false],
  ['[\\-x]', 'x', true],
  ['[\\-x]', '-', true],
  ['[\\-x]', 'a', false],
  ['[]a]', ']', 'bad'],
  ['[-]', '-', 'bad'],
  ['[x-]', 'x', 'bad'],
  ['[-x]', 'x', 'bad'],
  ['\\', 'a', 'bad'],
  ['[a-b-c]', 'a', 'bad'],
  ['[', 'a', 'bad'],
  ['[^', 'a', 'bad'],
  ['[^bc', 'a', 'bad'],
  ['a[', 'a', 'bad'],
  ['a[', 'x', 'bad'],
  ['a/b[', 'x', 'bad'],
  ['*x', 'xxx', true],
  // '-' outside a class is an ordinary character (it once made the RegExp invalid: INTERNAL).
  ['my-app-*.jar', 'my-app-1.2.jar', true],
  ['my-app-*.jar', 'my_app-1.2.jar', false],
  ['a-?', 'a-b', true],
  ['[a-c]-[x-]', 'b-x', 'bad'],
  ['[a-c]-[x\\-]', 'b--', true],
];

test('Go filepath.Match semantics', () => {
  for (const [pattern, name, want] of GO_MATCH) {
    if (want === 'bad')
      assert.throws(() => goMatch(pattern, name), /malformed/, `${pattern} should be a bad pattern`);
    else
      assert.equal(
        goMatch(pattern, name),
        want,
        `Match(${JSON.stringify(pattern)}, ${JSON.stringify(name)})`,
      );
  }
});

test('COPY sources: "**" spans directories where BuildKit supports it', () => {
  const cases: [string, string, boolean][] = [
    ['src/**/x.go', 'src/x.go', true],
    ['src/**/x.go', 'src/a/b/x.go', true],
    ['src/**/x.go', 'lib/x.go', false],
    ['**/*.sh', 'bin/run.sh', true],
    ['**/*.sh', 'run.sh', true],
    ['*.sh', 'bin/run.sh', false],
    ['bin/*', 'bin/run.sh', true],
    ['app-*/**/*-test.js', 'app-web/src/x-test.js', true],
  ];
  for (const [pattern, path, want] of cases)
    assert.equal(matchSegments(pattern.split('/'), path.split('/')), want, `${pattern} vs ${path}`);
});

// moby/patternmatcher's own table, checked with MatchesOrParentMatches.
const PATTERNMATCHER: [string, string, boolean][] = [
  ['**', 'file', true],
  ['**', 'file/', true],
  ['**/', 'file', true],
  ['**/', 'file/', true],
  ['**', '/', true],
  ['**/', '/', true],
  ['**', 'dir/file', true],
  ['**/', 'dir/file', true],
  ['**', 'dir/file/', true],
  ['**/', 'dir/file/', true],
  ['**/**', 'dir/file', true],
  ['**/**', 'dir/file/', true],
  ['dir/**', 'dir/file', true],
  ['dir/**', 'dir/file/', true],
  ['dir/**', 'dir/dir2/file', true],
  ['dir/**', 'dir/dir2/file/', true],
  ['**/dir', 'dir', true],
  ['**/dir', 'dir/file', true],
  ['**/dir2/*', 'dir/dir2/file', true],
  ['**/dir2/*', 'dir/dir2/file/', true],
  ['**/dir2/**', 'dir/dir2/dir3/file', true],
  ['**/dir2/**', 'dir/dir2/dir3/file/', true],
  ['**file', 'file', true],
  ['**file', 'dir/file', true],
  ['**/file', 'dir/file', true],
  ['**file', 'dir/dir/file', true],
  ['**/file', 'dir/dir/file', true],
  ['**/file*', 'dir/dir/file', true],
  ['**/file*', 'dir/dir/file.txt', true],
  ['**/file*txt', 'dir/dir/file.txt', true],
  ['**/file*.txt', 'dir/dir/file.txt', true],
  ['**/file*.txt*', 'dir/dir/file.txt', true],
  ['**/**/*.txt', 'dir/dir/file.txt', true],
  ['**/**/*.txt2', 'dir/dir/file.txt', false],
  ['**/*.txt', 'file.txt', true],
  ['**/**/*.txt', 'file.txt', true],
  ['a**/*.txt', 'a/file.txt', true],
  ['a**/*.txt', 'a/dir/file.txt', true],
  ['a**/*.txt', 'a/dir/dir/file.txt', true],
  ['a/*.txt', 'a/dir/file.txt', false],
  ['a/*.txt', 'a/file.txt', true],
  ['a/*.txt**', 'a/file.txt', true],
  ['a[b-d]e', 'ae', false],
  ['a[b-d]e', 'ace', true],
  ['a[b-d]e', 'aae', false],
  ['a[^b-d]e', 'aze', true],
  ['.*', '.foo', true],
  ['.*', 'foo', false],
  ['abc.def', 'abcdef', false],
  ['abc.def', 'abc.def', true],
  ['abc.def', 'abcZdef', false],
  ['abc?def', 'abcZdef', true],
  ['abc?def', 'abcdef', false],
  ['a\\\\', 'a\\', true],
  ['**/foo/bar', 'foo/bar', true],
  ['**/foo/bar', 'dir/foo/bar', true],
  ['**/foo/bar', 'dir/dir2/foo/bar', true],
  ['abc/**', 'abc', false],
  ['abc/**', 'abc/def', true],
  ['abc/**', 'abc/def/ghi', true],
  ['**/.foo', '.foo', true],
  ['**/.foo', 'bar.foo', false],
  ['a(b)c/def', 'a(b)c/def', true],
  ['a(b)c/def', 'a(b)c/xyz', false],
  ['a.|)$(}+{bc', 'a.|)$(}+{bc', true],
  [
    'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl',
    'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl',
    true,
  ],
  ['dist/*.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true],
  ['docker-compose*.yml', 'docker-compose.override.yml', true],
  ['**/*-test.js', 'web/src/x-test.js', true],
  ['**/*-test.js', 'web/src/xtest.js', false],
  ['[a-c]-*', 'b-x', true],
];

test('.dockerignore patterns match as moby/patternmatcher does', () => {
  for (const [pattern, path, want] of PATTERNMATCHER) {
    assert.equal(
      new DockerignoreMatcher([pattern]).excludes(path),
      want,
      `${JSON.stringify(pattern)} vs ${JSON.stringify(path)}`,
    );
  }
});

// The examples of Docker's .dockerignore documentation: [file text, path, excluded].
const DOCUMENTED: [string, string, boolean][] = [
  ['# comment\n*/temp*\n*/*/temp*\ntemp?\n', 'somedir/temporary.txt', true],
  ['*/temp*', 'somedir/temp', true],
  ['*/temp*', 'temporary.txt', false],
  ['*/*/temp*', 'somedir/subdir/temporary.txt', true],
  ['*/*/temp*', 'somedir/temporary.txt', false],
  ['temp?', 'tempa', true],
  ['temp?', 'tempab', false],
  ['**/*.go', 'main.go', true],
  ['**/*.go', 'cmd/tool/main.go', true],
  ['*.md\n!README.md', 'CHANGES.md', true],
  ['*.md\n!README.md', 'README.md', false],
  ['*.md\n!README*.md\nREADME-secret.md', 'README-secret.md', true],
  ['*.md\n!README*.md\nREADME-secret.md', 'README-public.md', false],
  ['*.md\nREADME-secret.md\n!README*.md', 'README-secret.md', false],
  // Leading and trailing slashes, "." and ".." are cleaned away; lines are trimmed.
  ['/node_modules', 'node_modules/x/index.js', true],
  ['node_modules/', 'node_modules', true],
  ['./build/../dist', 'dist/app.js', true],
  ['   spaced.txt   ', 'spaced.txt', true],
  // '#' starts a comment only at the beginning of a line.
  ['#secret.txt', '#secret.txt', false],
  [' #secret.txt', '#secret.txt', true],
  // An excluded directory excludes everything under it unless re-included.
  ['docs\n!docs/keep.md', 'docs/drop.md', true],
  ['docs\n!docs/keep.md', 'docs/keep.md', false],
  ['\uFEFFbom.txt', 'bom.txt', true],
  ['*.txt\r\n!keep.txt\r\n', 'keep.txt', false],
];

test('.dockerignore files: Docker documentation examples', () => {
  for (const [text, path, want] of DOCUMENTED) {
    assert.equal(
      DockerignoreMatcher.fromText(text).excludes(path),
      want,
      `${JSON.stringify(text)} vs ${path}`,
    );
  }
});

test('.dockerignore reading: comments, "!" prefix and absolute paths', () => {
  assert.deepEqual(parseDockerignore('# c\n\n /a/b/ \n! /c\n!d/./e\n**/x\n'), ['a/b', '!c', '!d/e', '**/x']);
  assert.throws(() => DockerignoreMatcher.fromText('!'), /illegal exclusion/);
  assert.throws(() => DockerignoreMatcher.fromText('a['), /malformed/);
});

test('an excluded directory is walked only when an exception may re-include something below it', () => {
  assert.equal(DockerignoreMatcher.fromText('docs').canSkipExcludedDir('docs'), true);
  assert.equal(DockerignoreMatcher.fromText('docs\n!docs/keep.md').canSkipExcludedDir('docs'), false);
  assert.equal(DockerignoreMatcher.fromText('docs\n!other/keep.md').canSkipExcludedDir('docs'), true);
  // fsutil: a trailing "/*" or "/**" still counts as a prefix...
  assert.equal(DockerignoreMatcher.fromText('docs\n!docs/*').canSkipExcludedDir('docs'), false);
  assert.equal(DockerignoreMatcher.fromText('docs\n!other/**').canSkipExcludedDir('docs'), true);
  // ...but an exception with wildcards elsewhere may match below any directory: walk them all.
  assert.equal(DockerignoreMatcher.fromText('vendor\n!**/*.go').canSkipExcludedDir('vendor'), false);
  assert.equal(DockerignoreMatcher.fromText('vendor\n!other/*.go').canSkipExcludedDir('vendor'), false);
});

test('directories above a re-included file are kept, with their own entries', () => {
  const entry = (path: string, type: 'dir' | 'file', mode = 0o644) => ({
    path,
    type,
    size: 0,
    mode,
    uid: 0,
    gid: 0,
    mtimeMs: 0,
  });
  const tree = [
    entry('vendor', 'dir', 0o750),
    entry('vendor/lib', 'dir', 0o700),
    entry('vendor/lib/a.go', 'file'),
    entry('vendor/lib/notes.txt', 'file'),
    entry('main.go', 'file'),
    entry('README.md', 'file'),
  ];
  const kept = keptEntries(tree, DockerignoreMatcher.fromText('vendor\n*.md\n!**/*.go'));
  assert.deepEqual(kept.map((e) => e.path).sort(), ['main.go', 'vendor', 'vendor/lib', 'vendor/lib/a.go']);
  assert.equal(kept.find((e) => e.path === 'vendor')!.mode, 0o750);
  const listed = new ContextIndex(kept).select(['vendor'], [], { maxFiles: 100 });
  assert.deepEqual(
    listed[0]!.files.map((f) => f.path),
    ['vendor', 'vendor/lib', 'vendor/lib/a.go'],
  );
});
