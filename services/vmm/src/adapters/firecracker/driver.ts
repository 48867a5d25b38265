/**
 * The Firecracker hypervisor driver: jails Firecracker (by default), configures the VM through the
 * API, starts it, stops it gracefully (SendCtrlAltDel, then SIGTERM, then SIGKILL) and removes
 * everything it created.
 */
import { chown, copyFile, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { HypervisorDriver, StopOutcome, VmLaunchSpec, VmProcessRef } from '../../ports/hypervisor.ts';
import { FirecrackerApiClient } from './api-client.ts';
import { allPossibleCgroupDirs, detectCgroupHost, removeCgroupDirs } from './cgroups.ts';
import type { FirecrackerConfig } from './config.ts';
import { FirecrackerDriverError } from './errors.ts';
import { assertValidJailId, execFileName, resolveExecFile } from './jailer-argv.ts';
import { jailLayout, removeJail } from './jail-layout.ts';
import { planDirectLaunch, planJailedLaunch, type LaunchPlan } from './launch-plan.ts';
import { vmConfigurationRequests, assertLaunchable } from './vm-configuration.ts';
import {
  isProcessAlive,
  sendSignal,
  startDetached,
  waitForProcessExit,
  waitForSocket,
  type StartedProcess,
} from './vmm-process.ts';

/** The subset of a pino logger the driver uses. */
export interface DriverLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface FirecrackerDriverOptions {
  readonly log?: DriverLog;
  /** Where to read cgroup mounts (tests point it at a fixture). */
  readonly procMountsPath?: string;
  readonly nsenterPath?: string;
}

const silentLog: DriverLog = { info: () => {}, warn: () => {} };

export class FirecrackerDriver implements HypervisorDriver {
  readonly name = 'firecracker' as const;
  readonly #config: FirecrackerConfig;
  readonly #log: DriverLog;
  readonly #options: FirecrackerDriverOptions;

  constructor(config: FirecrackerConfig, options: FirecrackerDriverOptions = {}) {
    this.#config = config;
    this.#options = options;
    this.#log = options.log ?? silentLog;
  }

  async launch(spec: VmLaunchSpec, signal?: AbortSignal): Promise<VmProcessRef> {
    assertLaunchable(spec);
    assertValidJailId(spec.vmId);
    const plan = this.#config.useJailer
      ? await planJailedLaunch(spec, this.#config, {
          log: this.#log,
          ...(this.#options.procMountsPath ? { procMountsPath: this.#options.procMountsPath } : {}),
        })
      : planDirectLaunch(spec, this.#config, this.#options.nsenterPath ?? '/usr/bin/nsenter');
    await plan.preflight();
    let started: StartedProcess | undefined;
    let pid = -1;
    const client = new FirecrackerApiClient(plan.apiSocket);
    try {
      await plan.prepare();
      this.#log.info({ vmId: spec.vmId, command: plan.command, args: plan.args }, 'starting firecracker');
      started = await startDetached(plan.command, plan.args, spec.consoleLogPath, {
        detached: !plan.daemonizes,
      });
      pid = started.pid;
      await waitForSocket({
        socketPath: plan.apiSocket,
        timeoutMs: this.#config.apiSocketTimeoutMs,
        owner: plan.owner,
        ...(signal ? { signal } : {}),
        gaveUp: () => this.#whyNoSocket(started, plan, spec.consoleLogPath),
      });
      pid = (await readPidFile(plan.pidFile)) ?? pid;
      const version = await client.getVersion(signal);
      for (const request of vmConfigurationRequests(spec, this.#config, plan.paths)) {
        await client.request(request.method, request.path, request.body, signal);
      }
      await client.action('InstanceStart', signal);
      const instance = await client.describeInstance(signal);
      const ref: VmProcessRef = {
        driver: 'firecracker',
        pid,
        details: { ...plan.details, apiVersion: version.firecracker_version, instanceState: instance.state },
      };
      this.#log.info(
        { vmId: spec.vmId, pid, apiVersion: version.firecracker_version, jailed: this.#config.useJailer },
        'firecracker VM started',
      );
      return ref;
    } catch (error) {
      await this.cleanup({ driver: 'firecracker', pid, details: plan.details }, spec).catch(
        (cleanupError: unknown) =>
          this.#log.warn(
            { vmId: spec.vmId, err: cleanupError },
            'cleanup after a failed firecracker launch left something behind',
          ),
      );
      throw error;
    } finally {
      await client.close();
    }
  }

  async stop(ref: VmProcessRef, timeoutMs: number): Promise<StopOutcome> {
    const markers = processMarkers(ref);
    if (!(await isProcessAlive(ref.pid, markers))) {
      await this.#syncRootfsBack(ref);
      return { graceful: true };
    }
    let asked = false;
    const client = new FirecrackerApiClient(ref.details.apiSocket ?? '', {
      timeoutMs: Math.min(timeoutMs, 5_000),
    });
    try {
      await client.action('SendCtrlAltDel');
      asked = true;
    } catch (error) {
      this.#log.warn({ pid: ref.pid, err: error }, 'SendCtrlAltDel failed; terminating firecracker');
    } finally {
      await client.close();
    }
    let graceful = asked && (await waitForProcessExit(ref.pid, markers, timeoutMs));
    if (!graceful) {
      sendSignal(ref.pid, 'SIGTERM');
      if (!(await waitForProcessExit(ref.pid, markers, this.#config.killGraceMs))) {
        sendSignal(ref.pid, 'SIGKILL');
        await waitForProcessExit(ref.pid, markers, 10_000);
      }
      graceful = false;
    }
    await this.#syncRootfsBack(ref);
    return { graceful };
  }

  isAlive(ref: VmProcessRef): Promise<boolean> {
    return isProcessAlive(ref.pid, processMarkers(ref));
  }

  async waitForExit(ref: VmProcessRef, signal?: AbortSignal): Promise<void> {
    await waitForProcessExit(ref.pid, processMarkers(ref), undefined, signal);
    await this.#syncRootfsBack(ref);
  }

  async cleanup(ref: VmProcessRef | undefined, spec: Pick<VmLaunchSpec, 'vmId' | 'runDir'>): Promise<void> {
    const execName =
      ref?.details.execName ??
      (await resolveExecFile(this.#config.firecrackerBinary).then(
        (exec) => exec.name,
        () => execFileName(this.#config.firecrackerBinary),
      ));
    const jailed = this.#config.useJailer || ref?.details.jailDir !== undefined;
    const layout = jailLayout(this.#config.chrootBase, execName, spec.vmId);
    const jailDir = ref?.details.jailDir ?? layout.jailDir;
    // The jailer's pid file names Firecracker when it is not the process we started (--daemonize).
    const pids = [
      ref?.pid ?? -1,
      (jailed ? await readPidFile(join(jailDir, 'root', `${execName}.pid`)) : undefined) ?? -1,
    ];
    const markers = [execName, spec.vmId];
    for (const pid of new Set(pids.filter((p) => p > 0))) {
      if (await isProcessAlive(pid, markers)) {
        sendSignal(pid, 'SIGKILL');
        await waitForProcessExit(pid, markers, 10_000);
      }
    }
    const leftovers: string[] = [];
    if (jailed) {
      await removeJail(jailDir);
      const recorded = ref?.details.cgroupDirs ? (JSON.parse(ref.details.cgroupDirs) as string[]) : [];
      const host = await detectCgroupHost(this.#options.procMountsPath).catch(() => ({ v1: {} }));
      leftovers.push(
        ...(await removeCgroupDirs([
          ...new Set([...recorded, ...allPossibleCgroupDirs(host, this.#config.parentCgroup, spec.vmId)]),
        ])),
      );
    }
    for (const file of ['firecracker.socket', 'firecracker.log', 'firecracker.metrics'])
      await rm(join(spec.runDir, file), { force: true });
    if (leftovers.length > 0) {
      throw new FirecrackerDriverError(
        'INTERNAL',
        `VM ${spec.vmId}: could not remove cgroups ${leftovers.join(', ')}; remove them with rmdir once their processes are gone`,
        {
          details: { leftovers },
        },
      );
    }
  }

  async #whyNoSocket(
    started: StartedProcess | undefined,
    plan: LaunchPlan,
    consoleLogPath: string,
  ): Promise<string | undefined> {
    const exit = started?.exit();
    if (exit === undefined) return undefined;
    // A daemonizing jailer returns 0 while Firecracker goes on in the background.
    if (plan.daemonizes && exit.code === 0) return undefined;
    const tail = (await readFile(consoleLogPath, 'utf8').catch(() => ''))
      .trim()
      .split('\n')
      .slice(-5)
      .join(' | ');
    return `${plan.owner} exited (${exit.signal ?? `code ${exit.code}`})${tail ? `; last output: ${tail}` : ''}`;
  }

  /**
   * Hands the rootfs back once the VM is down: a copy in the jail (other filesystem) holds the VM's
   * writes and is copied back; a hard link only needs its owner restored (it was the jail uid's).
   */
  async #syncRootfsBack(ref: VmProcessRef): Promise<void> {
    const { rootfsPlacement, rootfsInJailOnHost, rootfsPath, rootfsOwner } = ref.details;
    if (!rootfsInJailOnHost || !rootfsPath) return;
    if (rootfsPlacement === 'copied' && (await stat(rootfsInJailOnHost).catch(() => undefined)))
      await copyFile(rootfsInJailOnHost, rootfsPath);
    const [uid, gid] = (rootfsOwner ?? '').split(':').map(Number);
    if (uid !== undefined && gid !== undefined && Number.isInteger(uid) && Number.isInteger(gid))
      await chown(rootfsPath, uid, gid).catch(() => {});
  }
}

/** What identifies our Firecracker in /proc/<pid>/cmdline: its exec name and the VM's id. */
function processMarkers(ref: VmProcessRef): string[] {
  return [ref.details.execName ?? 'firecracker', ref.details.jailId ?? ''];
}

async function readPidFile(path: string | undefined): Promise<number | undefined> {
  if (path === undefined) return undefined;
  const text = await readFile(path, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}
