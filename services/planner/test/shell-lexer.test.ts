import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expandWord, ShellExpansionError } from '../src/domain/shell-lexer.ts';

const ENV = new Map([
  ['PWD', '/home'],
  ['SHELL', 'bash'],
  ['KOREAN', '한국어'],
  ['NULL', ''],
  ['FILE', 'archive.tar.gz'],
  ['PATHLIKE', '/usr/local/bin/tool'],
  ['SPACED', 'a b  c'],
]);

const word = (input: string, env: ReadonlyMap<string, string> = ENV, escapeToken = '\\'): string => expandWord(input, env, { escapeToken }).result;
const words = (input: string, env: ReadonlyMap<string, string> = ENV): string[] => expandWord(input, env, { escapeToken: '\\' }).words;

// [input, expected] — expected `Error` means BuildKit rejects the word.
const cases: [string, string | typeof Error][] = [
  // plain references
  ['$PWD', '/home'],
  ['${PWD}', '/home'],
  ['x$PWD/y', 'x/home/y'],
  ['${PWD}x', '/homex'],
  ['$PWDx', ''],
  ['$UNSET', ''],
  ['${UNSET}', ''],
  ['$', '$'],
  ['$.', '$.'],
  ['a$ b', 'a$ b'],
  ['$KOREAN', '한국어'],
  ['${KOREAN}!', '한국어!'],
  ['$1', ''],
  ['$12x', 'x'],
  // ${v:-w} and ${v-w}
  ['${UNSET:-def}', 'def'],
  ['${NULL:-def}', 'def'],
  ['${PWD:-def}', '/home'],
  ['${UNSET-def}', 'def'],
  ['${NULL-def}', ''],
  ['${PWD-def}', '/home'],
  ['${UNSET:-}', ''],
  // ${v:+w} and ${v+w}
  ['${PWD:+alt}', 'alt'],
  ['${NULL:+alt}', ''],
  ['${UNSET:+alt}', ''],
  ['${PWD+alt}', 'alt'],
  ['${NULL+alt}', 'alt'],
  ['${UNSET+alt}', ''],
  // ${v:?msg} and ${v?msg}
  ['${PWD:?must be set}', '/home'],
  ['${NULL:?must be set}', Error],
  ['${UNSET:?must be set}', Error],
  ['${UNSET:?}', Error],
  ['${NULL?must be set}', ''],
  ['${UNSET?must be set}', Error],
  // prefix and suffix removal
  ['${FILE#*.}', 'tar.gz'],
  ['${FILE##*.}', 'gz'],
  ['${FILE%.*}', 'archive.tar'],
  ['${FILE%%.*}', 'archive'],
  ['${PATHLIKE##*/}', 'tool'],
  ['${PATHLIKE%/*}', '/usr/local/bin'],
  ['${FILE#nomatch}', 'archive.tar.gz'],
  ['${FILE#}', 'archive.tar.gz'],
  ['${FILE%}', 'archive.tar.gz'],
  ['${FILE#?r}', 'chive.tar.gz'],
  ['${UNSET#x}', ''],
  ['${FILE#$UNSET}', 'archive.tar.gz'],
  ['${FILE%.$SHELL}', 'archive.tar.gz'],
  // replacement
  ['${FILE/a/A}', 'Archive.tar.gz'],
  ['${FILE//a/A}', 'Archive.tAr.gz'],
  ['${PATHLIKE//\\//:}', ':usr:local:bin:tool'],
  ['${FILE/.*/}', 'archive'],
  ['${FILE/x/y}', 'archive.tar.gz'],
  ['${FILE//}', Error],
  ['${FILE//a}', Error],
  ['${FILE/$UNSET/pre-}', 'pre-archive.tar.gz'],
  ['${UNSET/a/b}', ''],
  // nesting
  ['${UNSET:-${PWD}}', '/home'],
  ['${UNSET:-${ALSO_UNSET:-deep}}', 'deep'],
  ['${PWD:+${SHELL}-x}', 'bash-x'],
  ['${UNSET:-$PWD/sub}', '/home/sub'],
  // quotes
  ["'$PWD'", '$PWD'],
  ['"$PWD"', '/home'],
  ["he'll'o", 'hello'],
  ['"a b"', 'a b'],
  ["'a\\b'", 'a\\b'],
  ['"a\\b"', 'a\\b'],
  ['"a\\"b"', 'a"b'],
  ['"a\\$PWD"', 'a$PWD'],
  ['"a\\\\b"', 'a\\b'],
  ["'unterminated", Error],
  ['"unterminated', Error],
  ['"it\'s"', "it's"],
  ["'say \"hi\"'", 'say "hi"'],
  ['${UNSET:-"quoted default"}', 'quoted default'],
  ["${UNSET:-'single $PWD'}", 'single $PWD'],
  ['${UNSET:-a b}', 'a b'],
  // escapes
  ['\\$PWD', '$PWD'],
  ['\\${PWD}', '${PWD}'],
  ['a\\ b', 'a b'],
  ['\\\\', '\\'],
  ['trailing\\', 'trailing'],
  ['\\"x\\"', '"x"'],
  // syntax errors
  ['${PWD', Error],
  ['${PWD:-x', Error],
  ['${}', Error],
  ['${:}', Error],
  ['${{PWD}', Error],
  ['${PWD=x}', Error],
  ['${PWD^}', Error],
];

describe('BuildKit shell lexer: expansion', () => {
  for (const [input, expected] of cases) {
    it(`${input} → ${expected === Error ? 'error' : JSON.stringify(expected)}`, () => {
      if (expected === Error) assert.throws(() => word(input), ShellExpansionError);
      else assert.equal(word(input), expected);
    });
  }

  it('names the variable and the message of a failed ${v:?msg}', () => {
    assert.throws(() => word('${TOKEN:?set --build-arg TOKEN=...}'), /TOKEN: set --build-arg TOKEN=\.\.\./);
    assert.throws(() => word('${NULL:?}'), /NULL: is not allowed to be empty/);
    assert.throws(() => word('${UNSET?}'), /UNSET: is not allowed to be unset/);
  });

  it('reports the variables it could not find', () => {
    assert.deepEqual(expandWord('$A ${B:-x} $PWD', ENV, { escapeToken: '\\' }).unmatched.sort(), ['A', 'B']);
  });
});

describe('BuildKit shell lexer: the backtick escape token', () => {
  const tick = (input: string): string => word(input, ENV, '`');
  it('escapes $ with a backtick', () => assert.equal(tick('`$PWD'), '$PWD'));
  it('keeps backslashes literal (Windows paths)', () => assert.equal(tick('C:\\Users\\$SHELL'), 'C:\\Users\\bash'));
  it('escapes a quote inside double quotes with a backtick', () => assert.equal(tick('"a`"b"'), 'a"b'));
  it('leaves a backslash before a quote alone', () => assert.equal(tick('"a\\b"'), 'a\\b'));
});

describe('BuildKit shell lexer: word splitting after expansion', () => {
  const table: [string, string[]][] = [
    ['a b c', ['a', 'b', 'c']],
    ['  a   b  ', ['a', 'b']],
    ['"a b" c', ['a b', 'c']],
    ['$SPACED', ['a', 'b', 'c']],
    ['"$SPACED"', ['a b  c']],
    ['x$SPACED', ['xa', 'b', 'c']],
    ["'$SPACED' d", ['$SPACED', 'd']],
    ['a\\ b c', ['a b', 'c']],
    ['""', []],
    ['$NULL', []],
    ['80 ${UNSET:-443/tcp}', ['80', '443/tcp']],
  ];
  for (const [input, expected] of table) it(`${input} → ${JSON.stringify(expected)}`, () => assert.deepEqual(words(input), expected));
});

describe('heredoc bodies are expanded without quote processing', () => {
  it('keeps quotes and expands variables', () => {
    const body = expandWord('echo "$PWD" \'$SHELL\'\n', ENV, { escapeToken: '\\', skipProcessQuotes: true }).result;
    assert.equal(body, 'echo "/home" \'bash\'\n');
  });
});
