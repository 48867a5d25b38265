import { createLogger, runMain, serveUntilSignal } from '@kindling/runtime';
import { fetcherUsage, loadFetcherConfig } from './config.ts';
import { startFetcherService } from './server.ts';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(fetcherUsage());
  process.exit(0);
}

runMain(async () => {
  const config = loadFetcherConfig();
  const logger = createLogger('fetcher', config.logLevel);
  const running = await startFetcherService(config, { logger });
  running.health.setServing(true);
  serveUntilSignal(running, logger);
});
