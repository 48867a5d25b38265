/** Heredoc markers and bodies as BuildKit's parser reads them (our own cases after its documented behaviour). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heredocsInLine, parseHeredocMarker, readDockerfile } from '../src/domain/instruction-source.ts';

const marker = (word: string): { name: string; expand: boolean; chomp: boolean; fd: number } | null => {
  const doc = parseHeredocMarker(word);
  return doc && { name: doc.name, expand: doc.expand, chomp: doc.chomp, fd: doc.fd };
};

describe('heredoc markers', () => {
  const table: [string, ReturnType<typeof marker>][] = [
    ['<<EOF', { name: 'EOF', expand: true, chomp: false, fd: 0 }],
    ['<<-EOF', { name: 'EOF', expand: true, chomp: true, fd: 0 }],
    ["<<'EOF'", { name: 'EOF', expand: false, chomp: false, fd: 0 }],
    ['<<"EOF"', { name: 'EOF', expand: false, chomp: false, fd: 0 }],
    ['<<-"EOF"', { name: 'EOF', expand: false, chomp: true, fd: 0 }],
    ['<<EO"F"', { name: 'EOF', expand: false, chomp: false, fd: 0 }],
    ['<< EOF', { name: 'EOF', expand: true, chomp: false, fd: 0 }],
    ['<<- EOF', { name: 'EOF', expand: true, chomp: true, fd: 0 }],
    ['3<<EOF', { name: 'EOF', expand: true, chomp: false, fd: 3 }],
    ["<<eo\\'f", { name: "eo'f", expand: true, chomp: false, fd: 0 }],
    ["<<'e'o\\'f", { name: "eo'f", expand: false, chomp: false, fd: 0 }],
    ["<<'one two'", { name: 'one two', expand: false, chomp: false, fd: 0 }],
    ['<<$EOF', { name: '$EOF', expand: true, chomp: false, fd: 0 }],
    ['', null],
    ['EOF', null],
    ['<<', null],
    ['<<-', null],
    ['<EOF', null],
    ['<<<EOF', null],
    ['<<EOF sh', null],
  ];
  for (const [word, expected] of table) it(`${JSON.stringify(word)} → ${expected ? expected.name : 'no heredoc'}`, () => assert.deepEqual(marker(word), expected));
});

describe('heredoc markers in an instruction line', () => {
  const table: [string, string[]][] = [
    ['RUN <<EOF', ['EOF']],
    ['RUN <<- EOF', []], // the lexer keeps blanks only right after <<
    ['RUN << -EOF', ['-EOF']],
    ["RUN <<'EOF'", ['EOF']],
    ['RUN 4<<EOF', ['EOF']],
    ['RUN <<EOF <<EOF2', ['EOF', 'EOF2']],
    ['RUN <<  EOF  > foo', ['EOF']],
    ["RUN '<<EOF'", []],
    ['RUN "<<EOF"', []],
  ];
  for (const [line, names] of table) it(line, () => assert.deepEqual(heredocsInLine(line).map((d) => d.name), names));
});

describe('heredoc bodies', () => {
  const bodies = (text: string): [string, string[]][] =>
    readDockerfile(text).instructions.map((i) => [`${i.keyword}@${i.line}`, i.heredocs.map((h) => h.content)]);

  it('keeps bodies raw (tabs, comments, quotes); chomping and expansion come later', () => {
    assert.deepEqual(bodies('FROM x\nRUN <<-UNINDENT\n\tbaz\n\tquux\n\tUNINDENT\nRUN <<COMMENT\n# internal\necho hi # trailing\nCOMMENT\nCOPY <<EOF /q\n"foo"\n\'bar\'\nEOF\n'), [
      ['FROM@1', []],
      ['RUN@2', ['\tbaz\n\tquux\n']],
      ['RUN@6', ['# internal\necho hi # trailing\n']],
      ['COPY@10', ['"foo"\n\'bar\'\n']],
    ]);
  });
  it('reads several heredocs in order, each ending only at its own delimiter', () => {
    assert.deepEqual(bodies('FROM x\nCOPY <<X <<Y /dest\nY\nX\nX\nY\nUSER u\n'), [['FROM@1', []], ['COPY@2', ['Y\n', 'X\n']], ['USER@7', []]]);
  });
  it('finds no heredoc in the JSON form or in other instructions', () => {
    assert.deepEqual(bodies('FROM x\nRUN ["<<EOF"]\nUSER <<INVALID\nINVALID\n').map(([k]) => k), ['FROM@1', 'RUN@2', 'USER@3', 'INVALID@4']);
  });
  it('reads empty bodies and quoted multi-word delimiters', () => {
    assert.deepEqual(bodies("FROM x\nRUN <<EMPTY\nEMPTY\nRUN <<'one two'\necho bar\none two\nRUN <<$EOF\n$EOF\n"), [
      ['FROM@1', []],
      ['RUN@2', ['']],
      ['RUN@4', ['echo bar\n']],
      ['RUN@7', ['']],
    ]);
  });
});
