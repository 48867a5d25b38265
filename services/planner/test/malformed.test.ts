import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planDockerfile } from '../src/domain/planner.ts';
import { planErrors } from './plan-helpers.ts';

// [name, Dockerfile, expected line, expected column, message pattern, rule]
const cases: [string, string, number, number, RegExp, string][] = [
  ['unknown instruction', 'FROM scratch\nRUN true\nCOPPY a /b\n', 3, 1, /unknown instruction: COPPY \(did you mean COPY\?\)/, 'UnknownInstruction'],
  ['instruction before FROM', 'ARG A=1\nRUN echo\nFROM scratch\n', 2, 1, /RUN comes before the first FROM/, 'InstructionBeforeFrom'],
  ['missing arguments', 'FROM scratch\nWORKDIR\n', 2, 1, /WORKDIR requires exactly one argument/, 'InvalidInstruction'],
  ['COPY without destination', 'FROM scratch\nCOPY onlyone\n', 2, 1, /COPY requires at least two arguments/, 'InvalidInstruction'],
  ['EXPOSE without ports', 'FROM scratch\n  EXPOSE\n', 2, 3, /EXPOSE requires at least one argument/, 'InvalidInstruction'],
  ['FROM without image', 'FROM\n', 1, 1, /FROM requires either one or three arguments/, 'InvalidInstruction'],
  ['FROM with two arguments', 'FROM debian AS\n', 1, 1, /FROM requires either one or three arguments/, 'InvalidInstruction'],
  ['unknown lower-case instruction keeps its spelling', 'FROM scratch\nfoo bar\n', 2, 1, /unknown instruction: foo( \(did you mean FROM\?\))?$/, 'UnknownInstruction'],
  ['MAINTAINER with a flag', 'FROM scratch\nMAINTAINER --boo joe@example.com\n', 2, 12, /unknown flag: --boo/, 'InvalidFlag'],
  // A flag on a continuation line is reported where it is written, not at a column of the joined line.
  ['unknown flag on a continuation line', 'FROM scratch\nCOPY --link \\\n     --bad a b\n', 3, 6, /unknown flag: --bad/, 'InvalidFlag'],
  ['mount from= with a variable on a continuation line', 'FROM scratch\nRUN --network=none \\\n  --mount=from=$X,target=/x true\n', 3, 11, /'from' doesn't support variable expansion/, 'InvalidFlag'],
  ['ENV with a blank name', 'FROM scratch\nENV =value\n', 2, 1, /ENV names can not be blank/, 'InvalidInstruction'],
  ['upper-case image name', 'FROM Debian:12\n', 1, 1, /repository name \(Debian\) must be lowercase/, 'InvalidReference'],
  ['HEALTHCHECK interval below 1ms', 'FROM scratch\nHEALTHCHECK --interval=50ns CMD true\n', 2, 1, /cannot be less than 1ms/, 'InvalidInstruction'],
  ['COPY with nothing after it, then a stray continuation', 'FROM scratch\nCOPY\t\n\t\tquux \\\n      bar\n', 2, 1, /COPY requires at least two arguments/, 'InvalidInstruction'],
  ['ENV without value', 'FROM scratch\nENV ONLYKEY\n', 2, 1, /ENV must have two arguments/, 'InvalidInstruction'],
  ['ENV pair without =', 'FROM scratch\nENV A=1 B\n', 2, 1, /can't find = in "B"/, 'InvalidInstruction'],
  ['bad JSON form (not strings)', 'FROM scratch\nCMD ["echo", 1]\n', 2, 1, /arrays must be comprised of strings only/, 'InvalidJSONArguments'],
  ['SHELL not in JSON form', 'FROM scratch\nSHELL ["/bin/bash", "-c"\n', 2, 1, /SHELL requires the arguments to be in JSON form/, 'InvalidJSONArguments'],
  ['bad --chmod', 'FROM scratch\nCOPY --chmod=rwxr-xr-x a /a\n', 2, 1, /invalid chmod parameter: "rwxr-xr-x"/, 'InvalidValue'],
  ['unknown flag', 'FROM scratch\nWORKDIR /x\nCOPY --chwon=1:1 a /a\n', 3, 6, /unknown flag: --chwon/, 'InvalidFlag'],
  ['flag on an instruction without flags', 'FROM scratch\nUSER --uid=1 app\n', 2, 6, /unknown flag: --uid \(USER takes no flags\)/, 'InvalidFlag'],
  ['duplicate flag', 'FROM scratch\nCOPY --chown=a --chown=b x /x\n', 2, 6, /duplicate flag specified: --chown/, 'InvalidFlag'],
  ['unknown --from stage', 'FROM scratch AS build\nFROM scratch\nCOPY --from=biuld /out /out\n', 3, 6, /--from=biuld names no stage.*build \(0\)/, 'UnknownStage'],
  ['--from stage index out of range', 'FROM scratch\nCOPY --from=3 /a /a\n', 2, 6, /invalid stage index 3/, 'UnknownStage'],
  ['cycle', 'FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=a /y /y\n', 2, 1, /circular dependency detected on stage: a/, 'CircularDependency'],
  ['unset ${v:?}', 'FROM scratch\nENV A=1\nWORKDIR /srv/${APP_NAME:?pass --build-arg APP_NAME}\n', 3, 1, /APP_NAME: pass --build-arg APP_NAME/, 'ExpansionError'],
  ['unset ${v:?} in FROM', 'ARG BASE\nFROM ${BASE:?}\n', 2, 1, /BASE: is not allowed to be unset/, 'ExpansionError'],
  ['unterminated quote in ENV', 'FROM scratch\nENV A="unterminated\n', 2, 1, /matching double-quote/, 'ExpansionError'],
  ['bad substitution', 'FROM scratch\nLABEL x=${}\n', 2, 1, /bad substitution/, 'ExpansionError'],
  ['unterminated heredoc', 'FROM scratch\nRUN <<EOF\necho hi\n', 2, 1, /unterminated heredoc <<EOF/, 'UnterminatedHeredoc'],
  ['heredoc as COPY destination', 'FROM scratch\nCOPY a <<EOF\nx\nEOF\n', 2, 1, /cannot accept a heredoc as a destination/, 'InvalidInstruction'],
  ['blank FROM after expansion', 'ARG BASE=\nFROM $BASE\n', 2, 1, /should not be blank/, 'InvalidInstruction'],
  ['ONBUILD MAINTAINER', 'FROM scratch\nONBUILD MAINTAINER me\n', 2, 1, /isn't allowed as an ONBUILD trigger/, 'InvalidInstruction'],
  ['invalid escape directive', '# escape=|\nFROM scratch\n', 1, 1, /invalid escape token '\|'/, 'InvalidDirective'],
];

describe('malformed Dockerfiles are rejected at the right line', () => {
  for (const [name, text, line, column, message, rule] of cases) {
    it(name, () => {
      const errors = planErrors(text);
      const match = errors.find((e) => message.test(e.message));
      assert.ok(match, `no error matching ${message} in:\n${errors.map((e) => `${e.line}:${e.column} ${e.message}`).join('\n')}`);
      assert.deepEqual([match.line, match.column, match.rule], [line, column, rule]);
    });
  }

  it('an empty Dockerfile', () => {
    for (const text of ['', '\n\n', '# just a comment\n']) {
      const [error] = planErrors(text);
      assert.equal(error?.rule, 'EmptyDockerfile');
      assert.equal(error?.line, 1);
    }
  });

  it('a blank or malformed base is one error, without a catalog warning about the same FROM', () => {
    for (const text of ['ARG TAG\nFROM debian:$TAG\n', 'FROM Debian\n', 'FROM $NOPE\n']) {
      const outcome = planDockerfile(text);
      assert.equal(outcome.ok, false, text);
      assert.deepEqual(outcome.diagnostics.filter((d) => d.rule === 'UnresolvedBaseImage'), [], text);
    }
  });

  it('a --from number is a stage index as BuildKit reads it (sign allowed); out of range is an error', () => {
    const copy = (from: string) => planDockerfile(`FROM scratch\nFROM scratch\nCOPY --from=${from} /a /b\n`);
    const ok = copy('+0');
    assert.ok(ok.ok);
    assert.deepEqual(ok.ok && ok.plan.stages[1]?.dependsOn, [0]);
    for (const bad of ['-1', '2']) assert.match(planErrors(`FROM scratch\nFROM scratch\nCOPY --from=${bad} /a /b\n`)[0]?.message ?? '', /invalid stage index/, bad);
  });

  it('a Dockerfile with only ARGs has no stage', () => {
    assert.equal(planErrors('ARG A=1\nARG B=2\n')[0]?.rule, 'NoStage');
  });

  it('an unknown --target names the stages', () => {
    const [error] = planErrors('FROM scratch AS build\nFROM scratch AS final\n', { target: 'tset' });
    assert.match(error?.message ?? '', /target stage "tset" could not be found; the named stages are: build \(0\), final \(1\)/);
    const [unnamed] = planErrors('FROM scratch AS build\nFROM scratch\n', { target: '1' });
    assert.match(unnamed?.message ?? '', /target stage "1" could not be found; the named stages are: build \(0\)$/);
    assert.match(planErrors('FROM scratch\n', { target: 'x' })[0]?.message ?? '', /no stage of this Dockerfile has a name/);
  });

  it('reports every error it finds, not just the first', () => {
    const errors = planErrors('FROM scratch\nRUN --bogus x\nFOO bar\nWORKDIR\nCOPY --chmod=9 a /a\nUSER ${U:?}\n');
    assert.deepEqual(errors.map((e) => e.line), [2, 3, 4, 5, 6]);
  });

  it('every diagnostic names the instruction', () => {
    const outcome = planDockerfile('FROM scratch AS somewhere\nFROM scratch\nCOPY --from=somewher /a /a\n');
    assert.equal(outcome.ok, false);
    assert.equal(outcome.diagnostics.find((d) => d.severity === 'error')?.instruction, 'COPY');
  });

  it('errors in a stage the target does not need are not reported, parse errors always are', () => {
    assert.ok(planDockerfile('FROM scratch AS unused\nUSER ${NOPE:?}\nFROM scratch\n').ok);
    assert.ok(!planDockerfile('FROM scratch AS unused\nUSER --x=1 a\nFROM scratch\n').ok);
  });
});
