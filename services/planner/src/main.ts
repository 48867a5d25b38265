import { createLogger, runMain, serveUntilSignal } from '@kindling/runtime';
import { loadPlannerConfig } from './config.ts';
import { startPlannerService } from './server.ts';

runMain(async () => {
  const config = loadPlannerConfig();
  const logger = createLogger('planner', config.logLevel);
  const running = await startPlannerService(config, { logger });
  running.health.setServing(true);
  serveUntilSignal(running, logger);
});
