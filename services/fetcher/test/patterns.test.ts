import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DockerignoreMatcher, parseDockerignore } from '../src/domain/dockerignore.ts';
import { goMatch } from '../src/domain/go-glob.ts';
import { ContextIndex, keptEntries } from '../src/domain/context-index.ts';

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

// A small context for source selection: [path, type].
const TREE: [string, 'dir' | 'file'][] = [
  ['main.go', 'file'],
  ['x', 'dir'],
  ['x/y.go', 'file'],
  ['x/notes.txt', 'file'],
  ['a', 'dir'],
  ['a/b', 'dir'],
  ['a/b/c.go', 'file'],
  ['a/b/c_test.go', 'file'],
  ['src', 'dir'],
  ['src/app', 'dir'],
  ['src/app/main.go', 'file'],
  ['src/app/web', 'dir'],
  ['src/app/web/index.js', 'file'],
  ['src/lib.go', 'file'],
];

function contextIndex(): ContextIndex {
  return new ContextIndex(
    TREE.map(([path, type]) => ({ path, type, size: 1, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtimeMs: 0 })),
  );
}

function selected(patterns: string[], options: { parents?: boolean; excludes?: string[] } = {}): string[] {
  return contextIndex()
    .select(patterns, options.excludes ?? [], { maxFiles: 100 }, { parents: options.parents ?? false })
    .flatMap((m) => m.files.map((f) => (f.matchRoot === f.path ? f.path : `${f.path} <${f.matchRoot}>`)));
}

test('plain COPY sources match as BuildKit does: Go filepath.Match below the literal prefix, "**" is "*"', () => {
  // [sources, selected paths (with their match root when it differs), or an error]
  const cases: [string, string[] | RegExp][] = [
    ['**/*.go', ['src/lib.go', 'x/y.go']], // one directory deep: not main.go, not a/b/c.go
    ['*/*.go', ['src/lib.go', 'x/y.go']],
    ['*.go', ['main.go']],
    ['**', ['a', 'a/b <a>', 'a/b/c.go <a>', 'a/b/c_test.go <a>', 'main.go', 'src', 'src/app <src>', 'src/app/main.go <src>', 'src/app/web <src>', 'src/app/web/index.js <src>', 'src/lib.go <src>', 'x', 'x/notes.txt <x>', 'x/y.go <x>']],
    ['a/**/*.go', ['a/b/c.go', 'a/b/c_test.go']],
    ['src/**', ['src/app', 'src/app/main.go <src/app>', 'src/app/web <src/app>', 'src/app/web/index.js <src/app>', 'src/lib.go']],
    ['src/*/main.go', ['src/app/main.go']],
    ['src/**/main.go', ['src/app/main.go']],
    ['a/*/c?go', ['a/b/c.go']],
    ['**/**/*.go', ['a/b/c.go', 'a/b/c_test.go', 'src/app/main.go']],
    ['nothing/*.go', /"nothing" is not a directory of the build context/],
    ['**/*.rs', []], // BuildKit's AllowEmptyWildcard: nothing to copy is not an error
    ['src/*.rs', []],
    ['x/[', /malformed/],
  ];
  for (const [source, want] of cases) {
    if (want instanceof RegExp) assert.throws(() => selected([source]), want, source);
    else assert.deepEqual(selected([source]), want, source);
  }
});

test('COPY --parents sources: "**" spans directories and paths stay relative to the context root or the /./ pivot', () => {
  const cases: [string, string[] | RegExp][] = [
    ['**/*.go', ['a <.>', 'a/b <.>', 'a/b/c.go <.>', 'a/b/c_test.go <.>', 'main.go <.>', 'src <.>', 'src/app <.>', 'src/app/main.go <.>', 'src/lib.go <.>', 'x <.>', 'x/y.go <.>']],
    ['a/b/c.go', ['a <.>', 'a/b <.>', 'a/b/c.go <.>']],
    ['src/*/web', ['src <.>', 'src/app <.>', 'src/app/web <.>', 'src/app/web/index.js <.>']],
    ['src/./app/**/*.js', ['src', 'src/app <src>', 'src/app/web <src>', 'src/app/web/index.js <src>']],
    ['./src/./*.go', ['src', 'src/lib.go <src>']],
    ['**/*.rs', []],
    ['missing/./*.go', /pivot "missing" is not a directory/],
    ['s*/./app', /wildcards before its "\/\.\/" pivot/],
  ];
  for (const [source, want] of cases) {
    if (want instanceof RegExp) assert.throws(() => selected([source], { parents: true }), want, source);
    else assert.deepEqual(selected([source], { parents: true }), want, source);
  }
});

test('COPY --exclude keeps "**" spanning directories, in plain and --parents mode', () => {
  assert.deepEqual(selected(['a'], { excludes: ['**/*_test.go'] }), ['a', 'a/b <a>', 'a/b/c.go <a>']);
  assert.deepEqual(selected(['.'], { excludes: ['**/*.go', '**/*.txt'] }), [
    'a <.>', 'a/b <.>', 'src <.>', 'src/app <.>', 'src/app/web <.>', 'src/app/web/index.js <.>', 'x <.>',
  ]);
  assert.deepEqual(selected(['a/**/*.go'], { parents: true, excludes: ['**/*_test.go'] }), ['a <.>', 'a/b <.>', 'a/b/c.go <.>']);
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
