import { readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HypervisorDriver, StopOutcome, VmLaunchSpec, VmProcessRef } from '../../ports/hypervisor.ts';
import { runCommand } from '../exec/run-command.ts';
import { hostTscKhz, type AccelerationProbe } from './acceleration.ts';
import { isSameProcess, processStartTime, waitForFile, waitForProcessExit } from './host-process.ts';
import { qemuArgv } from './qemu-argv.ts';
import { QmpClient } from './qmp-client.ts';

export interface QemuDriverOptions {
  readonly qemuBinary?: string;
  readonly acceleration: AccelerationProbe;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
}

/**
 * qemu -M microvm as a HypervisorDriver. QEMU daemonizes, so a VM outlives a vmm restart and is
 * re-adopted from its pid, start time and QMP socket; graceful stop is ACPI power-off through QMP.
 */
export class QemuDriver implements HypervisorDriver {
  readonly name = 'qemu' as const;

  constructor(private readonly options: QemuDriverOptions) {}

  async launch(spec: VmLaunchSpec, signal?: AbortSignal): Promise<VmProcessRef> {
    const { accel } = await this.options.acceleration.resolve();
    const qmpSocket = join(spec.runDir, 'qmp.sock');
    const pidFile = join(spec.runDir, 'qemu.pid');
    await rm(qmpSocket, { force: true });
    await rm(pidFile, { force: true });
    const tscKhz = accel === 'tcg' ? await hostTscKhz() : undefined;
    const argv = qemuArgv(spec, {
      accel,
      qmpSocket,
      pidFile,
      binary: this.options.qemuBinary ?? 'qemu-system-x86_64',
      ...(tscKhz ? { tscKhz } : {}),
    });
    const [file, ...args] = inNetns(spec.network?.netnsPath, argv);
    this.options.log?.('launching qemu', { vmId: spec.vmId, accel, argv: [file, ...args].join(' ') });
    try {
      // -daemonize returns once the guest is set up (devices opened), reporting setup errors on stderr.
      await runCommand(file!, args, signal ? { signal } : {});
    } catch (error) {
      throw new Error(`qemu could not start VM ${spec.vmId}: ${(error as Error).message}`, { cause: error });
    }
    const pid = Number((await waitForFile(pidFile, 5000)).trim());
    const startTime = await processStartTime(pid);
    if (!startTime) {
      throw new Error(`qemu for VM ${spec.vmId} exited right after starting; see ${spec.consoleLogPath}`);
    }
    return { driver: 'qemu', pid, details: { qmpSocket, pidFile, startTime, accel } };
  }

  async stop(ref: VmProcessRef, timeoutMs: number): Promise<StopOutcome> {
    if (!(await this.isAlive(ref))) return { graceful: true };
    const deadline = AbortSignal.timeout(timeoutMs);
    try {
      const qmp = await QmpClient.connect(ref.details.qmpSocket ?? '', Math.min(timeoutMs, 3000));
      try {
        // ACPI power button: systemd-logind powers the guest off, and with -no-reboot QEMU then exits.
        await qmp.execute('system_powerdown');
      } finally {
        qmp.close();
      }
      await waitForProcessExit(ref.pid, ref.details.startTime, deadline);
      return { graceful: true };
    } catch {
      // Power button ignored, QMP gone or the deadline passed: the disk may be dirty, but the VM must stop.
      await this.kill(ref);
      return { graceful: false };
    }
  }

  async isAlive(ref: VmProcessRef): Promise<boolean> {
    return isSameProcess(ref.pid, ref.details.startTime);
  }

  async waitForExit(ref: VmProcessRef, signal?: AbortSignal): Promise<void> {
    await waitForProcessExit(ref.pid, ref.details.startTime, signal);
  }

  async cleanup(ref: VmProcessRef | undefined, spec: Pick<VmLaunchSpec, 'vmId' | 'runDir'>): Promise<void> {
    const target = ref ?? (await this.orphan(spec));
    if (target && (await this.isAlive(target))) await this.kill(target);
    await rm(join(spec.runDir, 'qmp.sock'), { force: true });
    await rm(join(spec.runDir, 'qemu.pid'), { force: true });
  }

  /**
   * A qemu whose launch the vmm never recorded (it died between launch and saving the record):
   * found by its pid file, and only if that pid still runs this VM's qemu (-name kindling-<id>).
   */
  private async orphan(spec: Pick<VmLaunchSpec, 'vmId' | 'runDir'>): Promise<VmProcessRef | undefined> {
    const pid = Number((await readFile(join(spec.runDir, 'qemu.pid'), 'utf8').catch(() => '')).trim());
    if (!pid) return undefined;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.split('\0').includes(`kindling-${spec.vmId}`)) return undefined;
    const startTime = await processStartTime(pid);
    return startTime ? { driver: 'qemu', pid, details: { startTime } } : undefined;
  }

  private async kill(ref: VmProcessRef): Promise<void> {
    try {
      process.kill(ref.pid, 'SIGKILL');
    } catch {}
    for (let i = 0; i < 100 && (await this.isAlive(ref)); i++) await sleep(50);
  }
}

/** `ip netns exec` for named namespaces (what operators see in `ip netns list`), nsenter for any other path. */
function inNetns(netnsPath: string | undefined, argv: string[]): string[] {
  if (!netnsPath) return argv;
  const dir = dirname(netnsPath);
  if (dir === '/var/run/netns' || dir === '/run/netns')
    return ['ip', 'netns', 'exec', basename(netnsPath), ...argv];
  return ['nsenter', `--net=${netnsPath}`, '--', ...argv];
}
