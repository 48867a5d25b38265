import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CatalogImage } from '../src/domain/catalog.ts';
import { planDockerfile } from '../src/domain/planner.ts';
import { copyAction, envOf, onlyStep, planErrors, planOk, runAction, stepsOf, targetStage } from './plan-helpers.ts';

const SH = ['/bin/sh', '-c'];

describe('FROM', () => {
  it('defaults the tag to latest and records an unresolved base with a warning', () => {
    const plan = planOk('FROM debian\n');
    assert.deepEqual(targetStage(plan).base, { kind: 'image', reference: 'debian', name: 'debian', tag: 'latest', resolved: false });
    assert.ok(plan.diagnostics.some((d) => d.rule === 'UnresolvedBaseImage' && d.line === 1 && d.severity === 'warning'));
  });
  it('resolves a base through the image catalog', () => {
    const images: CatalogImage[] = [{ name: 'debian', tag: '12', kind: 'base-os', digest: 'sha256:' + 'a'.repeat(64) }];
    const plan = planOk('FROM debian:12\n', { images });
    assert.deepEqual(targetStage(plan).base, { kind: 'image', reference: 'debian:12', name: 'debian', tag: '12', resolved: true, imageKind: 'base-os', digest: 'sha256:' + 'a'.repeat(64) });
    assert.deepEqual(plan.imageDependencies, [{ image: 'debian:12', resolved: true, line: 1 }]);
  });
  it('finds docker.io/library/<name> in the catalog as <name>', () => {
    const plan = planOk('FROM docker.io/library/debian:12\n', { images: [{ name: 'debian', tag: '12', kind: 'base-os' }] });
    assert.equal((targetStage(plan).base as { resolved: boolean }).resolved, true);
  });
  it('resolves a digest-pinned base by its digest, whatever its tag (name@digest, name:tag@digest)', () => {
    const digest = 'sha256:' + 'b'.repeat(64);
    const images: CatalogImage[] = [{ name: 'debian', tag: '12', kind: 'base-os', digest }, { name: 'debian', tag: 'latest', kind: 'base-os', digest: 'sha256:' + 'c'.repeat(64) }];
    for (const from of [`debian@${digest}`, `debian:bookworm@${digest}`]) {
      const base = targetStage(planOk(`FROM ${from}\n`, { images })).base;
      assert.deepEqual(base, { kind: 'image', reference: from, name: 'debian', tag: '12', resolved: true, imageKind: 'base-os', digest }, from);
    }
    const [error] = planErrors(`FROM debian@sha256:${'e'.repeat(64)}\n`, { mode: 'build', images });
    assert.match(error?.message ?? '', /no image debian@sha256:e{64} in the image catalog/);
  });
  it('in build mode, an unknown image is an error naming the available ones', () => {
    const [error] = planErrors('FROM node:20\n', { mode: 'build', images: [{ name: 'debian', tag: '12', kind: 'base-os' }] });
    assert.equal(error?.line, 1);
    assert.match(error?.message ?? '', /node:20.*available: debian:12/);
  });
  it('takes any spelling of linux/amd64 in FROM --platform without a warning', () => {
    for (const platform of ['linux/amd64', 'LINUX/AMD64', 'linux/x86_64', 'linux/amd64/v1']) {
      assert.ok(!planOk(`FROM --platform=${platform} scratch\n`).diagnostics.some((d) => d.rule === 'PlatformNotSupported'), platform);
    }
    assert.ok(planOk('FROM --platform=linux/arm64 scratch\n').diagnostics.some((d) => d.rule === 'PlatformNotSupported'));
  });
  it('accepts scratch', () => assert.deepEqual(targetStage(planOk('FROM scratch\nCOPY a /a\n')).base, { kind: 'scratch' }));
  it('builds FROM an earlier stage and inherits its config', () => {
    const plan = planOk('FROM scratch AS base\nENV A=1\nWORKDIR /app\nFROM base\nRUN true\n');
    const stage = targetStage(plan);
    assert.deepEqual(stage.base, { kind: 'stage', stageIndex: 0 });
    assert.deepEqual(stage.dependsOn, [0]);
    assert.equal(envOf(onlyStep(plan, 'RUN')).A, '1');
    assert.equal(onlyStep(plan, 'RUN').context.workdir, '/app');
  });
  it('lower-cases stage names and matches them case-insensitively', () => {
    const plan = planOk('FROM scratch AS Builder\nFROM BUILDER\n');
    assert.equal(plan.stages[0]?.name, 'builder');
    // docker build fails on FROM BUILDER (BuildKit does not lower-case it): kindling plans it and says so.
    assert.deepEqual(plan.diagnostics.filter((d) => d.rule === 'UppercaseStageReference').map((d) => d.line), [2]);
    assert.ok(!planOk('FROM scratch AS Builder\nFROM builder\n').diagnostics.some((d) => d.rule === 'UppercaseStageReference'));
    assert.deepEqual(targetStage(plan).base, { kind: 'stage', stageIndex: 0 });
  });
  it('records --platform and warns when it is not linux/amd64', () => {
    const plan = planOk('FROM --platform=linux/arm64 scratch\n');
    assert.equal(targetStage(plan).platform, 'linux/arm64');
    assert.ok(plan.diagnostics.some((d) => d.rule === 'PlatformNotSupported'));
    const amd = planOk('FROM --platform=$BUILDPLATFORM scratch\n');
    assert.equal(targetStage(amd).platform, 'linux/amd64');
    assert.ok(!amd.diagnostics.some((d) => d.rule === 'PlatformNotSupported'));
  });
  it('warns about variables in FROM that no global ARG declares', () => {
    const plan = planOk('ARG DECLARED=1\nFROM img:${DECLARED}${MISSING}\n');
    assert.deepEqual(plan.diagnostics.filter((d) => d.rule === 'UndefinedArgInFrom').map((d) => [d.line, d.message.split(' is')[0]]), [[2, "FROM argument 'MISSING'"]]);
    assert.ok(!planOk('FROM --platform=$BUILDPLATFORM scratch\n').diagnostics.some((d) => d.rule === 'UndefinedArgInFrom'));
  });
  it('rejects an invalid stage name', () => {
    const [error] = planErrors('FROM scratch AS 1st\n');
    assert.match(error?.message ?? '', /invalid name for build stage/);
  });
  it('rejects a duplicate stage name', () => {
    const [error] = planErrors('FROM scratch AS a\nFROM scratch AS a\n');
    assert.equal(error?.line, 2);
  });
});

describe('ARG', () => {
  it('global ARG is usable in FROM but invisible in the stage until re-declared', () => {
    const plan = planOk('ARG TAG=12\nARG NAME=debian\nFROM ${NAME}:${TAG}\nRUN echo\nARG TAG\nRUN echo\n');
    const [before, after] = stepsOf(plan, 'RUN');
    assert.equal((targetStage(plan).base as { reference: string }).reference, 'debian:12');
    assert.equal(envOf(before!).TAG, undefined);
    assert.equal(envOf(after!).TAG, '12');
    assert.equal(envOf(after!).NAME, undefined);
  });
  it('--build-arg overrides a global default and a stage default', () => {
    const plan = planOk('ARG V=1\nFROM img:$V\nARG V\nARG W=2\nRUN x\n', { buildArgs: { V: '9', W: '8' } });
    assert.equal((targetStage(plan).base as { reference: string }).reference, 'img:9');
    assert.deepEqual({ V: envOf(onlyStep(plan, 'RUN')).V, W: envOf(onlyStep(plan, 'RUN')).W }, { V: '9', W: '8' });
  });
  it('a default may use earlier ARGs and ENVs of the stage', () => {
    const plan = planOk('FROM scratch\nENV BASE=/opt\nARG A=x\nARG B=${BASE}/${A}\nRUN t\n');
    assert.equal(envOf(onlyStep(plan, 'RUN')).B, '/opt/x');
  });
  it('ARG without a value and without a build arg stays unset', () => {
    const plan = planOk('FROM scratch\nARG NOPE\nWORKDIR /${NOPE:-fallback}\n');
    assert.equal(targetStage(plan).image.workingDir, '/fallback');
  });
  it('ARG values never reach the image env', () => {
    const plan = planOk('FROM scratch\nARG SECRETISH=1\nENV VISIBLE=2\n');
    assert.deepEqual(plan.image.env.filter((e) => !e.startsWith('PATH=')), ['VISIBLE=2']);
  });
  it('an ENV after an ARG of the same name shadows it', () => {
    const plan = planOk('FROM scratch\nARG V=arg\nENV V=env\nRUN t\n', { buildArgs: { V: 'cli' } });
    assert.equal(envOf(onlyStep(plan, 'RUN')).V, 'env');
  });
  it('an ARG declared after an inherited ENV wins during the build, as in BuildKit', () => {
    const plan = planOk('FROM scratch AS base\nENV V=env\nFROM base\nARG V=arg\nRUN t\n');
    assert.equal(envOf(onlyStep(plan, 'RUN')).V, 'arg');
    assert.ok(plan.image.env.includes('V=env'));
  });
  it('provides the automatic platform args when declared', () => {
    const plan = planOk('FROM scratch\nARG TARGETARCH\nARG TARGETOS\nARG BUILDPLATFORM\nRUN t\n');
    const env = envOf(onlyStep(plan, 'RUN'));
    assert.deepEqual([env.TARGETARCH, env.TARGETOS, env.BUILDPLATFORM], ['amd64', 'linux', 'linux/amd64']);
  });
  it('passes proxy build args to RUN without an ARG and never reports them unused', () => {
    const plan = planOk('FROM scratch\nRUN t\nENV X=1\n', { buildArgs: { http_proxy: 'http://proxy:3128' } });
    assert.equal(envOf(onlyStep(plan, 'RUN')).http_proxy, 'http://proxy:3128');
    assert.ok(!onlyStep(plan, 'ENV').context.env.some((e) => e.startsWith('http_proxy')));
    assert.deepEqual(plan.unusedBuildArgs, []);
  });
  it('keeps undeclared proxy build args out of the cache key, as Docker does, and counts declared ones', () => {
    const key = (text: string, buildArgs: Record<string, string>): string => onlyStep(planOk(text, { buildArgs }), 'RUN').cacheKey.digest;
    const plain = 'FROM scratch\nRUN t\n';
    assert.equal(key(plain, { HTTPS_PROXY: 'http://a:3128' }), key(plain, {}));
    assert.equal(key(plain, { HTTPS_PROXY: 'http://a:3128' }), key(plain, { HTTPS_PROXY: 'http://b:3128' }));
    const declared = 'FROM scratch\nARG HTTPS_PROXY\nRUN t\n';
    assert.notEqual(key(declared, { HTTPS_PROXY: 'http://a:3128' }), key(declared, { HTTPS_PROXY: 'http://b:3128' }));
  });
  it('warns about build args that no ARG consumed', () => {
    const plan = planOk('FROM scratch\nARG USED\n', { buildArgs: { USED: '1', UNUSED: '2', OTHER: '3' } });
    assert.deepEqual(plan.unusedBuildArgs, ['OTHER', 'UNUSED']);
    assert.ok(plan.diagnostics.some((d) => d.rule === 'UnusedBuildArgs' && /\[OTHER UNUSED\]/.test(d.message)));
  });
  it('ARG with several names and quoted defaults', () => {
    const plan = planOk('FROM scratch\nARG A="x y" B=\'$A\' C\nRUN t\n');
    const env = envOf(onlyStep(plan, 'RUN'));
    assert.deepEqual([env.A, env.B, 'C' in env], ['x y', '$A', false]);
  });
  it('a global ARG value inherited by a stage ARG keeps the global expansion', () => {
    const plan = planOk('ARG A=1\nARG B=${A}2\nFROM scratch\nARG B\nRUN t\n');
    assert.equal(envOf(onlyStep(plan, 'RUN')).B, '12');
  });
  it('an ARG in a parent stage is still set in a child stage built FROM it (BuildKit carries the state env)', () => {
    const plan = planOk('FROM scratch AS base\nARG V=1\nFROM base\nRUN t\n');
    assert.equal(envOf(onlyStep(plan, 'RUN')).V, '1');
    assert.ok(!plan.image.env.some((e) => e.startsWith('V=')));
  });
});

describe('ENV and LABEL', () => {
  it('expands all pairs of one ENV with the env from before it', () => {
    const plan = planOk('FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n');
    assert.ok(plan.image.env.includes('abc=bye') && plan.image.env.includes('def=hello') && plan.image.env.includes('ghi=bye'));
  });
  it('supports the legacy "ENV key value with spaces" form', () => {
    const plan = planOk('FROM scratch\nENV GREETING hello   big world\n');
    assert.ok(plan.image.env.includes('GREETING=hello   big world'));
  });
  it('replaces a key in place, keeping its position', () => {
    const plan = planOk('FROM scratch\nENV A=1 B=2\nENV A=3\n');
    assert.deepEqual(plan.image.env.filter((e) => !e.startsWith('PATH=')), ['A=3', 'B=2']);
  });
  it('handles quotes and escapes in values', () => {
    const plan = planOk('FROM scratch\nENV A="a b" B=c\\ d C=\'$HOME\' D="x\\"y"\n');
    for (const e of ['A=a b', 'B=c d', 'C=$HOME', 'D=x"y']) assert.ok(plan.image.env.includes(e), e);
  });
  it('sets PATH when the base has none, as BuildKit does', () => {
    assert.ok(planOk('FROM scratch\n').image.env[0]?.startsWith('PATH=/usr/local/sbin:'));
  });
  it('LABEL takes several pairs, quoted keys and values, and expands them', () => {
    const plan = planOk('FROM scratch\nENV V=1.2\nLABEL a=1 "b c"="d e" version=$V\nLABEL a=2\n');
    assert.deepEqual(plan.image.labels, { a: '2', 'b c': 'd e', version: '1.2' });
  });
  it('MAINTAINER becomes the maintainer label, with a deprecation warning', () => {
    const plan = planOk('FROM scratch\nMAINTAINER Jane Doe <jane@example.com>\n');
    assert.equal(plan.image.labels.maintainer, 'Jane Doe <jane@example.com>');
    assert.ok(plan.diagnostics.some((d) => d.rule === 'MaintainerDeprecated' && d.line === 2));
  });
});

describe('RUN', () => {
  it('shell form goes to the SHELL unexpanded', () => {
    const step = onlyStep(planOk('FROM scratch\nENV X=1\nRUN echo $X "${Y:-z}"\n'), 'RUN');
    assert.deepEqual(runAction(step).argv, [...SH, 'echo $X "${Y:-z}"']);
  });
  it('exec form runs without a shell', () => {
    assert.deepEqual(runAction(onlyStep(planOk('FROM scratch\nRUN ["echo", "$X"]\n'), 'RUN')).argv, ['echo', '$X']);
  });
  it('uses the SHELL in force', () => {
    const plan = planOk('FROM scratch\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\nRUN a | b\n');
    assert.deepEqual(runAction(onlyStep(plan, 'RUN')).argv, ['/bin/bash', '-eo', 'pipefail', '-c', 'a | b']);
  });
  it('joins continuation lines, dropping comments and empty lines inside them', () => {
    const plan = planOk('FROM scratch\nRUN apt-get update \\\n# a comment\n    && apt-get install -y curl \\\n\n    && rm -rf /var/lib/apt/lists/*\nUSER app\n');
    assert.equal(runAction(onlyStep(plan, 'RUN')).argv[2], 'apt-get update     && apt-get install -y curl     && rm -rf /var/lib/apt/lists/*');
    assert.equal(onlyStep(plan, 'RUN').endLine, 6);
    assert.ok(plan.diagnostics.some((d) => d.rule === 'NoEmptyContinuation'));
  });
  it('parses --mount of every type into the plan', () => {
    const plan = planOk([
      'FROM scratch AS deps',
      'FROM scratch',
      'WORKDIR /src',
      'ARG CACHE=/root/.cache',
      'RUN --mount=type=cache,target=${CACHE},sharing=locked,id=gocache \\',
      '    --mount=type=secret,id=npmrc,target=/root/.npmrc,required \\',
      '    --mount=type=secret,id=token,env=TOKEN \\',
      '    --mount=type=bind,source=go.sum,target=go.sum \\',
      '    --mount=type=bind,from=deps,source=/out,target=/deps,rw \\',
      '    --mount=type=tmpfs,target=/tmp,size=64m \\',
      '    --mount=type=ssh \\',
      '    --network=none go build',
    ].join('\n') + '\n');
    const run = runAction(onlyStep(plan, 'RUN'));
    assert.deepEqual(run.mounts, [
      { type: 'cache', target: '/root/.cache', id: 'gocache', sharing: 'locked', readonly: false },
      { type: 'secret', id: 'npmrc', required: true, mode: 0o400, uid: 0, gid: 0, target: '/root/.npmrc' },
      { type: 'secret', id: 'token', required: false, mode: 0o400, uid: 0, gid: 0, env: 'TOKEN' },
      { type: 'bind', target: '/src/go.sum', source: 'go.sum', readonly: true },
      { type: 'bind', target: '/deps', source: '/out', readonly: false, from: 'stage:0' },
      { type: 'tmpfs', target: '/tmp', sizeBytes: 64 * 1024 * 1024 },
      { type: 'ssh', id: 'default', target: '/run/buildkit/ssh_agent.0', required: false, mode: 0o600, uid: 0, gid: 0 },
    ]);
    assert.equal(run.network, 'none');
    assert.deepEqual(plan.secrets, ['npmrc', 'token']);
    assert.deepEqual(targetStage(plan).dependsOn, [0]);
    assert.ok(plan.contextSources.includes('go.sum'));
  });
  it('defaults a secret target to /run/secrets/<id>', () => {
    const run = runAction(onlyStep(planOk('FROM scratch\nRUN --mount=type=secret,id=aws cat /run/secrets/aws\n'), 'RUN'));
    assert.deepEqual(run.mounts[0], { type: 'secret', id: 'aws', required: false, mode: 0o400, uid: 0, gid: 0, target: '/run/secrets/aws' });
    // BuildKit takes the base name of an id with slashes for the default target.
    const nested = runAction(onlyStep(planOk('FROM scratch\nRUN --mount=type=secret,id=npm/token true\n'), 'RUN'));
    assert.deepEqual(nested.mounts[0], { type: 'secret', id: 'npm/token', required: false, mode: 0o400, uid: 0, gid: 0, target: '/run/secrets/token' });
  });
  it('rejects an unknown flag, an unknown mount key and a bad network', () => {
    assert.match(planErrors('FROM scratch\nRUN --foo=bar x\n')[0]?.message ?? '', /unknown flag: --foo/);
    assert.match(planErrors('FROM scratch\nRUN --mount=type=cache,target=/x,colour=red x\n')[0]?.message ?? '', /unexpected key 'colour'/);
    assert.match(planErrors('FROM scratch\nRUN --network=bridge x\n')[0]?.message ?? '', /unsupported network mode/);
  });
  it('rejects mount keys BuildKit refuses for the type, and from= with a variable', () => {
    const cases: [string, RegExp][] = [
      ['type=bind,target=/x,required', /unexpected key 'required' for mount type 'bind'/],
      ['required,type=secret,id=a', /unexpected key 'required' for mount type 'bind'/], // type= must come first
      ['type=cache,target=/c,size=1m', /unexpected key 'size' for mount type 'cache'/],
      ['type=bind,target=/x,mode=0755', /mode not allowed for "bind" type mounts/],
      ['type=tmpfs,target=/x,uid=1', /uid not allowed for "tmpfs" type mounts/],
      ['type=secret,id=a,sharing=locked', /invalid cache sharing set for secret mount/],
      ['type=secret,id=a,source=b', /both source and id can't be set/],
      ['type=bind,from=$X,target=/x', /'from' doesn't support variable expansion/],
      ['type=cache,target=/', /invalid mount target "\/"/],
      ['type=tmpfs,target=/a/..', /invalid mount target "\/"/],
      ['type=bind,target=.', /invalid mount target "\/"/],
    ];
    for (const [mount, message] of cases) {
      const errors = planErrors(`FROM scratch\nRUN --mount=${mount} true\n`);
      assert.deepEqual([errors.length, errors[0]?.line], [1, 2], mount);
      assert.match(errors[0]?.message ?? '', message, mount);
    }
    // from= with a variable fails at parse time, as in BuildKit: even in a stage the target does not need.
    assert.equal(planErrors('FROM scratch AS unused\nRUN --mount=from=$X,target=/x true\nFROM scratch\n')[0]?.line, 2);
  });
  it('reads tmpfs sizes as go-units RAMInBytes does, and a secret named by source=', () => {
    const run = runAction(onlyStep(planOk('FROM scratch\nRUN --mount=type=tmpfs,target=/a,size=64MiB --mount=type=tmpfs,target=/b,size=1.5g --mount=type=tmpfs,target=/c,size=2t --mount=type=secret,source=npmrc true\n'), 'RUN'));
    assert.deepEqual(run.mounts.slice(0, 3).map((m) => (m.type === 'tmpfs' ? m.sizeBytes : -1)), [64 * 1024 ** 2, 1.5 * 1024 ** 3, 2 * 1024 ** 4]);
    assert.deepEqual(run.mounts[3], { type: 'secret', id: 'npmrc', required: false, mode: 0o400, uid: 0, gid: 0, target: '/run/secrets/npmrc' });
    assert.match(planErrors('FROM scratch\nRUN --mount=type=tmpfs,target=/t,size=64xb true\n')[0]?.message ?? '', /invalid size for tmpfs mount: 64xb/);
  });
  it('runs a heredoc as the script', () => {
    const plan = planOk('FROM scratch\nRUN <<EOF\nset -e\necho $HOME\nEOF\n');
    assert.deepEqual(runAction(onlyStep(plan, 'RUN')).argv, [...SH, 'set -e\necho $HOME\n']);
  });
  it('writes a heredoc with a shebang to a file and runs it', () => {
    const run = runAction(onlyStep(planOk('FROM scratch\nRUN <<EOF\n#!/usr/bin/env python3\nprint("hi")\nEOF\n'), 'RUN'));
    assert.deepEqual(run.argv, [...SH, '/dev/pipes/EOF']);
    assert.deepEqual(run.files, [{ name: 'EOF', path: '/dev/pipes/EOF', content: '#!/usr/bin/env python3\nprint("hi")\n', mode: 0o755 }]);
  });
  it('passes a heredoc feeding a command to the shell whole', () => {
    const run = runAction(onlyStep(planOk('FROM scratch\nRUN python3 <<PY > /out\nprint(1)\nPY\n'), 'RUN'));
    assert.deepEqual(run.argv, [...SH, 'python3 <<PY > /out\nprint(1)\nPY']);
  });
  it('handles several heredocs and <<- tab stripping', () => {
    const plan = planOk('FROM scratch\nRUN <<-A cat /dev/stdin - <<B\n\tone\n\tA\ntwo\nB\nUSER x\n');
    const run = runAction(onlyStep(plan, 'RUN'));
    assert.equal(run.argv[2], '<<-A cat /dev/stdin - <<B\n\tone\nA\ntwo\nB');
    assert.equal(targetStage(plan).image.user, 'x');
  });
  it('reads a heredoc on another file descriptor (3<<EOF) as BuildKit does', () => {
    const plan = planOk('FROM scratch\nRUN 3<<EOF cat /dev/fd/3\nbody\nEOF\nUSER f\n');
    assert.deepEqual(runAction(onlyStep(plan, 'RUN')).argv, [...SH, '3<<EOF cat /dev/fd/3\nbody\nEOF']);
    assert.equal(plan.image.user, 'f');
  });
  it('does not treat cat<<EOF (no word boundary) as a heredoc, as BuildKit does not', () => {
    const errors = planErrors('FROM scratch\nRUN cat<<EOF\nUSER a\nEOF\n');
    assert.deepEqual(errors.map((e) => [e.line, e.rule]), [[4, 'UnknownInstruction']]);
  });
  it('does not treat a quoted "<<EOF" as a heredoc', () => {
    const plan = planOk("FROM scratch\nRUN echo '<<EOF'\nUSER u\n");
    assert.deepEqual(runAction(onlyStep(plan, 'RUN')).argv, [...SH, "echo '<<EOF'"]);
  });
});

describe('COPY and ADD', () => {
  it('resolves the destination against WORKDIR and keeps a trailing slash', () => {
    const plan = planOk('FROM scratch\nWORKDIR /app\nCOPY package.json package-lock.json ./\nCOPY src src\nCOPY . .\n');
    const [a, b, c] = stepsOf(plan, 'COPY');
    assert.equal(copyAction(a!).destination, '/app/');
    assert.equal(copyAction(b!).destination, '/app/src');
    assert.equal(copyAction(c!).destination, '/app/');
    assert.deepEqual(plan.contextSources, ['.', 'package-lock.json', 'package.json', 'src']);
  });
  it('expands variables in sources, destination, --chown and --chmod', () => {
    const plan = planOk('FROM scratch\nARG APP=web\nARG UID=1000\nARG MODE=0750\nCOPY --chown=${UID}:${UID} --chmod=$MODE ${APP}/ /srv/${APP}/\n');
    const copy = copyAction(onlyStep(plan, 'COPY'));
    assert.deepEqual([copy.sources, copy.destination, copy.chown, copy.chmod], [['web/'], '/srv/web/', '1000:1000', 0o750]);
  });
  it('--from a stage by name and by index, and from an image', () => {
    const plan = planOk('FROM scratch AS build\nFROM scratch\nCOPY --from=build /a /a\nCOPY --from=0 /b /b\nCOPY --from=nginx:1.25 /etc/nginx/nginx.conf /etc/nginx/\n');
    const [a, b, c] = stepsOf(plan, 'COPY');
    assert.deepEqual(copyAction(a!).origin, { kind: 'stage', stageIndex: 0 });
    assert.deepEqual(copyAction(b!).origin, { kind: 'stage', stageIndex: 0 });
    assert.deepEqual(copyAction(c!).origin, { kind: 'image', reference: 'nginx:1.25' });
    assert.deepEqual(plan.imageDependencies, [{ image: 'nginx:1.25', resolved: false, line: 5 }]);
  });
  it('--from takes no variables, as in BuildKit (the stage graph is fixed first)', () => {
    const [error] = planErrors('ARG SRC=build\nFROM scratch AS build\nFROM scratch\nCOPY --from=${SRC} /a /a\n');
    assert.deepEqual([error?.line, error?.column], [4, 6]);
    assert.match(error?.message ?? '', /variable expansion is not supported for --from/);
  });
  it('--from naming no stage is an image (Docker pulls it), unless it looks like a mistyped stage', () => {
    const plan = planOk('FROM scratch AS build\nFROM scratch\nCOPY --from=busybox /bin/busybox /bin/\n');
    assert.deepEqual(copyAction(onlyStep(plan, 'COPY')).origin, { kind: 'image', reference: 'busybox' });
    assert.ok(plan.diagnostics.some((d) => d.rule === 'FromImage' && d.line === 3));
    assert.match(planErrors('FROM scratch AS builder\nFROM scratch\nCOPY --from=buidler /a /a\n')[0]?.message ?? '', /did you mean builder\?/);
  });
  it('--from may name a later stage', () => {
    const plan = planOk('FROM scratch\nCOPY --from=later /a /a\nFROM scratch AS later\nCOPY x /x\n', { target: '' });
    assert.deepEqual(plan.stages.map((s) => s.index), [1]);
    const first = planOk('FROM scratch AS first\nCOPY --from=later /a /a\nFROM scratch AS later\nCOPY x /x\n', { target: 'first' });
    assert.deepEqual(first.stages.map((s) => s.index), [1, 0]);
  });
  it('JSON form allows spaces in paths', () => {
    const copy = copyAction(onlyStep(planOk('FROM scratch\nCOPY ["my file.txt", "/dest dir/"]\n'), 'COPY'));
    assert.deepEqual([copy.sources, copy.destination], [['my file.txt'], '/dest dir/']);
  });
  it('keeps globs as patterns for the fetcher, with --exclude, --link and --parents', () => {
    const copy = copyAction(onlyStep(planOk('FROM scratch\nCOPY --link --parents --exclude=*.md --exclude=test/ ./src/**/*.go /app/\n'), 'COPY'));
    assert.deepEqual([copy.sources, copy.exclude, copy.link, copy.parents], [['src/**/*.go'], ['*.md', 'test/'], true, true]);
  });
  it('COPY --parents keeps the "/./" pivot of each source for the fetcher; without --parents it is just a path', () => {
    const parents = copyAction(onlyStep(planOk('FROM scratch\nCOPY --parents ./src/./app//**/*.go ././x.txt lib/ /app/\n'), 'COPY'));
    assert.deepEqual(parents.sources, ['src/./app/**/*.go', 'x.txt', 'lib/']);
    const plain = copyAction(onlyStep(planOk('FROM scratch\nCOPY ./src/./app/*.go /app/\n'), 'COPY'));
    assert.deepEqual(plain.sources, ['src/app/*.go']);
  });
  it('requires a directory destination ending in / for several sources', () => {
    const [error] = planErrors('FROM scratch\nCOPY a b /dest\n');
    assert.equal(error?.line, 2);
    assert.match(error?.message ?? '', /must be a directory and end with a \//);
  });
  it('COPY heredoc writes an inline file, expanding unless the delimiter is quoted', () => {
    const plan = planOk('FROM scratch\nENV NAME=world\nCOPY <<EOF /etc/hello\nhello $NAME "q"\nEOF\nCOPY <<"RAW" /etc/raw\nhello $NAME\nRAW\nCOPY --chmod=755 <<a.sh <<b.sh /bin/\necho a\na.sh\necho b\nb.sh\n');
    const [expanded, raw, two] = stepsOf(plan, 'COPY');
    assert.deepEqual(copyAction(expanded!).inline, [{ name: 'EOF', path: '/etc/hello', content: 'hello world "q"\n', mode: 0o644 }]);
    assert.deepEqual(copyAction(raw!).inline, [{ name: 'RAW', path: '/etc/raw', content: 'hello $NAME\n', mode: 0o644 }]);
    assert.deepEqual(copyAction(two!).inline.map((f) => [f.path, f.mode]), [['/bin/a.sh', 0o755], ['/bin/b.sh', 0o755]]);
  });
  it('ADD classifies URLs, git repositories and local archives', () => {
    const sum = 'sha256:' + 'b'.repeat(64);
    const plan = planOk(`FROM scratch\nADD --checksum=${sum} https://example.com/tool.tar.gz /opt/\nADD --keep-git-dir https://github.com/moby/buildkit.git#v0.12.0 /src/buildkit\nADD rootfs.tar.xz /\n`);
    const [url, git, local] = stepsOf(plan, 'ADD');
    assert.deepEqual(copyAction(url!).urls, [{ url: 'https://example.com/tool.tar.gz', checksum: sum }]);
    assert.deepEqual(url!.inputs, [{ kind: 'url', ref: 'https://example.com/tool.tar.gz', digest: sum }]);
    assert.deepEqual(copyAction(git!).git, [{ url: 'https://github.com/moby/buildkit.git#v0.12.0', keepGitDir: true }]);
    assert.deepEqual([copyAction(local!).sources, copyAction(local!).unpackArchives], [['rootfs.tar.xz'], true]);
  });
  it('tells git sources as BuildKit does: github.com/x/y is a local path, scp-like and any-case schemes are git, COPY refuses git', () => {
    const add = (source: string) => copyAction(onlyStep(planOk(`FROM scratch\nADD ${source} /d/\n`), 'ADD'));
    assert.deepEqual(add('github.com/moby/buildkit').sources, ['github.com/moby/buildkit']);
    for (const git of ['deploy@example.com:repo', 'SSH://git@example.com/r.git', 'HTTPS://example.com/r.git', 'https://example.com/r.git?x=1#main']) {
      assert.deepEqual(add(git).git.map((g) => g.url), [git], git);
    }
    assert.deepEqual(add('https://example.com/r').urls.map((u) => u.url), ['https://example.com/r']);
    const [error] = planErrors('FROM scratch\nCOPY git@github.com:moby/buildkit.git /src\n');
    assert.deepEqual([error?.line, /source can't be a git ref for COPY/.test(error?.message ?? '')], [2, true]);
  });
  it('warns that ADD --unpack=true does not extract a download (BuildKit would)', () => {
    const plan = planOk('FROM scratch\nADD --unpack=true https://a.example/x.tgz /d/\nADD local.tgz https://a.example/y.tgz /e/\n');
    assert.deepEqual(plan.diagnostics.filter((d) => d.rule === 'UnpackDownloadUnsupported').map((d) => d.line), [2]);
  });
  it('rejects --checksum on a local source, a bad --chmod and COPY of a URL', () => {
    assert.match(planErrors(`FROM scratch\nADD --checksum=sha256:${'c'.repeat(64)} local.txt /x\n`)[0]?.message ?? '', /non-HTTP/);
    const two = planErrors(`FROM scratch\nADD --checksum=sha256:${'c'.repeat(64)} https://a.example/x https://a.example/y /d/\n`);
    assert.deepEqual([two[0]?.line, /checksum can't be specified for multiple sources/.test(two[0]?.message ?? '')], [2, true]);
    assert.match(planErrors('FROM scratch\nCOPY --chmod=u+x a /a\n')[0]?.message ?? '', /invalid chmod parameter/);
    assert.match(planErrors('FROM scratch\nCOPY --chmod=8888 a /a\n')[0]?.message ?? '', /invalid chmod parameter/);
    assert.match(planErrors('FROM scratch\nCOPY https://example.com/x /x\n')[0]?.message ?? '', /use ADD/);
  });
  it('ADD rejects --from (it is a COPY flag)', () => {
    assert.match(planErrors('FROM scratch AS a\nFROM scratch\nADD --from=a /x /x\n')[0]?.message ?? '', /unknown flag: --from/);
  });
  it('splits shell-form sources on whitespace only, so a quoted space is an error as in Docker', () => {
    assert.match(planErrors('FROM scratch\nCOPY "a b" /x/\n')[0]?.message ?? '', /matching double-quote/);
  });
});

describe('WORKDIR, USER, SHELL, STOPSIGNAL, EXPOSE, VOLUME', () => {
  it('WORKDIR is relative to the previous one and is created', () => {
    const plan = planOk('FROM scratch\nWORKDIR /a\nWORKDIR b\nWORKDIR ../c/\nENV D=/d\nWORKDIR $D/e\n');
    assert.deepEqual(stepsOf(plan, 'WORKDIR').map((s) => s.action), [
      { kind: 'workdir', path: '/a', createdWith: { user: '' } },
      { kind: 'workdir', path: '/a/b', createdWith: { user: '' } },
      { kind: 'workdir', path: '/a/c', createdWith: { user: '' } },
      { kind: 'workdir', path: '/d/e', createdWith: { user: '' } },
    ]);
  });
  it('USER with a group, numeric ids and expansion; later steps run as that user', () => {
    const plan = planOk('FROM scratch\nARG UID=1001\nUSER ${UID}:0\nRUN id\nUSER app:staff\n');
    assert.equal(onlyStep(plan, 'RUN').context.user, '1001:0');
    assert.equal(plan.image.user, 'app:staff');
  });
  it('SHELL requires JSON', () => {
    assert.match(planErrors('FROM scratch\nSHELL /bin/bash -c\n')[0]?.message ?? '', /JSON form/);
    assert.deepEqual(planOk('FROM scratch\nSHELL ["pwsh", "-Command"]\n').image.shell, ['pwsh', '-Command']);
  });
  it('STOPSIGNAL accepts names and numbers and rejects the rest', () => {
    assert.equal(planOk('FROM scratch\nSTOPSIGNAL SIGQUIT\n').image.stopSignal, 'SIGQUIT');
    assert.equal(planOk('FROM scratch\nSTOPSIGNAL 9\n').image.stopSignal, '9');
    assert.equal(planOk('FROM scratch\nSTOPSIGNAL rtmin+3\n').image.stopSignal, 'rtmin+3');
    assert.match(planErrors('FROM scratch\nSTOPSIGNAL SIGNOPE\n')[0]?.message ?? '', /Invalid signal/);
  });
  it('EXPOSE ports, protocols, ranges and variables', () => {
    const plan = planOk('FROM scratch\nARG PORTS="8080 9090/udp"\nEXPOSE 80 443/TCP 7000-7002/udp $PORTS\n');
    assert.deepEqual(plan.image.exposedPorts, ['443/tcp', '7000/udp', '7001/udp', '7002/udp', '80/tcp', '8080/tcp', '9090/udp']);
    assert.match(planErrors('FROM scratch\nEXPOSE 80/icmp\n')[0]?.message ?? '', /invalid proto/);
    assert.match(planErrors('FROM scratch\nEXPOSE 70000\n')[0]?.message ?? '', /invalid containerPort/);
  });
  it('VOLUME in JSON and plain forms', () => {
    assert.deepEqual(planOk('FROM scratch\nVOLUME ["/data", "/logs"]\nVOLUME /cache /tmp/x\n').image.volumes, ['/data', '/logs', '/cache', '/tmp/x']);
  });
});

describe('CMD, ENTRYPOINT, HEALTHCHECK, ONBUILD', () => {
  it('shell-form CMD and ENTRYPOINT are wrapped in the shell; the last one wins', () => {
    const plan = planOk('FROM scratch\nCMD echo one\nCMD ["echo", "two"]\nENTRYPOINT exec nginx\n');
    assert.deepEqual(plan.image.entrypoint, [...SH, 'exec nginx']);
    assert.deepEqual(plan.image.cmd, ['echo', 'two']);
  });
  it('an ENTRYPOINT resets a CMD inherited from the base stage', () => {
    const plan = planOk('FROM scratch AS base\nCMD ["base-cmd"]\nFROM base\nENTRYPOINT ["/entry"]\n');
    assert.deepEqual([plan.image.entrypoint, plan.image.cmd], [['/entry'], []]);
  });
  it('but keeps a CMD set earlier in the same stage', () => {
    const plan = planOk('FROM scratch AS base\nCMD ["base-cmd"]\nFROM base\nCMD ["mine"]\nENTRYPOINT ["/entry"]\n');
    assert.deepEqual(plan.image.cmd, ['mine']);
  });
  it('a CMD after the ENTRYPOINT in a child stage is kept', () => {
    const plan = planOk('FROM scratch AS base\nENTRYPOINT ["/e"]\nCMD ["a"]\nFROM base\nCMD ["b"]\n');
    assert.deepEqual([plan.image.entrypoint, plan.image.cmd], [['/e'], ['b']]);
  });
  it('HEALTHCHECK CMD with every option, and NONE', () => {
    const plan = planOk('FROM scratch\nHEALTHCHECK --interval=1m30s --timeout=5s --start-period=10s --start-interval=2s --retries=4 CMD curl -f http://localhost/ || exit 1\n');
    assert.deepEqual(plan.image.healthcheck, { test: ['CMD-SHELL', 'curl -f http://localhost/ || exit 1'], intervalNs: 90e9, timeoutNs: 5e9, startPeriodNs: 10e9, startIntervalNs: 2e9, retries: 4 });
    assert.deepEqual(planOk('FROM scratch\nHEALTHCHECK CMD ["/bin/check", "--fast"]\n').image.healthcheck?.test, ['CMD', '/bin/check', '--fast']);
    assert.deepEqual(planOk('FROM scratch\nHEALTHCHECK NONE\n').image.healthcheck?.test, ['NONE']);
    assert.match(planErrors('FROM scratch\nHEALTHCHECK --interval=10 CMD true\n')[0]?.message ?? '', /missing unit/);
    assert.match(planErrors('FROM scratch\nHEALTHCHECK --retries=-1 CMD true\n')[0]?.message ?? '', /cannot be negative/);
    assert.match(planErrors('FROM scratch\nHEALTHCHECK RUN true\n')[0]?.message ?? '', /Unknown type "RUN"/);
  });
  it('ONBUILD triggers are kept verbatim in the image metadata', () => {
    const plan = planOk('FROM scratch\nONBUILD COPY . /app/src\nONBUILD RUN make -C /app/src\n');
    assert.deepEqual(plan.image.onBuild, ['COPY . /app/src', 'RUN make -C /app/src']);
    assert.match(planErrors('FROM scratch\nONBUILD ONBUILD RUN x\n')[0]?.message ?? '', /Chaining ONBUILD/);
    assert.match(planErrors('FROM scratch\nONBUILD FROM x\n')[0]?.message ?? '', /isn't allowed as an ONBUILD trigger/);
  });
  it('runs the ONBUILD triggers of a kindling image first, and does not pass them on', () => {
    const images: CatalogImage[] = [{
      name: 'app-builder', tag: '1', kind: 'built',
      metadata: { entrypoint: [], cmd: [], env: ['PATH=/usr/bin:/bin', 'APP=/app'], user: '', workingDir: '/app', exposedPorts: [], labels: {}, volumes: [], stopSignal: '', onBuild: ['COPY . $APP/src', 'RUN make'], shell: [] },
    }];
    const plan = planOk('FROM app-builder:1\nRUN ls\n', { images });
    const steps = targetStage(plan).steps;
    assert.deepEqual(steps.map((s) => [s.instruction, s.onBuildTrigger, s.line]), [['COPY', true, 1], ['RUN', true, 1], ['RUN', false, 2]]);
    assert.equal(copyAction(steps[0]!).destination, '/app/src');
    assert.deepEqual(targetStage(plan).onBuildTriggers, ['COPY . $APP/src', 'RUN make']);
    assert.deepEqual(plan.image.onBuild, []);
  });
  it('runs the ONBUILD triggers of an earlier stage used as a base', () => {
    const plan = planOk('FROM scratch AS base\nONBUILD RUN echo triggered\nFROM base\nRUN echo own\n');
    assert.deepEqual(targetStage(plan).steps.map((s) => s.onBuildTrigger), [true, false]);
  });
});

describe('parser directives', () => {
  it('records # syntax and honours the backtick escape directive', () => {
    const plan = planOk('# syntax=docker/dockerfile:1.7\n# escape=`\nFROM scratch\nRUN dir c:\\ `\n    && echo done\nCOPY a `\n     b /dst/\n');
    assert.equal(plan.syntax, 'docker/dockerfile:1.7');
    assert.equal(plan.escapeToken, '`');
    assert.equal(runAction(onlyStep(plan, 'RUN')).argv[2], 'dir c:\\     && echo done');
    assert.deepEqual(copyAction(onlyStep(plan, 'COPY')).sources, ['a', 'b']);
  });
  it('backtick escape in ENV values', () => {
    const plan = planOk('# escape=`\nFROM scratch\nENV WINPATH=C:\\Tools `\n    A=`$literal\n');
    assert.ok(plan.image.env.includes('WINPATH=C:\\Tools'));
    assert.ok(plan.image.env.includes('A=$literal'));
  });
  it('directives stop at the first other line', () => {
    const plan = planOk('# a comment\n# escape=`\nFROM scratch\nRUN a \\\n  b\n');
    assert.equal(plan.escapeToken, '\\');
    assert.equal(runAction(onlyStep(plan, 'RUN')).argv[2], 'a   b');
  });
  it('reads directives as BuildKit does: any case, spaces around = and before #, not after an unknown one', () => {
    const spaced = planOk('#  Syntax = docker/dockerfile:1.4  \n# ESCAPE = `\nFROM scratch\nRUN a `\n b\n');
    assert.deepEqual([spaced.escapeToken, spaced.syntax, runAction(onlyStep(spaced, 'RUN')).argv[2]], ['`', 'docker/dockerfile:1.4', 'a  b']);
    // BuildKit's parser left-trims each line before it looks for a directive.
    const indented = planOk('  \t# escape=`\nFROM scratch\nRUN a `\n b\n');
    assert.deepEqual([indented.escapeToken, runAction(onlyStep(indented, 'RUN')).argv[2]], ['`', 'a  b']);
    const unknown = planOk('# unknown=1\n# escape=`\nFROM scratch\nRUN a \\\n b\n');
    assert.deepEqual([unknown.escapeToken, runAction(onlyStep(unknown, 'RUN')).argv[2]], ['\\', 'a  b']);
  });
  it('after a shebang line only # syntax is read (BuildKit syntax detection skips it; its parser stops there)', () => {
    const plan = planOk('#!/usr/bin/env buildx\n# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\nRUN a \\\n b\n');
    assert.deepEqual([plan.syntax, plan.escapeToken, runAction(onlyStep(plan, 'RUN')).argv[2]], ['docker/dockerfile:1', '\\', 'a  b']);
  });
  it('reports BuildKit lint rules JSONArgsRecommended, LegacyKeyValueFormat, MultipleInstructionsDisallowed, FromAsCasing, StageNameCasing, WorkdirRelativePath, RedundantTargetPlatform, ReservedStageName, ConsistentInstructionCasing, SecretsUsedInArgOrEnv, InvalidDefaultArgInFrom and FromPlatformFlagConstDisallowed as BuildKit does', () => {
    const at = (text: string, rule: string): number[] => planOk(text).diagnostics.filter((d) => d.rule === rule).map((d) => d.line);
    // Shell-form CMD/ENTRYPOINT, unless a SHELL is set.
    assert.deepEqual(at('FROM scratch\nCMD run\nENTRYPOINT ["x"]\nSHELL ["/bin/bash","-c"]\nCMD run\n', 'JSONArgsRecommended'), [2]);
    assert.deepEqual(at('FROM scratch\nENV A b\nENV C=d\nLABEL e f g\n', 'LegacyKeyValueFormat'), [2, 4]);
    // Reported at the earlier instruction, the one that has no effect; a new stage starts afresh.
    assert.deepEqual(at('FROM scratch AS a\nCMD ["1"]\nCMD ["2"]\nHEALTHCHECK NONE\nHEALTHCHECK CMD true\nFROM a\nCMD ["3"]\n', 'MultipleInstructionsDisallowed'), [2, 4]);
    assert.ok(!planDockerfile('# check=error=true\nFROM scratch\nENV A b\n').ok);
    // FROM ... as ...: the keywords' casing must match (unless FROM itself is mixed-case); stage names lower-case.
    const text = 'FROM scratch as Build\nfrom scratch AS b\nFROM scratch AS c\nFrom scratch as d\n';
    assert.deepEqual(at(text, 'FromAsCasing'), [1, 2]);
    assert.deepEqual(at(text, 'StageNameCasing'), [1]);
    // Only the first WORKDIR of a build chain is checked; a stage FROM another inherits that state.
    const workdirs = 'FROM scratch AS a\nWORKDIR app\nWORKDIR sub\nFROM a AS b\nWORKDIR rel\nFROM scratch\nWORKDIR rel2\nCOPY --from=b /x /x\n';
    assert.deepEqual(at(workdirs, 'WorkdirRelativePath'), [2, 7]);
    assert.deepEqual(at('FROM --platform=$TARGETPLATFORM scratch AS a\nFROM --platform=${TARGETPLATFORM} a\n', 'RedundantTargetPlatform'), [1, 2]);
    assert.deepEqual(at('FROM scratch AS context\nFROM scratch\n', 'ReservedStageName'), [1]);
    // The majority casing of the stages' instructions wins (ARGs before FROM are not counted); mixed case always warns.
    assert.deepEqual(at('ARG a\nARG b\nARG c\nFROM scratch\nrun a\nRUN b\nCopy a b\nENV c=d\n', 'ConsistentInstructionCasing'), [5, 7]);
    assert.deepEqual(at('from scratch\nrun a\nENV c=d\n', 'ConsistentInstructionCasing'), [3]);
    // Secret-looking ARG/ENV names (first or last word), unless they also say public, file or version.
    const secrets = planOk('FROM scratch\nARG GITHUB_TOKEN API_KEY_FILE public_key mykey\nENV DB_PASSWORD=x GPG_KEY=y\n').diagnostics.filter((d) => d.rule === 'SecretsUsedInArgOrEnv');
    assert.deepEqual(secrets.map((d) => d.message.match(/\((.*)\)/)?.[1]), ['ARG "GITHUB_TOKEN"', 'ENV "DB_PASSWORD"', 'ENV "GPG_KEY"']);
    // Global ARG defaults alone must give every FROM a valid name, even when --build-arg fills it in.
    const bases = 'ARG TAG\nARG IMG=debian\nFROM debian:$TAG AS a\nFROM $IMG AS b\nFROM ${IMG}:${TAG:-12}\nCOPY --from=a /x /x\nCOPY --from=b /y /y\n';
    assert.deepEqual(planOk(bases, { buildArgs: { TAG: '12' } }).diagnostics.filter((d) => d.rule === 'InvalidDefaultArgInFrom').map((d) => d.line), [3]);
    // A literal --platform, unless a variable or the stage's name says which platform it is for.
    const platforms = 'FROM --platform=linux/amd64 scratch AS a\nFROM --platform=linux/amd64 scratch AS amd64-tools\nFROM --platform=$BUILDPLATFORM scratch AS c\nFROM --platform=x86_64 scratch\nCOPY --from=a / /\nCOPY --from=amd64-tools / /\nCOPY --from=c / /\n';
    assert.deepEqual(at(platforms, 'FromPlatformFlagConstDisallowed'), [1, 4]);
  });
  it('# check= skips BuildKit lint warnings, and error=true fails on the ones left', () => {
    const rules = (text: string): string[] => planDockerfile(text).diagnostics.map((d) => d.rule);
    const body = 'FROM scratch\nMAINTAINER me\nRUN a \\\n\n  b\n';
    assert.deepEqual(rules(body).sort(), ['MaintainerDeprecated', 'NoEmptyContinuation']);
    assert.deepEqual(rules(`# check=skip=all\n${body}`), []);
    assert.deepEqual(rules(`# check=skip=MaintainerDeprecated\n${body}`), ['NoEmptyContinuation']);
    const failed = planDockerfile(`# check=error=true\n${body}`);
    assert.equal(failed.ok, false);
    assert.match(failed.diagnostics.find((d) => d.severity === 'error')?.message ?? '', /^lint violation found for rules: MaintainerDeprecated, NoEmptyContinuation /);
    assert.ok(planDockerfile(`# check=skip=MaintainerDeprecated,NoEmptyContinuation;error=true\n${body}`).ok);
    // kindling's own warnings are not lint rules: error=true leaves them warnings.
    assert.ok(planDockerfile('# check=error=true\nFROM debian:12\n').ok);
    const bad = planErrors('# check=skip\nFROM scratch\n')[0];
    assert.deepEqual([bad?.line, bad?.rule, /invalid check option "skip"/.test(bad?.message ?? '')], [1, 'InvalidDirective', true]);
  });
  it('handles CRLF line endings', () => {
    const plan = planOk('FROM scratch\r\nENV A=1 \\\r\n  B=2\r\nRUN echo a \\\r\n  b\r\nCMD ["x"]\r\n');
    assert.deepEqual([plan.image.env.slice(1), runAction(onlyStep(plan, 'RUN')).argv[2], plan.image.cmd], [['A=1', 'B=2'], 'echo a   b', ['x']]);
  });
  it('a comment line does not end a continuation: the next line still belongs to the instruction', () => {
    assert.equal(runAction(onlyStep(planOk('FROM scratch\nRUN echo a \\\n# c\nUSER x\n'), 'RUN')).argv[2], 'echo a USER x');
  });
  it('rejects an invalid escape token and a repeated directive', () => {
    assert.match(planErrors('# escape=x\nFROM scratch\n')[0]?.message ?? '', /invalid escape token/);
    assert.equal(planErrors('# syntax=a\n# syntax=b\nFROM scratch\n')[0]?.line, 2);
  });
  it('accepts lower-case instructions', () => {
    assert.deepEqual(planOk('from scratch\nrun echo hi\nenv A=1\n').stages[0]?.steps.map((s) => s.instruction), ['RUN', 'ENV']);
  });
});
