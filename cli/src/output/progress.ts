/**
 * `--progress=auto|tty|plain|json`: how build events are shown. plain is a log (build-progress.ts),
 * json one BuildEvent per line (proto3 JSON field names), tty a live line per running step with its
 * elapsed time (tty-progress.ts); auto is tty when stdout is a terminal, plain otherwise.
 */
import { BuildEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { renderBuildEvent } from './build-progress.ts';
import { TtyProgress } from './tty-progress.ts';

export const PROGRESS_MODES = ['auto', 'tty', 'plain', 'json'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

export interface ProgressRenderer {
  event(event: BuildEvent): void;
  /** A line from kindling itself ("=> build <id>"): kept off stdout in json mode, so every stdout line is an event. */
  note(line: string): void;
  /** Stops live redrawing; call once at the end. */
  close(): void;
}

export function isProgressMode(value: string): value is ProgressMode {
  return (PROGRESS_MODES as readonly string[]).includes(value);
}

export function progressRenderer(mode: ProgressMode, out: NodeJS.WriteStream, err: NodeJS.WritableStream = process.stderr): ProgressRenderer {
  const resolved = mode === 'auto' ? (out.isTTY ? 'tty' : 'plain') : mode;
  if (resolved === 'json') {
    return {
      event: (event) => void out.write(`${JSON.stringify(BuildEvent.toJSON(event))}\n`),
      note: (line) => void err.write(`${line}\n`),
      close: () => {},
    };
  }
  if (resolved === 'tty') return new TtyProgress(out);
  return {
    event: (event) => renderBuildEvent(event, out),
    note: (line) => void out.write(`${line}\n`),
    close: () => {},
  };
}
