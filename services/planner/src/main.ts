import { createEventBus, createLogger, runMain, serveUntilSignal, startConfiguredMetrics } from '@kindling/runtime';
import { GrpcBuildContextSource } from './adapters/clients/fetcher-client.ts';
import { GrpcBuildGuest } from './adapters/clients/provisioner-client.ts';
import { VmHostPool } from './adapters/placement/vm-host-pool.ts';
import { registerBuildsGauge, stepDurationObserver } from './adapters/metrics/planner-metrics.ts';
import { VmmImageCatalog } from './adapters/vmm-image-catalog.ts';
import { clientTls, loadPlannerConfig } from './config.ts';
import { BuildCoordinator } from './execution/build-coordinator.ts';
import { StepCache } from './execution/step-cache.ts';
import { recoverBuilds } from './records/build-recovery.ts';
import { openPlannerRecords } from './records/open-records.ts';
import { startPlannerService } from './server.ts';
import { vmmEndpointsOf } from './vmm-endpoints.ts';

runMain(async () => {
  const config = loadPlannerConfig();
  const logger = createLogger('planner', config.logLevel);
  const bus = await createEventBus(config.natsUrl, logger);
  const tls = clientTls(config);
  const context = new GrpcBuildContextSource(config.fetcherAddress, tls);
  const vmHosts = new VmHostPool(vmmEndpointsOf(config), { tls, timeoutMs: config.placementTimeout, log: logger.child({ component: 'placement' }) });
  const guest = new GrpcBuildGuest(config.provisionerAddress, tls);
  const records = await openPlannerRecords(config, logger);
  const cache = new StepCache((signal) => vmHosts.reachableHosts(signal), records.lastUse, config.cacheMaxBytes, logger.child({ component: 'step-cache' }));
  const builds = new BuildCoordinator(
    { context, vmHost: vmHosts, guest, cache, observer: stepDurationObserver() },
    bus,
    {
      sshReadyTimeoutMs: config.sshReadyTimeout,
      stopTimeoutMs: config.stopTimeout,
      extraDiskBytes: config.extraDiskBytes,
      maxParallelStages: config.maxParallelStages,
      maxConcurrentBoots: config.maxConcurrentBoots,
      transferDiskBytes: config.transferDiskBytes,
      defaultTimeoutMs: config.buildTimeout,
    },
    logger,
    records.builds,
  );
  // before serving: GetBuild must never show a build of the last run as still running
  const recovery = await recoverBuilds({ records: records.builds, bus, vmHost: vmHosts.hosts, guest, log: logger });
  const running = await startPlannerService(config, { logger, builds, cache, catalog: new VmmImageCatalog(vmHosts) });
  registerBuildsGauge(builds, logger);
  const metrics = await startConfiguredMetrics(config, logger);
  running.health.setServing(true);
  serveUntilSignal(running, logger, async () => {
    await metrics?.close();
    await recovery.stop();
    await builds.shutdown();
    await records.close();
    for (const client of [context, vmHosts, guest]) client.close();
    await bus.close();
  });
});
