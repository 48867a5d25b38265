/**
 * `kindling plan -f Dockerfile [--build-arg K=V]... [--target T] [--json]` — shows what a build would
 * do. With --planner (or KINDLING_PLANNER_ADDR) it asks the planner (PlanBuild); without, it plans
 * in-process, so it works with no server (every base image is then unresolved).
 */
import { readFileSync } from 'node:fs';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { BuildPlan, BuildServiceClient, Diagnostic, PlanBuildResponse, Severity, type PlannedStep } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { createServiceClient, deadlineIn, statusDetails, type TlsFiles } from '@kindling/runtime';
import { planDockerfile, toProtoDiagnostic, toProtoPlan } from '@kindling/planner';
import { parseBuildArgs } from '../build-args.ts';
import { parseCommandLine, tlsFilesOf, tlsOptions } from '../command-line.ts';

export const describe = 'show the build plan of a Dockerfile (stages, expanded steps, cache keys, errors)';

const usage = `usage: kindling plan [options]

options:
  -f, --file PATH          Dockerfile to plan (default ./Dockerfile; "-" reads stdin)
      --build-arg K[=V]    build argument (repeatable; a bare K takes K from the environment)
      --target STAGE       stage to build (default: the last)
      --json               print the plan (or the diagnostics) as JSON
      --planner HOST:PORT  ask this planner (default $KINDLING_PLANNER_ADDR); without one, plan in-process
      --tls-ca/--tls-cert/--tls-key PATH   TLS to the planner
`;

async function planRemotely(address: string, tls: TlsFiles, dockerfile: string, file: string, args: Record<string, string>, target: string): Promise<PlanBuildResponse> {
  const client = createServiceClient(BuildServiceClient, address, tls);
  try {
    return await new Promise<PlanBuildResponse>((resolve, reject) =>
      client.planBuild({ dockerfile, dockerfilePath: file, buildArgs: args, target, platform: '' }, new Metadata(), deadlineIn(30_000), (error, response) => {
        if (!error) return resolve(response);
        // A Dockerfile with errors: the diagnostics travel in the status details.
        const detail = statusDetails(error as ServiceError).find((d) => d.typeName === 'kindling.planner.v1.PlanBuildResponse');
        if (detail) resolve(PlanBuildResponse.decode(detail.value));
        else reject(error);
      }),
    );
  } finally {
    client.close();
  }
}

function planLocally(dockerfile: string, file: string, args: Record<string, string>, target: string): PlanBuildResponse {
  const outcome = planDockerfile(dockerfile, { buildArgs: args, target });
  const response: PlanBuildResponse = { diagnostics: outcome.diagnostics.map((d) => toProtoDiagnostic(d, file)) };
  if (outcome.ok) response.plan = toProtoPlan(outcome.plan, file);
  return response;
}

const location = (d: Diagnostic): string => (d.line > 0 ? `${d.file}:${d.line}:${d.column}` : d.file);

function stepLine(step: PlannedStep): string {
  const action = step.action;
  let what = step.canonical;
  if (action?.$case === 'run') what = action.value.command?.$case === 'script' ? `RUN ${action.value.command.value}` : `RUN ${JSON.stringify(action.value.command?.value.argv ?? [])}`;
  const firstLine = what.split('\n')[0] ?? '';
  const shown = firstLine.length > 72 ? firstLine.slice(0, 69) + '...' : firstLine + (what.includes('\n') ? ' ...' : '');
  return `  ${String(step.line).padStart(4)}  ${shown.padEnd(72)}  ${step.cacheKey.slice(7, 19)}${step.fromOnbuild ? '  (ONBUILD)' : ''}`;
}

function printPlan(plan: BuildPlan, out: NodeJS.WritableStream): void {
  const stageName = (i: number): string => plan.stages.find((s) => s.index === i)?.name || String(i);
  out.write(`target: stage ${stageName(plan.targetStageIndex)}; ${plan.stages.length} stage(s) needed${plan.skippedStageIndexes.length ? `, skipped ${plan.skippedStageIndexes.join(', ')}` : ''}\n`);
  for (const stage of plan.stages) {
    const base = stage.base?.source;
    const from = base?.$case === 'image' ? `${base.value}${stage.base?.resolved ? '' : ' (unresolved)'}` : base?.$case === 'stageIndex' ? `stage ${stageName(base.value)}` : 'scratch';
    out.write(`\nstage ${stage.index}${stage.name ? ` (${stage.name})` : ''} FROM ${from}${stage.base?.platform ? ` --platform=${stage.base.platform}` : ''}\n`);
    for (const step of stage.steps) out.write(stepLine(step) + '\n');
  }
  const image = plan.image;
  if (image) {
    out.write('\nimage:\n');
    const show = (label: string, value: unknown, empty: boolean): void => {
      if (!empty) out.write(`  ${label.padEnd(12)} ${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
    };
    show('entrypoint', image.entrypoint, image.entrypoint.length === 0);
    show('cmd', image.cmd, image.cmd.length === 0);
    show('user', image.user, image.user === '');
    show('workdir', image.workingDir, image.workingDir === '');
    show('env', image.env, image.env.length === 0);
    show('ports', image.exposedPorts, image.exposedPorts.length === 0);
    show('volumes', image.volumes, image.volumes.length === 0);
    show('labels', image.labels, Object.keys(image.labels).length === 0);
    show('stopsignal', image.stopSignal, image.stopSignal === '');
    show('healthcheck', image.healthcheck?.test, !image.healthcheck);
    show('onbuild', image.onbuild, image.onbuild.length === 0);
  }
  if (plan.contextSources.length) out.write(`\ncontext: ${plan.contextSources.join(' ')}\n`);
  if (plan.secrets.length) out.write(`secrets: ${plan.secrets.join(' ')}\n`);
  out.write(`cache key: ${plan.cacheKey}\n`);
}

/** The Dockerfile's text ("-" is stdin), or an error that says which file and what to do. */
function readDockerfile(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`no Dockerfile at ${file}: give its path with -f PATH (or -f - to read stdin)`);
    if (code === 'EISDIR') throw new Error(`${file} is a directory: -f takes the Dockerfile itself (e.g. -f ${file.replace(/\/$/, '')}/Dockerfile)`);
    throw new Error(`cannot read the Dockerfile ${file}: ${(error as Error).message}`);
  }
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('plan', usage, {
    args: argv,
    options: {
      file: { type: 'string', short: 'f', default: 'Dockerfile' },
      'build-arg': { type: 'string', multiple: true },
      target: { type: 'string', default: '' },
      json: { type: 'boolean', default: false },
      planner: { type: 'string', default: process.env.KINDLING_PLANNER_ADDR ?? '' },
      ...tlsOptions,
    },
  });
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  let dockerfile: string;
  let args: Record<string, string>;
  try {
    dockerfile = readDockerfile(values.file);
    args = parseBuildArgs(values['build-arg']);
  } catch (error) {
    process.stderr.write(`kindling plan: ${(error as Error).message}\n`);
    return 2;
  }
  const file = values.file === '-' ? 'Dockerfile' : values.file;
  let response: PlanBuildResponse;
  try {
    const tls = tlsFilesOf(values);
    response = values.planner ? await planRemotely(values.planner, tls, dockerfile, file, args, values.target) : planLocally(dockerfile, file, args, values.target);
  } catch (error) {
    const e = error as { code?: number | string; details?: unknown; message: string };
    // A DomainError (an unreadable TLS file) has an array of details; a grpc-js error a string.
    const reason = (typeof e.details === 'string' ? e.details : e.message).replace(/\s*Resolution note:\s*$/, '');
    const hint = e.code === status.UNAVAILABLE ? ' (is the planner running there? without --planner and KINDLING_PLANNER_ADDR, kindling plan works in-process)' : '';
    process.stderr.write(`kindling plan: planner ${values.planner}: ${reason}${hint}\n`);
    return 1;
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(PlanBuildResponse.toJSON(response), null, 2) + '\n');
    return response.plan ? 0 : 1;
  }
  if (response.plan) printPlan(BuildPlan.fromPartial(response.plan), process.stdout);
  const diagnostics = response.diagnostics;
  const errors = diagnostics.filter((d) => d.severity === Severity.SEVERITY_ERROR);
  const warnings = diagnostics.filter((d) => d.severity === Severity.SEVERITY_WARNING);
  if (warnings.length) process.stderr.write(`\n${warnings.map((d) => `warning: ${location(d)}: ${d.message}`).join('\n')}\n`);
  if (errors.length) {
    process.stderr.write(`${errors.map((d) => `error: ${location(d)}: ${d.message}`).join('\n')}\n${file}: ${errors.length} error(s), no plan\n`);
    return 1;
  }
  return 0;
}
