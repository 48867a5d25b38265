/**
 * Build progress for a terminal: finished steps, state changes and step output scroll up as a log,
 * and below them one live line per running step with its elapsed time, redrawn in place (ANSI
 * cursor-up and erase-line) on every event and every tick.
 */
import { StepState, type BuildEvent, type StepEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { buildEventText } from './build-progress.ts';

const UP_AND_ERASE = '\x1b[1A\x1b[2K';
const TICK_MS = 100;

interface RunningStep {
  readonly label: string;
  readonly startedAt: number;
}

const stepKey = (step: { stageIndex: number; stepIndex: number }): string => `${step.stageIndex}.${step.stepIndex}`;
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

export class TtyProgress {
  private readonly running = new Map<string, RunningStep>();
  private drawnLines = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly out: NodeJS.WritableStream & { columns?: number },
    private readonly now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => this.redraw(''), TICK_MS);
    this.timer.unref();
  }

  event(event: BuildEvent): void {
    const payload = event.payload;
    if (payload?.$case !== 'step') return this.redraw(buildEventText(event));
    const step = payload.value;
    const key = stepKey(step);
    const label = `#${step.stageIndex}.${step.stepIndex + 1} [line ${step.line}] ${step.instruction.split('\n')[0] ?? ''}`;
    if (step.state === StepState.STEP_STATE_STARTED) {
      this.running.set(key, { label, startedAt: this.now() });
      return this.redraw('');
    }
    const started = this.running.get(key);
    this.running.delete(key);
    this.redraw(`${this.fit(label, this.outcome(step, started))}\n${this.errorOf(step)}`);
  }

  note(line: string): void {
    this.redraw(`${line}\n`);
  }

  close(): void {
    clearInterval(this.timer);
    this.running.clear();
    this.redraw('');
  }

  private outcome(step: StepEvent, started: RunningStep | undefined): string {
    if (step.state === StepState.STEP_STATE_CACHED) return 'CACHED';
    if (step.state === StepState.STEP_STATE_SKIPPED) return 'SKIPPED';
    const ms = step.duration ? Number(step.duration.seconds) * 1000 + step.duration.nanos / 1e6 : started ? this.now() - started.startedAt : 0;
    return `${step.state === StepState.STEP_STATE_FAILED ? 'ERROR' : 'DONE'} ${seconds(ms)}`;
  }

  private errorOf(step: StepEvent): string {
    return step.state === StepState.STEP_STATE_FAILED && step.error ? `ERROR: ${step.error.message}\n` : '';
  }

  /** label and suffix on one terminal line: the label is cut short, never the suffix. */
  private fit(label: string, suffix: string): string {
    const width = Math.max(20, (this.out.columns ?? 100) - 1);
    const room = width - suffix.length - 2;
    const shown = label.length > room ? `${label.slice(0, Math.max(0, room - 3))}...` : label;
    return `${shown.padEnd(room)}  ${suffix}`;
  }

  /** Erases the live lines, prints text above where they were, draws them again. */
  private redraw(text: string): void {
    if (text === '' && this.drawnLines === 0 && this.running.size === 0) return;
    const live = [...this.running.values()].map((step) => `${this.fit(step.label, seconds(this.now() - step.startedAt))}\n`);
    this.out.write(`${UP_AND_ERASE.repeat(this.drawnLines)}${text}${live.join('')}`);
    this.drawnLines = live.length;
  }
}
