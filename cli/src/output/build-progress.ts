/** Renders build events as a terminal log, in the spirit of `docker build --progress=plain`. */
import { BuildState, LogStream, StepState, type BuildEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';

/** The log lines of one event (each ending in a newline), or '' for an event the log does not show. */
export function buildEventText(event: BuildEvent): string {
  const payload = event.payload;
  switch (payload?.$case) {
    case 'state': {
      const state = BuildState[payload.value.state].replace('BUILD_STATE_', '').toLowerCase();
      const failure = payload.value.error;
      // the Dockerfile line that failed, as BuildKit names it, when the failure has one
      const error = failure ? `ERROR: ${failure.line > 0 ? `Dockerfile line ${failure.line}: ` : ''}${failure.message}\n` : '';
      return `=> build ${state}${payload.value.imageRef ? `: ${payload.value.imageRef}` : ''}\n${error}`;
    }
    case 'step': {
      const step = payload.value;
      const where = `#${step.stageIndex}.${step.stepIndex + 1}`;
      switch (step.state) {
        case StepState.STEP_STATE_STARTED:
          return `${where} [line ${step.line}] ${step.instruction}\n`;
        case StepState.STEP_STATE_SUCCEEDED: {
          const seconds = step.duration ? Number(step.duration.seconds) + step.duration.nanos / 1e9 : 0;
          return `${where} DONE ${seconds.toFixed(1)}s\n`;
        }
        case StepState.STEP_STATE_CACHED:
          return `${where} [line ${step.line}] ${step.instruction}\n${where} CACHED\n`;
        case StepState.STEP_STATE_FAILED:
          return `${where} ERROR: ${step.error?.message ?? 'failed'}\n`;
        default:
          return '';
      }
    }
    case 'log': {
      const prefix = payload.value.stream === LogStream.LOG_STREAM_SYSTEM ? '   ' : '   | ';
      const text = Buffer.from(payload.value.data).toString('utf8');
      return text
        .split('\n')
        .filter((l, i, all) => l !== '' || i < all.length - 1)
        .map((line) => `${prefix}${line}\n`)
        .join('');
    }
    default:
      return '';
  }
}

export function renderBuildEvent(event: BuildEvent, out: NodeJS.WritableStream): void {
  const text = buildEventText(event);
  if (text !== '') out.write(text);
}
