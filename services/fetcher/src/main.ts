import { createLogger, runMain, serveUntilSignal, startConfiguredMetrics } from '@kindling/runtime';
import { loadFetcherConfig } from './config.ts';
import { startFetcherService } from './server.ts';

runMain(async () => {
  const config = loadFetcherConfig();
  const logger = createLogger('fetcher', config.logLevel);
  const running = await startFetcherService(config, { logger });
  const metrics = await startConfiguredMetrics(config, logger);
  running.health.setServing(true);
  serveUntilSignal(running, logger, async () => {
    await metrics?.close();
  });
});
