import { loadConfig, serverSettings, setting, type ConfigOf } from '@kindling/runtime';

export const provisionerSettings = {
  ...serverSettings(50054),
  fetcherAddress: setting.string('host:port of the fetcher whose blobs PutFiles copies (TLS settings are shared)', '127.0.0.1:50052'),
  fetcherCacheDir: setting.string(
    "the fetcher's --cache-dir when it runs on this host: PutFiles reads blobs there directly (still digest-checked), falling back to ReadBlob; empty: always ReadBlob",
    '',
  ),
  waitReadyTimeout: setting.durationMs('how long WaitReady retries when the request gives no timeout', 120_000),
  sshHandshakeTimeout: setting.durationMs('per attempt: TCP connect, SSH handshake and authentication', 20_000),
  sshKeepaliveInterval: setting.durationMs('SSH keepalive interval on kept connections (3 missed close the link)', 5_000),
  insecureAcceptAnyHostKey: setting.boolean('debugging only: let targets skip host key verification (insecure_ignore_host_key)'),
};

export type ProvisionerConfig = ConfigOf<typeof provisionerSettings>;

export function loadProvisionerConfig(argv?: readonly string[], env?: NodeJS.ProcessEnv): ProvisionerConfig {
  return loadConfig('KINDLING_PROVISIONER', provisionerSettings, argv, env);
}
