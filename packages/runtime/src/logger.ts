import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * A pino JSON logger for one service. Level from KINDLING_LOG_LEVEL (default "info"; tests use "silent"
 * unless KINDLING_LOG_LEVEL says otherwise, so test output stays readable).
 */
export function createLogger(service: string, level?: LevelWithSilent): Logger {
  const fromEnv = process.env.KINDLING_LOG_LEVEL as LevelWithSilent | undefined;
  const underTest = process.env.NODE_TEST_CONTEXT !== undefined;
  return pino({
    name: service,
    level: level ?? fromEnv ?? (underTest ? 'silent' : 'info'),
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
