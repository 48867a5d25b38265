/**
 * `--build-arg` values as docker build reads them: `K=V`, or a bare `K` that takes K's value from
 * this process's environment (and is left out when K is not set there).
 */
export function parseBuildArgs(values: readonly string[] | undefined, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values ?? []) {
    const eq = value.indexOf('=');
    const key = eq < 0 ? value : value.slice(0, eq);
    if (key === '') throw new Error(`--build-arg "${value}": expected KEY=VALUE or KEY (to pass KEY from the environment)`);
    if (eq >= 0) out[key] = value.slice(eq + 1);
    else if (env[key] !== undefined) out[key] = env[key];
  }
  return out;
}
