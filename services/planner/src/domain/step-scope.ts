/** What planning a RUN or COPY/ADD step needs from its stage, and what such a step produces. */
import type { StepAction, StepInput } from './plan.ts';
import type { Environment } from './shell-lexer.ts';

export interface StepScope {
  /** Expands a word with the stage's variables (throws CommandError). */
  expand(word: string): string;
  readonly env: Environment;
  readonly workdir: string;
  /** Prepends the SHELL in force to a shell-form command. */
  shellFor(args: string[]): string[];
  /** Runs a value check, turning its error into a CommandError. */
  checked<T>(fn: () => T): T;
  contextInput(pattern: string): StepInput;
  stageInput(index: number): StepInput;
  imageInput(reference: string, line: number): StepInput;
  secret(id: string): void;
}

export interface PlannedAction {
  expanded: string;
  action: StepAction;
  inputs: StepInput[];
  /** What the canonical text does not spell out but the cache key must cover. */
  extra: string;
}
