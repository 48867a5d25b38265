/**
 * `kindling up [--state-dir DIR] [--nats|--no-nats]`: starts the four services on this host, detached,
 * on the addresses the other commands use by default, and returns once each answers SERVING.
 */
import { defaultCacheDir } from '@kindling/vmm/baseos';
import { parseCommandLine } from '../command-line.ts';
import {
  DEFAULT_BASE_PORT,
  DEFAULT_NATS_PORT,
  DEFAULT_NETWORK,
  DEFAULT_STATE_DIR,
  findNatsServer,
  hostWarnings,
  liveProcesses,
  readUpRecord,
  removeUpRecord,
  startHostSuite,
  stopHostSuite,
  suiteHealthy,
  upJsonPath,
  type UpRecord,
} from '../host-suite.ts';

export const describe = 'start the four services on this host, detached (kindling down stops them)';

const usage = `usage: sudo npx kindling up [--state-dir DIR] [--nats | --no-nats] [options]

Starts the vmm, fetcher, provisioner and planner as detached processes on 127.0.0.1, waits until each
answers grpc.health.v1 SERVING, and writes <state-dir>/up.json. Already up: says so and exits 0.

      --state-dir DIR      state of every service, logs in DIR/logs (default ${DEFAULT_STATE_DIR})
      --nats               events and planner records in a local nats-server with JetStream
                           (DIR/nats); fails when nats-server is not installed
      --no-nats            the in-process event bus of each service instead
                           (default: --nats when nats-server is installed)
      --base-port N        planner N, fetcher N+1, vmm N+2, provisioner N+3 (default ${DEFAULT_BASE_PORT}:
                           the addresses the other commands use without flags); 0 picks free ports
      --nats-port N        nats-server's port (default ${DEFAULT_NATS_PORT}); 0 picks a free one
      --cache-dir DIR      base-OS cache the vmm registers (default $KINDLING_CACHE_DIR or /var/cache/kindling)
      --network NAME       CNI network VMs join (default ${DEFAULT_NETWORK}, as kindling cni install writes it)
      --cni-conf-dir DIR   where that conflist is (default the vmm's: $KINDLING_VMM_CNI_CONF_DIR or /etc/cni/conf.d)

Prepare the host once with: bash deploy/local/setup.sh
`;

function wholeNumber(flag: string, raw: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) > 65535) throw new Error(`--${flag} "${raw}": expected a port number (0-65535)`);
  return Number(raw);
}

/** The addresses, and what to set when they are not the ones the other commands default to. */
export function describeSuite(record: UpRecord): string {
  const lines: string[] = [];
  for (const name of ['planner', 'fetcher', 'vmm', 'provisioner'] as const) {
    const service = record.services[name];
    if (service) lines.push(`  ${name.padEnd(12)} ${service.address.padEnd(16)} pid ${String(service.pid).padEnd(8)} log ${service.log}`);
  }
  lines.push(record.nats ? `  ${'nats-server'.padEnd(12)} ${record.nats.url.padEnd(16)} pid ${String(record.nats.pid).padEnd(8)} log ${record.nats.log}` : '  events       in-process bus of each service (no nats-server)');
  const defaults: Record<string, string> = { KINDLING_PLANNER_ADDR: '127.0.0.1:50051', KINDLING_FETCHER_ADDR: '127.0.0.1:50052', KINDLING_VMM_ADDR: '127.0.0.1:50053' };
  const exports = Object.entries(record.env).map(([variable, value]) => `${variable}=${value}`);
  const allDefaults = Object.entries(record.env).every(([variable, value]) => defaults[variable] === value);
  lines.push(
    allDefaults
      ? 'These are the default addresses: kindling build, run, ps, ... need no flags. From elsewhere, set:'
      : 'The other commands find the services once these are set (or give --planner, --fetcher, --vmm):',
    `  export ${exports.join(' ')}`,
  );
  return `${lines.join('\n')}\n`;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('up', usage, {
    args: argv,
    options: {
      'state-dir': { type: 'string', default: DEFAULT_STATE_DIR },
      nats: { type: 'boolean' },
      'no-nats': { type: 'boolean' },
      'base-port': { type: 'string', default: String(DEFAULT_BASE_PORT) },
      'nats-port': { type: 'string', default: String(DEFAULT_NATS_PORT) },
      'cache-dir': { type: 'string', default: defaultCacheDir() },
      network: { type: 'string', default: DEFAULT_NETWORK },
      'cni-conf-dir': { type: 'string' },
    },
  });
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  const fail = (message: string, code = 1): number => {
    process.stderr.write(`kindling up: ${message}\n${code === 2 ? usage : ''}`);
    return code;
  };
  if (values.nats && values['no-nats']) return fail('--nats and --no-nats exclude each other', 2);
  let basePort: number, natsPort: number;
  try {
    basePort = wholeNumber('base-port', values['base-port']);
    natsPort = wholeNumber('nats-port', values['nats-port']);
  } catch (error) {
    return fail((error as Error).message, 2);
  }
  if (basePort > 65532) return fail(`--base-port ${basePort}: the four ports must stay below 65536`, 2);
  const stateDir = values['state-dir'];
  const say = (line: string): void => void process.stdout.write(`${line}\n`);

  try {
    const existing = await readUpRecord(stateDir);
    if (existing) {
      if (await suiteHealthy(existing)) {
        say(`kindling is already up (state dir ${stateDir}, since ${existing.startedAt})`);
        process.stdout.write(describeSuite(existing));
        return 0;
      }
      const live = liveProcesses(existing);
      say(
        live.length === 0
          ? `${upJsonPath(stateDir)} is left from a run that is gone: starting afresh`
          : `kindling was partly up (running: ${live.map((p) => p.name).join(', ')}): stopping those and starting afresh`,
      );
      if (!(await stopHostSuite(existing, { timeoutMs: 20_000, stopVms: false, log: (line) => say(`  ${line}`) })))
        return fail(`some processes of ${upJsonPath(stateDir)} would not stop; stop them by hand`);
      await removeUpRecord(stateDir);
    }

    let natsServer: string | undefined;
    if (!values['no-nats']) {
      natsServer = findNatsServer();
      if (natsServer === undefined && values.nats) return fail('--nats: nats-server is not installed (apt-get install nats-server, or bash deploy/local/setup.sh)');
    }
    if (process.getuid?.() !== 0) say('warning: not root: the vmm cannot boot VMs or set up their network (run kindling up with sudo)');
    const cniConfDir = values['cni-conf-dir'] ?? process.env.KINDLING_VMM_CNI_CONF_DIR ?? '/etc/cni/conf.d';
    for (const warning of hostWarnings({ cacheDir: values['cache-dir'], network: values.network, cniConfDir })) say(`warning: ${warning}`);

    say(`starting the kindling services (state dir ${stateDir})`);
    const record = await startHostSuite({
      stateDir,
      cacheDir: values['cache-dir'],
      basePort,
      natsPort,
      natsServer,
      network: values.network,
      cniConfDir: values['cni-conf-dir'],
      log: (line) => say(`  ready: ${line}`),
    });
    say(`kindling is up (${upJsonPath(stateDir)}); stop it with: kindling down${stateDir === DEFAULT_STATE_DIR ? '' : ` --state-dir ${stateDir}`}`);
    process.stdout.write(describeSuite(record));
    return 0;
  } catch (error) {
    return fail((error as Error).message);
  }
}
