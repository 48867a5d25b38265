/**
 * Stages and how they depend on each other: `FROM <stage>`, `COPY --from=<name|index>` and
 * `RUN --mount=from=<stage>`. Names resolve as BuildKit resolves them: a FROM sees only earlier
 * stages, a --from sees every stage, and a --from that names no stage is an image.
 */
import type { ArgCommand, Command, CopyCommand, FromCommand, RunCommand } from './instructions.ts';
import { mountFrom } from './run-mounts.ts';

export interface Stage {
  index: number;
  name: string;
  from: FromCommand;
  commands: Command[];
  /** FROM after expansion with the global args. */
  baseName: string;
  platform: string;
  baseStage?: number;
  /** Stage index (or image reference) each --from of this stage resolves to, keyed by the command. */
  fromRefs: Map<Command, SourceRef[]>;
  deps: Map<number, Command>;
}

export type SourceRef = { kind: 'stage'; index: number } | { kind: 'image'; reference: string } | { kind: 'invalid'; message: string };

export interface StageGraphProblem {
  command: Command;
  message: string;
}

export function findStageByName(stages: readonly Stage[], name: string, before = Infinity): Stage | undefined {
  const lower = name.toLowerCase();
  return stages.find((s) => s.index < before && s.name !== '' && s.name === lower);
}

/** Resolves a `--from` / mount `from=` value (already expanded) to a stage or an image. */
export function resolveFrom(stages: readonly Stage[], value: string): SourceRef {
  // A number as Go's strconv.Atoi reads one (a sign is allowed) is a stage index, as in BuildKit.
  if (/^[+-]?\d+$/.test(value)) {
    const index = Number(value);
    if (index < 0 || index >= stages.length) return { kind: 'invalid', message: `invalid stage index ${index}: the Dockerfile has ${stages.length} stage(s), numbered from 0` };
    return { kind: 'stage', index };
  }
  const stage = findStageByName(stages, value);
  return stage ? { kind: 'stage', index: stage.index } : { kind: 'image', reference: value };
}

export function fromValuesOf(command: Command): string[] {
  if (command.kind === 'COPY') return (command as CopyCommand).from !== undefined ? [(command as CopyCommand).from as string] : [];
  if (command.kind === 'RUN') return (command as RunCommand).mounts.map(mountFrom).filter((v): v is string => v !== undefined);
  return [];
}

/** The stages the target needs, dependencies first (the order a build executes them). */
export function executionOrder(stages: readonly Stage[], target: number): number[] {
  const order: number[] = [];
  const seen = new Set<number>();
  const visit = (index: number): void => {
    if (seen.has(index)) return;
    seen.add(index);
    const stage = stages[index] as Stage;
    const deps = [...stage.deps.keys()];
    if (stage.baseStage !== undefined) deps.push(stage.baseStage);
    for (const dep of deps.sort((a, b) => a - b)) visit(dep);
    order.push(index);
  };
  visit(target);
  return order;
}

/** The first dependency cycle found: the stage it starts from and the commands that close the loop. */
export function findCycle(stages: readonly Stage[]): { stage: Stage; commands: Command[] } | undefined {
  const visited = new Set<number>();
  const onPath = new Set<number>();
  const visit = (stage: Stage, chain: Command[]): Command[] | undefined => {
    if (visited.has(stage.index)) return undefined;
    visited.add(stage.index);
    onPath.add(stage.index);
    for (const [dep, command] of stage.deps) {
      const next = [...chain, command];
      if (onPath.has(dep)) return next;
      const found = visit(stages[dep] as Stage, next);
      if (found) return found;
    }
    onPath.delete(stage.index);
    return undefined;
  };
  for (const stage of stages) {
    const commands = visit(stage, []);
    if (commands) return { stage, commands };
  }
  return undefined;
}

export type { ArgCommand };
