import { createLogger, runMain, serveUntilSignal } from '@kindling/runtime';
import { loadVmmConfig } from './config.ts';
import { startVmmService } from './server.ts';

runMain(async () => {
  const config = loadVmmConfig();
  const logger = createLogger('vmm', config.logLevel);
  const running = await startVmmService(config, { logger });
  running.health.setServing(true);
  serveUntilSignal(running, logger);
});
