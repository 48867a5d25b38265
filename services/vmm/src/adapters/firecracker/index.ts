/** The Firecracker driver: what main.ts and tests import. */
export { FirecrackerDriver, type DriverLog, type FirecrackerDriverOptions } from './driver.ts';
export {
  defaultFirecrackerConfig,
  firecrackerSettings,
  parseFirecrackerConfig,
  readFirecrackerConfig,
  type FirecrackerConfig,
  type FirecrackerSetting,
} from './config.ts';
export { FirecrackerApiClient } from './api-client.ts';
export { FirecrackerApiError, FirecrackerDriverError } from './errors.ts';
