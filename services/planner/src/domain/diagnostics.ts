/** Collecting every error and warning of a plan, each at its instruction's line and column. */
import { CommandError } from './instructions.ts';
import { physicalPosition, type InstructionSource } from './instruction-source.ts';
import type { PlanDiagnostic } from './plan.ts';

export type Located = Pick<InstructionSource, 'line' | 'column' | 'keyword' | 'endLine'> & Partial<Pick<InstructionSource, 'segments'>>;

/** A column counted along the logical line points into a continuation line: report that line. */
function located(src: Located, rule: string, message: string, severity: 'error' | 'warning', column?: number): PlanDiagnostic {
  const at = column !== undefined && src.segments ? physicalPosition({ line: src.line, column: src.column, segments: src.segments }, column) : { line: src.line, column: column ?? src.column };
  const d: PlanDiagnostic = { line: at.line, column: at.column, instruction: src.keyword, message, severity, rule };
  if (src.endLine > src.line) d.endLine = src.endLine;
  return d;
}

export class Diagnostics {
  readonly list: PlanDiagnostic[] = [];
  error(src: Located, rule: string, message: string, column?: number): void {
    this.list.push(located(src, rule, message, 'error', column));
  }
  warn(src: Located, rule: string, message: string): void {
    this.list.push(located(src, rule, message, 'warning'));
  }
  file(rule: string, message: string, severity: 'error' | 'warning', line = 0): void {
    this.list.push({ line, column: line === 0 ? 0 : 1, instruction: '', message, severity, rule });
  }
  get hasErrors(): boolean {
    return this.list.some((d) => d.severity === 'error');
  }
}

export function commandError(diags: Diagnostics, src: InstructionSource, err: unknown): void {
  if (err instanceof CommandError) diags.error(src, err.rule, `${src.keyword}: ${err.message}`, err.column);
  else throw err;
}
