import { createLogger, runMain, serveUntilSignal, startConfiguredMetrics } from '@kindling/runtime';
import { loadProvisionerConfig } from './config.ts';
import { startProvisionerService } from './server.ts';

runMain(async () => {
  const config = loadProvisionerConfig();
  const logger = createLogger('provisioner', config.logLevel);
  const running = await startProvisionerService(config, { logger });
  const metrics = await startConfiguredMetrics(config, logger);
  running.health.setServing(true);
  serveUntilSignal(running, logger, async () => {
    await metrics?.close();
  });
});
