import { createLogger, runMain, serveUntilSignal } from '@kindling/runtime';
import { loadFetcherConfig } from './config.ts';
import { startFetcherService } from './server.ts';

runMain(async () => {
  const config = loadFetcherConfig();
  const logger = createLogger('fetcher', config.logLevel);
  const running = await startFetcherService(config, { logger });
  running.health.setServing(true);
  serveUntilSignal(running, logger);
});
