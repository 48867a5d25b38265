/**
 * The build use cases behind CreateBuild, GetBuild, ListBuilds, CancelBuild and WatchBuild. Builds run
 * in the background; their records are kept in a BuildRecordStore (saved on every state and step
 * change, so they outlive the process), the event history lives on the bus, and every change is an
 * event on kindling.build.<id>.*.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { BuildEvent, BuildState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { Build, CreateBuildRequest } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, startTraceScope, type EventBus, type Logger } from '@kindling/runtime';
import { BucketBuildRecords } from '../records/build-records.ts';
import type { BuildRecordStore } from '../records/ports.ts';
import { RecordSavingBus, RecordWriter } from '../records/record-writer.ts';
import { BuildEventLog, buildSubjects, terminalStates } from './build-events.ts';
import { BuildRun, type BuildRunSettings, type BuildServices } from './build-runner.ts';

const imageRefPattern = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$/;

interface ActiveBuild {
  /** The live record: the build run changes it in place, the store has it as of its last save. */
  readonly record: Build;
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

export class BuildCoordinator {
  private readonly active = new Map<string, ActiveBuild>();

  constructor(
    private readonly services: BuildServices,
    private readonly bus: EventBus,
    private readonly settings: BuildRunSettings & { defaultTimeoutMs: number },
    private readonly log: Logger,
    /** Default: in memory, gone with the process. */
    private readonly records: BuildRecordStore = new BucketBuildRecords(),
  ) {}

  async create(request: CreateBuildRequest): Promise<Build> {
    if (!request.source?.source) throw new InvalidArgumentError('source: give a Dockerfile, a context path, a Dockerfile URL, a git URL, a tarball URL or an upload id (FetcherService.UploadContext)');
    if (!imageRefPattern.test(request.tag)) {
      throw new InvalidArgumentError(`tag: "${request.tag}" is not an image reference such as "myapp:1.0" (lower-case name, optional :tag)`);
    }
    const tag = request.tag.includes(':') ? request.tag : `${request.tag}:latest`;
    const secrets = await this.readSecrets(request);
    const id = randomUUID().replace(/-/g, '');
    // One build is one trace: a span under CreateBuild's (so in the caller's trace when it sent a
    // traceparent), re-entered for the run below, which goes on after CreateBuild has answered.
    const trace = startTraceScope('build', { 'kindling.build.id': id, 'kindling.build.tag': tag });
    const sanitized: CreateBuildRequest = { ...request, tag, secrets: request.secrets.map((s) => ({ id: s.id, value: undefined })) };
    const record: Build = {
      id,
      state: BuildState.BUILD_STATE_QUEUED,
      request: sanitized,
      imageRef: '',
      created: new Date(),
      vmId: '',
      vmmHost: '',
      stepsDone: 0,
      stepsTotal: 0,
      lastSequence: '0',
      traceId: trace.traceId,
    };
    record.lastSequence = '1';
    // saved before anything runs: a planner that dies from here on finds the build on its next start
    await this.records.put(record);
    const log = this.log.child({ buildId: id, trace_id: trace.traceId });
    const writer = new RecordWriter(record, this.records, log);
    const events = new BuildEventLog(id, new RecordSavingBus(this.bus, writer), (error) => log.error({ err: error }, 'could not publish a build event'));
    events.state({ state: BuildState.BUILD_STATE_QUEUED, previousState: BuildState.BUILD_STATE_UNSPECIFIED, imageRef: '', vmId: '' });
    const timeoutMs = request.timeout ? Number(request.timeout.seconds) * 1000 + request.timeout.nanos / 1e6 : this.settings.defaultTimeoutMs;
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(timeoutMs)]);
    const run = new BuildRun(record, sanitized, secrets, this.services, this.settings, events, log);
    const done = trace
      .run(() => run.run(signal))
      .then(() => writer.flushed())
      .finally(() => {
        trace.end(record.error?.message);
        this.active.delete(id);
      });
    this.active.set(id, { record, controller, done });
    log.info({ tag, source: request.source.source.$case }, 'build created');
    return record;
  }

  private async readSecrets(request: CreateBuildRequest): Promise<Map<string, Buffer>> {
    const secrets = new Map<string, Buffer>();
    for (const secret of request.secrets) {
      const value = secret.value;
      if (!secret.id) throw new InvalidArgumentError('secrets: every secret needs an id');
      if (value?.$case === 'data') secrets.set(secret.id, Buffer.from(value.value));
      else if (value?.$case === 'env') {
        const fromEnv = process.env[value.value];
        if (fromEnv === undefined) throw new FailedPreconditionError(`secret "${secret.id}": environment variable ${value.value} is not set on the planner`);
        secrets.set(secret.id, Buffer.from(fromEnv));
      } else if (value?.$case === 'file') {
        secrets.set(
          secret.id,
          await readFile(value.value).catch((error: Error) => {
            throw new FailedPreconditionError(`secret "${secret.id}": cannot read ${value.value}: ${error.message}`);
          }),
        );
      } else throw new InvalidArgumentError(`secret "${secret.id}": give its data, an environment variable or a file`);
    }
    return secrets;
  }

  async get(id: string): Promise<Build> {
    const record = this.active.get(id)?.record ?? (await this.records.get(id));
    if (!record) throw new NotFoundError(`build ${id} not found`);
    return record;
  }

  async list(pageSize: number, pageToken: string, state: BuildState): Promise<{ builds: Build[]; nextPageToken: string }> {
    const size = Math.min(pageSize > 0 ? pageSize : 50, 500);
    const offset = pageToken === '' ? 0 : Number.parseInt(pageToken, 10);
    if (!Number.isInteger(offset) || offset < 0) throw new InvalidArgumentError(`page_token "${pageToken}" is not one this server returned`);
    const all = (await this.records.list())
      .map((stored) => this.active.get(stored.id)?.record ?? stored)
      .filter((b) => state === BuildState.BUILD_STATE_UNSPECIFIED || b.state === state)
      .sort((a, b) => (b.created?.getTime() ?? 0) - (a.created?.getTime() ?? 0));
    const builds = all.slice(offset, offset + size);
    return { builds, nextPageToken: offset + size < all.length ? String(offset + size) : '' };
  }

  /** How many builds there are in each state (every record, with the running ones as they are now). */
  async countByState(): Promise<Map<BuildState, number>> {
    const counts = new Map<BuildState, number>();
    for (const stored of await this.records.list()) {
      const state = (this.active.get(stored.id)?.record ?? stored).state;
      counts.set(state, (counts.get(state) ?? 0) + 1);
    }
    return counts;
  }

  async cancel(id: string, reason: string): Promise<Build> {
    const record = await this.get(id);
    const active = this.active.get(id);
    if (active) {
      active.controller.abort(new Error(reason || 'cancelled by request'));
      await active.done;
    }
    return record;
  }

  /** Replays a build's events after afterSequence, then follows new ones until the build ends. */
  async watch(id: string, afterSequence: number, follow: boolean, send: (event: BuildEvent) => Promise<void>, signal: AbortSignal): Promise<void> {
    const record = await this.get(id);
    const subjects = buildSubjects(id);
    const live: BuildEvent[] = [];
    let wake: (() => void) | undefined;
    const subscription = follow
      ? this.bus.subscribe(subjects.all, (message) => {
          live.push(BuildEvent.decode(message.data));
          wake?.();
        })
      : undefined;
    let last = afterSequence;
    let ended = false;
    const deliver = async (event: BuildEvent): Promise<void> => {
      const sequence = Number(event.sequence);
      if (sequence <= last) return;
      last = sequence;
      await send(event);
      if (event.payload?.$case === 'state' && terminalStates.has(event.payload.value.state)) ended = true;
    };
    try {
      for await (const message of this.bus.history(subjects.all, signal)) await deliver(BuildEvent.decode(message.data));
      if (!follow || terminalStates.has(record.state) && Number(record.lastSequence) <= last) return;
      while (!ended) {
        signal.throwIfAborted();
        const next = live.shift();
        if (next) {
          await deliver(next);
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
        wake = undefined;
      }
    } finally {
      subscription?.unsubscribe();
    }
  }

  /** Cancels running builds (their VMs are removed) and waits for them. */
  async shutdown(): Promise<void> {
    for (const build of this.active.values()) build.controller.abort(new Error('the planner is shutting down'));
    await Promise.all([...this.active.values()].map((b) => b.done));
  }
}
