/**
 * Planning throughput vs a bare dockerfile-ast parse of the same 300-line multi-stage Dockerfile,
 * measured in the same run. Goal: planning costs at most 2x the bare parse.
 * Usage: npm run bench:plan [-- iterations]
 */
import { DockerfileParser } from 'dockerfile-ast';
import { planDockerfile } from '../services/planner/src/domain/planner.ts';

function benchmarkDockerfile(): string {
  const lines = ['# syntax=docker/dockerfile:1', 'ARG GO_VERSION=1.22', 'ARG NODE_VERSION=20', 'ARG DEBIAN=12-slim'];
  const stage = (i: number): string[] => [
    `FROM golang:\${GO_VERSION} AS build${i}`,
    `ARG PKG=./cmd/svc${i}`,
    'WORKDIR /src',
    'ENV CGO_ENABLED=0 GOFLAGS="-trimpath" \\',
    `    SERVICE=svc${i}`,
    'COPY go.mod go.sum ./',
    'RUN --mount=type=cache,target=/go/pkg/mod \\',
    '    go mod download',
    'COPY . .',
    'RUN --mount=type=cache,target=/go/pkg/mod \\',
    '    --mount=type=cache,target=/root/.cache/go-build \\',
    `    go build -ldflags="-s -w -X main.version=\${VERSION:-dev}" -o /out/\${SERVICE} \${PKG}`,
    `LABEL stage="build${i}" service=\${SERVICE}`,
    '',
  ];
  let i = 0;
  while (lines.length < 240) lines.push(...stage(i++));
  lines.push(
    'FROM node:${NODE_VERSION}-bookworm-slim AS web',
    'WORKDIR /web',
    'COPY web/package.json web/package-lock.json ./',
    'RUN --mount=type=cache,target=/root/.npm npm ci',
    'COPY web/ ./',
    'RUN npm run build',
    '',
    'FROM debian:${DEBIAN}',
    'ARG VERSION=0.0.0',
    'ENV APP_HOME=/opt/app \\',
    '    PATH=/opt/app/bin:$PATH',
    'RUN <<EOF',
    'set -eux',
    'apt-get update',
    'apt-get install -y --no-install-recommends ca-certificates tini',
    'rm -rf /var/lib/apt/lists/*',
    'useradd --system --uid 10001 --home-dir ${APP_HOME} app',
    'EOF',
    'WORKDIR $APP_HOME',
  );
  for (let s = 0; s < i; s++) lines.push(`COPY --from=build${s} --chown=app:app /out/svc${s} bin/`);
  lines.push('COPY --from=web /web/dist share/web/', 'COPY <<EOF etc/app.yaml', 'version: ${VERSION}', 'home: ${APP_HOME}', 'EOF');
  while (lines.length < 292) lines.push(`LABEL org.example.line${lines.length}="\${VERSION}-${lines.length}"`);
  lines.push('USER app:app', 'EXPOSE 8080 9090/udp', 'VOLUME ["/opt/app/data"]', 'HEALTHCHECK --interval=30s --timeout=3s CMD ["/opt/app/bin/svc0", "health"]', 'STOPSIGNAL SIGTERM', 'ENTRYPOINT ["tini", "--"]', 'CMD ["svc0", "serve"]');
  return lines.join('\n') + '\n';
}

interface Measurement {
  label: string;
  /** CPU ms per run, one entry per round. */
  rounds: number[];
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/** CPU time of this process per run: the machine is shared, and waiting for a core is nobody's work. */
function cpuMsPerRun(fn: () => void, runs: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < runs; i++) fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e3 / runs;
}

/**
 * Runs the two workloads back to back in each round, alternating which goes first, so that load from
 * other processes and GC drift hit both alike; the figures are medians over the rounds.
 */
function compare(iterations: number, rounds: number, a: [string, () => void], b: [string, () => void]): { a: Measurement; b: Measurement; ratios: number[] } {
  const perRound = Math.max(1, Math.floor(iterations / rounds));
  const ma: Measurement = { label: a[0], rounds: [] };
  const mb: Measurement = { label: b[0], rounds: [] };
  const ratios: number[] = [];
  cpuMsPerRun(a[1], Math.min(100, perRound));
  cpuMsPerRun(b[1], Math.min(100, perRound));
  for (let round = 0; round < rounds; round++) {
    let ta: number;
    let tb: number;
    if (round % 2 === 0) {
      ta = cpuMsPerRun(a[1], perRound);
      tb = cpuMsPerRun(b[1], perRound);
    } else {
      tb = cpuMsPerRun(b[1], perRound);
      ta = cpuMsPerRun(a[1], perRound);
    }
    ma.rounds.push(ta);
    mb.rounds.push(tb);
    ratios.push(tb / ta);
  }
  for (const m of [ma, mb]) {
    const ms = median(m.rounds);
    process.stdout.write(`${m.label.padEnd(34)} ${perRound * rounds} runs, median ${ms.toFixed(3)} ms CPU per file (best round ${Math.min(...m.rounds).toFixed(3)} ms) = ${(1000 / ms).toFixed(0)} files/s\n`);
  }
  return { a: ma, b: mb, ratios };
}

const text = benchmarkDockerfile();
const iterations = Number(process.argv[2] ?? 2000);
const check = planDockerfile(text);
if (!check.ok) throw new Error(`benchmark Dockerfile does not plan: ${check.diagnostics.map((d) => `${d.line}: ${d.message}`).join('; ')}`);
process.stdout.write(`Dockerfile: ${text.split('\n').length - 1} lines, ${check.plan.stages.length} stages planned, ${check.plan.stages.reduce((n, s) => n + s.steps.length, 0)} steps\n`);

const { a: parse, b: plan, ratios } = compare(iterations, 40, ['dockerfile-ast parse (baseline)', () => DockerfileParser.parse(text).getInstructions()], ['kindling plan (parse + plan)', () => planDockerfile(text)]);
const parseMs = median(parse.rounds);
const planMs = median(plan.rounds);
process.stdout.write(`baseline dockerfile-ast parse: ${(1000 / parseMs).toFixed(0)} files/s (${parseMs.toFixed(3)} ms)\n`);
process.stdout.write(`kindling plan:                 ${(1000 / planMs).toFixed(0)} files/s (${planMs.toFixed(3)} ms)\n`);
process.stdout.write(`planning costs ${median(ratios).toFixed(2)}x the bare parse (median of per-round ratios; goal <= 2x)\n`);
