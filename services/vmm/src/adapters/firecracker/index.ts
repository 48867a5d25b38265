/** The Firecracker driver: what main.ts and tests import. */
export { FirecrackerDriver, type DriverLog, type FirecrackerDriverOptions } from './driver.ts';
export {
  defaultFirecrackerConfig,
  firecrackerConfigFrom,
  firecrackerSettings,
  loadFirecrackerConfig,
  type FirecrackerConfig,
  type FirecrackerSettingValues,
} from './config.ts';
export { FirecrackerApiClient } from './api-client.ts';
export { FirecrackerApiError, FirecrackerDriverError } from './errors.ts';
