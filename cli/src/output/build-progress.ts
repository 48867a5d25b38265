/** Renders build events as a terminal log, in the spirit of `docker build --progress=plain`. */
import { BuildState, LogStream, StepState, type BuildEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';

export function renderBuildEvent(event: BuildEvent, out: NodeJS.WritableStream): void {
  const payload = event.payload;
  switch (payload?.$case) {
    case 'state': {
      const state = BuildState[payload.value.state].replace('BUILD_STATE_', '').toLowerCase();
      out.write(`=> build ${state}${payload.value.imageRef ? `: ${payload.value.imageRef}` : ''}\n`);
      if (payload.value.error) out.write(`ERROR: ${payload.value.error.message}\n`);
      break;
    }
    case 'step': {
      const step = payload.value;
      const where = `#${step.stageIndex}.${step.stepIndex + 1}`;
      if (step.state === StepState.STEP_STATE_STARTED) out.write(`${where} [line ${step.line}] ${step.instruction}\n`);
      else if (step.state === StepState.STEP_STATE_SUCCEEDED) {
        const seconds = step.duration ? Number(step.duration.seconds) + step.duration.nanos / 1e9 : 0;
        out.write(`${where} DONE ${seconds.toFixed(1)}s\n`);
      } else if (step.state === StepState.STEP_STATE_FAILED) out.write(`${where} ERROR: ${step.error?.message ?? 'failed'}\n`);
      break;
    }
    case 'log': {
      const prefix = payload.value.stream === LogStream.LOG_STREAM_SYSTEM ? '   ' : '   | ';
      const text = Buffer.from(payload.value.data).toString('utf8');
      for (const line of text.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1)) out.write(`${prefix}${line}\n`);
      break;
    }
    default:
      break;
  }
}
