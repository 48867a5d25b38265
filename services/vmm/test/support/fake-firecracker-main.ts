/**
 * A stand-in `firecracker` executable for driver tests: accepts Firecracker's command line, serves
 * the spec-checked fake API on --api-sock (under FAKE_FC_ROOT when "jailed"), writes a serial
 * console line on InstanceStart, exits when the guest powers off (SendCtrlAltDel) or on SIGTERM,
 * and prints a `FAKE-REPORT {json}` line (requests and spec violations) to stdout as it exits.
 *
 * Environment: FAKE_FC_ROOT, FAKE_FC_BEHAVIOUR (normal|no-socket|ignore-ctrl-alt-del|exit-at-once),
 * FAKE_FC_FAIL_ON (comma-separated "PUT /path"), FAKE_FC_VERSION (1.16.1|1.7.0), FAKE_FC_UID/GID.
 */
import { join } from 'node:path';
import { FakeFirecrackerApi } from './fake-firecracker-api.ts';
import type { SpecVersion } from './firecracker-spec.ts';

function parseArgs(argv: string[]): { id: string; apiSock: string } {
  let id = 'anonymous-instance';
  let apiSock = '/run/firecracker.socket';
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = (argv[i] ?? '').split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i] ?? '';
    if (flag === '--id') id = value();
    else if (flag === '--api-sock') apiSock = value();
    else if (flag === '--start-time-us' || flag === '--start-time-cpu-us') value();
    else {
      process.stderr.write(`firecracker: unknown argument ${argv[i]}\n`);
      process.exit(1);
    }
  }
  return { id, apiSock };
}

const { id, apiSock } = parseArgs(process.argv.slice(2));
const root = process.env.FAKE_FC_ROOT ?? '/';
const behaviour = process.env.FAKE_FC_BEHAVIOUR ?? 'normal';
if (behaviour === 'exit-at-once') {
  process.stderr.write('firecracker: cannot open /dev/kvm: No such file or directory\n');
  process.exit(1);
}
if (process.env.FAKE_FC_GID) process.setgid?.(Number(process.env.FAKE_FC_GID));
if (process.env.FAKE_FC_UID) process.setuid?.(Number(process.env.FAKE_FC_UID));

let exiting = false;
const api = new FakeFirecrackerApi({
  socketPath: join(root, apiSock),
  id,
  root,
  version: (process.env.FAKE_FC_VERSION ?? '1.16.1') as SpecVersion,
  failOn: (process.env.FAKE_FC_FAIL_ON ?? '').split(',').filter(Boolean),
  onGuestPowerOff: () => {
    if (behaviour !== 'ignore-ctrl-alt-del') void exit(0);
  },
});

async function exit(code: number): Promise<void> {
  if (exiting) return;
  exiting = true;
  await api.close().catch(() => {});
  process.stdout.write(
    `FAKE-REPORT ${JSON.stringify({ requests: api.requests, violations: api.violations, vmConfig: api.vmConfig(), mmds: api.mmds })}\n`,
  );
  process.exit(code);
}

process.on('SIGTERM', () => void exit(143));
if (behaviour === 'no-socket') {
  setInterval(() => {}, 1000);
} else {
  await api.listen();
  const started = setInterval(() => {
    if (api.state === 'Running') {
      process.stdout.write(`[    0.000000] Linux version fake (fake firecracker ${id})\n`);
      clearInterval(started);
    }
  }, 20);
}
