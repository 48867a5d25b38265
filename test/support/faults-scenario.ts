/**
 * Scenario run inside a sandbox netns by faults.test.ts: on one local suite, builds interrupted by
 * one fault each, and after every build the shared leak auditor's view of the host. Prints JSON:
 * per fault, how the build ended (state, step, error) and what it left.
 *   vm-killed          the build VM's qemu process SIGKILLed while a RUN sleeps in it
 *   guest-sshd-killed  every sshd in the guest killed from inside a RUN (the session drops)
 *   context-404        ADD of a URL that answers 404
 *   context-hang       ADD of a URL whose server never answers, past the fetcher's timeout
 *   vmm-restarted      the vmm SIGKILLed while a RUN sleeps, and started again a second later
 *   provisioner-restarted  the provisioner SIGKILLed while a RUN sleeps (its SSH session dies with it)
 *   nats-restarted     nats-server stopped for 3 s while a RUN prints: events wait, none is lost
 *   cancel-at-commit   CancelBuild sent the moment the build reports COMMITTING
 * With `--soak N` it runs N builds with faults drawn at random and prints a table instead.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BuildState, type BuildEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { BuildServiceClient, type Build, type CreateBuildResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { VmmServiceClient, type ListImagesResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createServiceClient, unaryCall } from '@kindling/runtime';
import { startNatsServer } from '@kindling/runtime/testing';
import { defaultCacheDir } from '@kindling/vmm/baseos';
import { startLocalSuite } from '../../cli/src/local-suite.ts';
import { auditHost, leakCount, type HostLeaks } from './leak-audit.ts';

export interface FaultOutcome {
  fault: string;
  state: string;
  error?: { code: string; message: string; stepIndex: number; line: number };
  /** Whether the build's tag exists in the vmm after it ended. */
  imageExists: boolean;
  /** Whether the fault was injected (the moment it waits for came). */
  injected: boolean;
  /** Whether WatchBuild, followed through the fault, delivered sequences 1..N without a gap. */
  watchedWithoutGap: boolean;
  /** Whether a replay after the end (WatchBuild from 0) gives the same events. */
  replayMatches: boolean;
  leaks: HostLeaks;
}

const workDir = await mkdtemp(join(tmpdir(), 'kindling-faults-'));
const netnsPrefix = `kindling-${process.pid}-`;
const nats = await startNatsServer({ jetstream: true });
// a short fetch timeout so the hanging server's ADD fails in seconds, not the default 30 s
const fetchTimeout = '3s';
const suite = await startLocalSuite({
  workDir,
  cacheDir: defaultCacheDir(),
  subnet: '10.209.0.0/24',
  natsUrl: nats.url,
  extraArgs: { fetcher: ['--headers-timeout', fetchTimeout, '--body-timeout', fetchTimeout] },
});
const planner = createServiceClient(BuildServiceClient, suite.planner);
const vmm = createServiceClient(VmmServiceClient, suite.vmm);
const http = createServer((req, res) => {
  if (req.url?.startsWith('/hang')) return; // never answers: the fetcher's timeout must end it
  res.writeHead(404).end('no such file');
});
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
const httpPort = (http.address() as AddressInfo).port;

/** A service or nats-server restart a fault started: the next build waits for it, as an operator would. */
let restarting: Promise<unknown> = Promise.resolve();
const restartInBackground = (restart: Promise<unknown>): true => {
  restarting = restart;
  return true;
};

async function run(fault: string, dockerfile: string, onEvent: (event: BuildEvent, buildId: string) => boolean): Promise<FaultOutcome> {
  await restarting;
  const tag = `faults/${fault}:1`;
  const { buildId } = await unaryCall<CreateBuildResponse>('planner', (cb) =>
    planner.createBuild({ source: { source: { $case: 'dockerfile', value: dockerfile }, dockerfilePath: '' }, tag, buildArgs: {}, target: '', noCache: true, secrets: [], labels: {}, keepStages: false }, cb),
  );
  let injected = false;
  const watched: number[] = [];
  for await (const { event } of planner.watchBuild({ buildId, afterSequence: '0', follow: true }) as AsyncIterable<{ event: BuildEvent }>) {
    watched.push(Number(event.sequence));
    if (!injected) injected = onEvent(event, buildId);
  }
  const replayed: number[] = [];
  for await (const { event } of planner.watchBuild({ buildId, afterSequence: '0', follow: false }) as AsyncIterable<{ event: BuildEvent }>) {
    replayed.push(Number(event.sequence));
  }
  const build = (await unaryCall<{ build?: Build }>('planner', (cb) => planner.getBuild({ buildId }, cb))).build!;
  const images = await unaryCall<ListImagesResponse>('vmm', (cb) => vmm.listImages({ name: '', includeInternal: true }, cb));
  // the final state is published after the clean-up; give the kernel a moment to reap what it killed
  let leaks = await auditHost({ vmm, workDir, netnsPrefix });
  for (let i = 0; i < 25 && leakCount(leaks) > 0; i++) {
    await sleep(200);
    leaks = await auditHost({ vmm, workDir, netnsPrefix });
  }
  const error = build.error ? { code: build.error.code, message: build.error.message, stepIndex: build.error.stepIndex, line: build.error.line } : undefined;
  return {
    fault,
    state: BuildState[build.state],
    ...(error ? { error } : {}),
    imageExists: images.images.some((i) => `${i.name}:${i.tag}` === tag),
    injected,
    watchedWithoutGap: watched.length > 0 && watched.every((sequence, i) => sequence === i + 1),
    replayMatches: replayed.join() === watched.join(),
    leaks,
  };
}

const logged = (event: BuildEvent, text: string) => event.payload?.$case === 'log' && Buffer.from(event.payload.value.data).toString().includes(text);

interface Fault {
  name: string;
  dockerfile: () => string;
  /** Called with each event until it returns true (the fault is injected). */
  inject: (event: BuildEvent, buildId: string) => boolean;
  /** Whether the build ended as this fault must end it. */
  endedCleanly: (outcome: FaultOutcome) => boolean;
}

const failedAtStep = (outcome: FaultOutcome) => outcome.state === 'BUILD_STATE_FAILED' && !outcome.imageExists && (outcome.error?.stepIndex ?? -1) >= 0 && (outcome.error?.message ?? '') !== '';
const FAULTS: Fault[] = [
  {
    name: 'vm-killed',
    dockerfile: () => 'FROM debian:bookworm\nRUN echo prepared\nRUN echo started && sleep 600\n',
    inject: (event, buildId) => logged(event, 'started') && spawnSync('pkill', ['-KILL', '-f', `qemu-system.*b-${buildId.slice(0, 12)}-0`]).status === 0,
    endedCleanly: failedAtStep,
  },
  {
    name: 'guest-sshd-killed',
    dockerfile: () => 'FROM debian:bookworm\nRUN echo started && sleep 1 && pkill -KILL sshd; sleep 60\n',
    inject: (event) => logged(event, 'started'),
    endedCleanly: failedAtStep,
  },
  {
    name: 'context-404',
    dockerfile: () => `FROM debian:bookworm\nADD http://127.0.0.1:${httpPort}/missing.txt /srv/\n`,
    inject: () => true,
    endedCleanly: (o) => failedAtStep(o) && o.error?.code === 'NOT_FOUND',
  },
  {
    name: 'context-hang',
    dockerfile: () => `FROM debian:bookworm\nRUN echo prepared\nADD http://127.0.0.1:${httpPort}/hang.txt /srv/\n`,
    inject: () => true,
    endedCleanly: (o) => failedAtStep(o) && o.error?.code === 'DEADLINE_EXCEEDED',
  },
  {
    name: 'vmm-restarted',
    dockerfile: () => 'FROM debian:bookworm\nRUN echo started && sleep 8\nRUN echo after > /after.txt\n',
    inject: (event) => logged(event, 'started') && restartInBackground(suite.restart('vmm', 'SIGKILL', 1000)),
    // the guest runs on while its vmm is away: the build carries on when the vmm is back
    endedCleanly: (o) => (o.state === 'BUILD_STATE_SUCCEEDED' && o.imageExists) || failedAtStep(o),
  },
  {
    name: 'provisioner-restarted',
    dockerfile: () => 'FROM debian:bookworm\nRUN echo started && sleep 60\n',
    inject: (event) => logged(event, 'started') && restartInBackground(suite.restart('provisioner', 'SIGKILL', 1000)),
    endedCleanly: failedAtStep,
  },
  {
    name: 'nats-restarted',
    dockerfile: () => 'FROM debian:bookworm\nRUN for i in $(seq 1 16); do echo tick $i; sleep 0.5; done\n',
    inject: (event) => logged(event, 'tick 2') && restartInBackground(nats.restart(3000)),
    endedCleanly: (o) => o.state === 'BUILD_STATE_SUCCEEDED' && o.imageExists && o.watchedWithoutGap && o.replayMatches,
  },
  {
    name: 'cancel-at-commit',
    dockerfile: () => 'FROM debian:bookworm\nRUN echo data > /data.txt\n',
    inject: (event, buildId) => {
      if (event.payload?.$case !== 'state' || event.payload.value.state !== BuildState.BUILD_STATE_COMMITTING) return false;
      planner.cancelBuild({ buildId, reason: 'fault test cancels at commit' }, () => {});
      return true;
    },
    endedCleanly: (o) => (o.state === 'BUILD_STATE_CANCELLED' && !o.imageExists) || (o.state === 'BUILD_STATE_SUCCEEDED' && o.imageExists),
  },
];

const soak = process.argv.indexOf('--soak');
try {
  if (soak < 0) {
    const outcomes: FaultOutcome[] = [];
    for (const fault of FAULTS) outcomes.push(await run(fault.name, fault.dockerfile(), fault.inject));
    process.stdout.write(JSON.stringify({ outcomes, final: await auditHost({ vmm, workDir, netnsPrefix }) }));
  } else {
    // N builds, each with a fault drawn at random; a table per fault, and the totals
    const builds = Number(process.argv[soak + 1] ?? 50);
    const rows = new Map(FAULTS.map((f) => [f.name, { injected: 0, clean: 0, leaks: 0 }]));
    for (let i = 0; i < builds; i++) {
      const fault = FAULTS[Math.floor(Math.random() * FAULTS.length)]!;
      const outcome = await run(fault.name, fault.dockerfile(), fault.inject);
      const row = rows.get(fault.name)!;
      row.injected += outcome.injected ? 1 : 0;
      row.clean += fault.endedCleanly(outcome) ? 1 : 0;
      row.leaks += leakCount(outcome.leaks);
      process.stderr.write(`build ${i + 1}/${builds} ${fault.name}: ${outcome.state} ${outcome.error?.message ?? ''} leaks ${leakCount(outcome.leaks)}\n`);
    }
    const total = [...rows.values()].reduce((t, r) => ({ injected: t.injected + r.injected, clean: t.clean + r.clean, leaks: t.leaks + r.leaks }), { injected: 0, clean: 0, leaks: 0 });
    const line = (name: string, r: { injected: number; clean: number; leaks: number }) => `${name.padEnd(20)} ${String(r.injected).padStart(15)} ${String(r.clean).padStart(22)} ${String(r.leaks).padStart(12)}`;
    const table = [`${'fault'.padEnd(20)} ${'faults injected'.padStart(15)} ${'builds ended cleanly'.padStart(22)} ${'leaks found'.padStart(12)}`, ...[...rows].map(([name, r]) => line(name, r)), line('total', total)];
    process.stdout.write(`${table.join('\n')}\n`);
  }
} finally {
  http.closeAllConnections();
  http.close();
  planner.close();
  vmm.close();
  await suite.stop();
  await nats.stop();
  if (process.env.KINDLING_E2E_LOGS) {
    for (const name of ['planner', 'vmm', 'vmm-2', 'provisioner', 'provisioner-2']) process.stderr.write(await readFile(join(workDir, 'logs', `${name}.log`), 'utf8').catch(() => ''));
  }
  await rm(workDir, { recursive: true, force: true });
}
