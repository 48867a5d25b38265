import { createLogger, runMain, serveUntilSignal, startConfiguredMetrics } from '@kindling/runtime';
import { registerVmsGauge } from './adapters/metrics/vm-metrics.ts';
import { loadVmmConfig } from './config.ts';
import { startVmmService } from './server.ts';

runMain(async () => {
  const config = loadVmmConfig();
  const logger = createLogger('vmm', config.logLevel);
  const running = await startVmmService(config, { logger });
  registerVmsGauge(running.queries, logger);
  const metrics = await startConfiguredMetrics(config, logger);
  running.health.setServing(true);
  serveUntilSignal(running, logger, async () => {
    await metrics?.close();
  });
});
