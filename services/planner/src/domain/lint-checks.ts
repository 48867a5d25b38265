/**
 * The `# check=` directive (BuildKit's lint options): `skip=Rule1,Rule2` or `skip=all` silences
 * those lint warnings, `error=true` makes any that remain fail the build. It applies to the
 * warnings that are BuildKit lint rules, not to kindling's own (an unresolved base, a platform).
 */
import type { PlanDiagnostic } from './plan.ts';

/** The BuildKit lint rules the planner reports, under BuildKit's names. */
export const LINT_RULES = new Set(['MaintainerDeprecated', 'UndefinedArgInFrom', 'NoEmptyContinuation', 'JSONArgsRecommended', 'LegacyKeyValueFormat', 'MultipleInstructionsDisallowed', 'FromAsCasing', 'StageNameCasing', 'WorkdirRelativePath', 'RedundantTargetPlatform', 'ReservedStageName', 'ConsistentInstructionCasing', 'SecretsUsedInArgOrEnv', 'InvalidDefaultArgInFrom', 'FromPlatformFlagConstDisallowed']);

export interface LintChecks {
  skipAll: boolean;
  skip: Set<string>;
  errorOnWarning: boolean;
}

/** Reads the directive's value as BuildKit's ParseLintOptions does; throws with the reason when invalid. */
export function parseLintChecks(value: string): LintChecks {
  const checks: LintChecks = { skipAll: false, skip: new Set(), errorOnWarning: false };
  const text = value.trim();
  if (text === '') return checks;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new Error(`invalid check option "${part}" (use skip=<rules>|all, error=true|false, experimental=<rules>|all)`);
    const key = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (key === 'skip') {
      if (v === 'all') checks.skipAll = true;
      else for (const rule of v.split(',')) checks.skip.add(rule.trim());
    } else if (key === 'error') {
      const b = v.toLowerCase();
      if (['1', 't', 'true'].includes(b)) checks.errorOnWarning = true;
      else if (['0', 'f', 'false'].includes(b)) checks.errorOnWarning = false;
      else throw new Error(`failed to parse check option "${part}": error= takes true or false`);
    } else if (key !== 'experimental') {
      throw new Error(`invalid check option "${key}" (use skip=<rules>|all, error=true|false, experimental=<rules>|all)`);
    }
  }
  return checks;
}

/**
 * Drops the skipped lint warnings from `diagnostics` (in place) and returns the rules still
 * reported, sorted, when `error=true` turns them into a failure.
 */
export function applyLintChecks(diagnostics: PlanDiagnostic[], checks: LintChecks): string[] {
  const skipped = (d: PlanDiagnostic): boolean => d.severity === 'warning' && LINT_RULES.has(d.rule) && (checks.skipAll || checks.skip.has(d.rule));
  for (let i = diagnostics.length - 1; i >= 0; i--) if (skipped(diagnostics[i] as PlanDiagnostic)) diagnostics.splice(i, 1);
  if (!checks.errorOnWarning) return [];
  return [...new Set(diagnostics.filter((d) => d.severity === 'warning' && LINT_RULES.has(d.rule)).map((d) => d.rule))].sort();
}
