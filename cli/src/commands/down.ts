/**
 * `kindling down [--state-dir DIR]`: stops what `kindling up` started there (planner first, the VMs,
 * then the vmm; nats-server last) and removes up.json.
 */
import { parseCommandLine } from '../command-line.ts';
import { DEFAULT_STATE_DIR, liveProcesses, readUpRecord, removeUpRecord, stopHostSuite, upJsonPath } from '../host-suite.ts';

export const describe = 'stop the services kindling up started on this host';

const usage = `usage: sudo npx kindling down [--state-dir DIR] [--timeout SECONDS] [--keep-vms]

Stops the services recorded in <state-dir>/up.json: the planner first (its builds are aborted and their
VMs removed), then the provisioner and the fetcher, then the VMs the vmm runs (powered off) and the
vmm, and nats-server last. Each gets SIGTERM, then SIGKILL after the timeout. Not up: says so, exit 0.

      --state-dir DIR      as given to kindling up (default ${DEFAULT_STATE_DIR})
      --timeout SECONDS    how long each process may take to stop after SIGTERM (default 20)
      --keep-vms           leave the VMs running: the next kindling up adopts them
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('down', usage, {
    args: argv,
    options: {
      'state-dir': { type: 'string', default: DEFAULT_STATE_DIR },
      timeout: { type: 'string', default: '20' },
      'keep-vms': { type: 'boolean' },
    },
  });
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  if (!/^\d+$/.test(values.timeout)) {
    process.stderr.write(`kindling down: --timeout "${values.timeout}": expected a whole number of seconds\n${usage}`);
    return 2;
  }
  const stateDir = values['state-dir'];
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  try {
    const record = await readUpRecord(stateDir);
    if (!record) {
      say(`kindling is not up (no ${upJsonPath(stateDir)})`);
      return 0;
    }
    if (liveProcesses(record).length === 0) {
      await removeUpRecord(stateDir);
      say(`kindling is not up: nothing of ${upJsonPath(stateDir)} runs any more (removed it)`);
      return 0;
    }
    say(`stopping the kindling services (state dir ${stateDir})`);
    const clean = await stopHostSuite(record, { timeoutMs: Number(values.timeout) * 1000, stopVms: !values['keep-vms'], log: (line) => say(`  ${line}`) });
    if (!clean) {
      process.stderr.write(`kindling down: some processes are still running after SIGKILL; ${upJsonPath(stateDir)} is kept\n`);
      return 1;
    }
    await removeUpRecord(stateDir);
    say('kindling is down');
    return 0;
  } catch (error) {
    process.stderr.write(`kindling down: ${(error as Error).message}\n`);
    return 1;
  }
}
