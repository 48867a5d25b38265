/**
 * A build's event log: numbers events per build without gaps and publishes them, binary-encoded
 * kindling.events.v1.BuildEvent, on kindling.build.<id>.{state,step,log}.
 */
import {
  BuildEvent,
  BuildState,
  LogStream,
  type BuildStateChanged,
  type ErrorInfo,
  type StepEvent,
} from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { EventBus } from '@kindling/runtime';

export const terminalStates: ReadonlySet<BuildState> = new Set([
  BuildState.BUILD_STATE_SUCCEEDED,
  BuildState.BUILD_STATE_FAILED,
  BuildState.BUILD_STATE_CANCELLED,
]);

export function buildSubjects(buildId: string): { all: string; state: string; step: string; log: string } {
  const base = `kindling.build.${buildId}`;
  return { all: `${base}.>`, state: `${base}.state`, step: `${base}.step`, log: `${base}.log` };
}

export class BuildEventLog {
  private sequence = 0;
  /** Publishes are chained so the bus sees them in sequence order. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly buildId: string,
    private readonly bus: EventBus,
    private readonly onPublishError: (error: unknown) => void,
  ) {}

  get lastSequence(): number {
    return this.sequence;
  }

  private publish(kind: 'state' | 'step' | 'log', payload: BuildEvent['payload']): void {
    const event: BuildEvent = { buildId: this.buildId, sequence: String(++this.sequence), time: new Date(), payload };
    const data = BuildEvent.encode(event).finish();
    const subject = buildSubjects(this.buildId)[kind];
    this.chain = this.chain.then(() => this.bus.publish(subject, data)).catch(this.onPublishError);
  }

  state(change: BuildStateChanged): void {
    this.publish('state', { $case: 'state', value: change });
  }

  step(step: StepEvent): void {
    this.publish('step', { $case: 'step', value: step });
  }

  log(stageIndex: number, stepIndex: number, stream: LogStream, data: Uint8Array): void {
    this.publish('log', { $case: 'log', value: { stageIndex, stepIndex, stream, data: Buffer.from(data) } });
  }

  system(stageIndex: number, stepIndex: number, message: string): void {
    this.log(stageIndex, stepIndex, LogStream.LOG_STREAM_SYSTEM, Buffer.from(`${message}\n`));
  }

  /** Resolves once every event so far is on the bus. */
  flushed(): Promise<void> {
    return this.chain;
  }
}

export function errorInfo(partial: Partial<ErrorInfo> & Pick<ErrorInfo, 'code' | 'message'>): ErrorInfo {
  return { stageIndex: -1, stepIndex: -1, outputTail: '', line: 0, ...partial };
}
