/**
 * How one VM's Firecracker is started: through the jailer (chroot, uid/gid, cgroups, netns) or,
 * on development hosts, directly under nsenter. Both give the same API socket and file paths.
 */
import { access, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VmLaunchSpec } from '../../ports/hypervisor.ts';
import {
  chooseCgroupVersion,
  cgroupLimits,
  controllersFor,
  detectCgroupHost,
  jailCgroupDirs,
  readNumaCpus,
} from './cgroups.ts';
import type { FirecrackerConfig } from './config.ts';
import type { DriverLog } from './driver.ts';
import { FirecrackerDriverError } from './errors.ts';
import { buildJailerArgv, execFileName, firecrackerArgs, resolveExecFile } from './jailer-argv.ts';
import { assertJailSocketFits, assertSocketPathFits, jailLayout, prepareJail } from './jail-layout.ts';
import type { VmFilePaths } from './vm-configuration.ts';
import { socketAnswers } from './vmm-process.ts';

export interface LaunchPlan {
  readonly command: string;
  readonly args: readonly string[];
  /** The API socket as the host sees it. */
  readonly apiSocket: string;
  /** Paths as Firecracker sees them. */
  readonly paths: VmFilePaths;
  /** Facts recorded in VmProcessRef.details; prepare() completes them. */
  readonly details: Record<string, string>;
  readonly daemonizes: boolean;
  readonly pidFile?: string;
  /** Names the process in errors, e.g. "jailer --id vm-1". */
  readonly owner: string;
  /** Checks that change nothing on the host (a failure here must not trigger cleanup). */
  preflight(): Promise<void>;
  /** Creates what the process needs (jail root with the VM's files, log files). */
  prepare(): Promise<void>;
}

async function assertBinary(path: string, setting: string): Promise<void> {
  try {
    await access(path);
  } catch {
    throw new FirecrackerDriverError(
      'FAILED_PRECONDITION',
      `${setting} ${path} does not exist; install the binary or point ${setting} at it`,
      {
        details: { path },
      },
    );
  }
}

export async function planJailedLaunch(
  spec: VmLaunchSpec & { kernel: { vmlinuxPath: string } },
  config: FirecrackerConfig,
  host: { log: DriverLog; procMountsPath?: string },
): Promise<LaunchPlan> {
  const cgroupHost = await detectCgroupHost(host.procMountsPath);
  const controllers = controllersFor(config.numaNode);
  const version = chooseCgroupVersion(cgroupHost, config.cgroupVersion, controllers);
  if (version === undefined) {
    throw new FirecrackerDriverError(
      'FAILED_PRECONDITION',
      `no cgroup hierarchy on this host offers the ${controllers.join(', ')} controllers the jailer needs: enable them in the cgroup v2 hierarchy or mount the v1 controllers`,
    );
  }
  if (version !== config.cgroupVersion) {
    host.log.warn(
      { vmId: spec.vmId, configured: config.cgroupVersion, used: version },
      `host lacks cgroup v${config.cgroupVersion} controllers; using cgroup v${version}`,
    );
  }
  const exec = await resolveExecFile(config.firecrackerBinary);
  const execName = exec.name;
  const layout = jailLayout(config.chrootBase, execName, spec.vmId);
  assertJailSocketFits(layout, config.chrootBase);
  const cgroups = cgroupLimits(version, {
    vcpus: spec.vcpus,
    memoryMib: spec.memoryMib,
    memoryOverheadMib: config.memoryOverheadMib,
    ...(config.numaNode === undefined
      ? {}
      : { numaNode: config.numaNode, numaCpus: await readNumaCpus(config.numaNode) }),
  });
  const args = buildJailerArgv({
    jailId: spec.vmId,
    execFile: exec.path,
    uid: config.jailerUid,
    gid: config.jailerGid,
    chrootBase: config.chrootBase,
    ...(spec.network ? { netnsPath: spec.network.netnsPath } : {}),
    cgroupVersion: version,
    cgroups,
    parentCgroup: config.parentCgroup,
    resourceLimits: config.resourceLimits,
    daemonize: config.daemonize,
    firecrackerArgs: firecrackerArgs(layout.inJail.apiSocket),
  });
  const details: Record<string, string> = {
    mode: 'jailer',
    jailId: spec.vmId,
    execName,
    jailDir: layout.jailDir,
    apiSocket: layout.apiSocketOnHost,
    cgroupVersion: String(version),
    cgroupDirs: JSON.stringify(
      jailCgroupDirs(cgroupHost, version, config.parentCgroup, spec.vmId, controllers),
    ),
    rootfsPath: spec.rootfsPath,
    rootfsInJailOnHost: join(layout.rootDir, layout.inJail.rootfs),
  };
  return {
    command: config.jailerBinary,
    args,
    apiSocket: layout.apiSocketOnHost,
    paths: {
      kernel: layout.inJail.kernel,
      ...(spec.kernel.initrdPath === undefined ? {} : { initrd: layout.inJail.initrd }),
      rootfs: layout.inJail.rootfs,
      ...(spec.transferDiskPath === undefined ? {} : { transferDisk: layout.inJail.transferDisk }),
      log: layout.inJail.log,
      metrics: layout.inJail.metrics,
    },
    details,
    daemonizes: config.daemonize,
    pidFile: layout.pidFileOnHost,
    owner: `jailer --id ${spec.vmId}`,
    async preflight() {
      await assertBinary(config.jailerBinary, '--binary-jailer');
      await assertBinary(config.firecrackerBinary, '--binary-firecracker');
      if (await stat(layout.jailDir).catch(() => undefined)) {
        throw new FirecrackerDriverError(
          'FAILED_PRECONDITION',
          `jail ${layout.jailDir} already exists: another Firecracker may run VM ${spec.vmId}; delete the VM first`,
          {
            details: { jailDir: layout.jailDir },
          },
        );
      }
    },
    async prepare() {
      const prepared = await prepareJail(
        layout,
        {
          kernelPath: spec.kernel.vmlinuxPath,
          ...(spec.kernel.initrdPath ? { initrdPath: spec.kernel.initrdPath } : {}),
          rootfsPath: spec.rootfsPath,
          ...(spec.transferDiskPath === undefined ? {} : { transferDiskPath: spec.transferDiskPath }),
        },
        config.jailerUid,
        config.jailerGid,
      );
      details.rootfsPlacement = prepared.rootfs;
      details.rootfsOwner = `${prepared.rootfsOwner.uid}:${prepared.rootfsOwner.gid}`;
      // the VM reads the jail's copy: WriteVmTransfer must write that one (VmLaunchSpec.transferDiskPath)
      if (prepared.transferDisk === 'copied') details.transferDisk = join(layout.rootDir, layout.inJail.transferDisk);
    },
  };
}

export function planDirectLaunch(
  spec: VmLaunchSpec & { kernel: { vmlinuxPath: string } },
  config: FirecrackerConfig,
  nsenterPath: string,
): LaunchPlan {
  const apiSocket = join(spec.runDir, 'firecracker.socket');
  assertSocketPathFits(apiSocket, `runDir ${spec.runDir}`);
  const execName = execFileName(config.firecrackerBinary);
  const fcArgs = ['--id', spec.vmId, ...firecrackerArgs(apiSocket)];
  const command = spec.network ? nsenterPath : config.firecrackerBinary;
  const args = spec.network
    ? [`--net=${spec.network.netnsPath}`, '--', config.firecrackerBinary, ...fcArgs]
    : fcArgs;
  return {
    command,
    args,
    apiSocket,
    paths: {
      kernel: spec.kernel.vmlinuxPath,
      ...(spec.kernel.initrdPath === undefined ? {} : { initrd: spec.kernel.initrdPath }),
      rootfs: spec.rootfsPath,
      ...(spec.transferDiskPath === undefined ? {} : { transferDisk: spec.transferDiskPath }),
      log: join(spec.runDir, 'firecracker.log'),
      metrics: join(spec.runDir, 'firecracker.metrics'),
    },
    details: { mode: 'direct', jailId: spec.vmId, execName, apiSocket },
    daemonizes: false,
    owner: `firecracker --id ${spec.vmId}`,
    async preflight() {
      await assertBinary(config.firecrackerBinary, '--binary-firecracker');
      if (await socketAnswers(apiSocket)) {
        throw new FirecrackerDriverError(
          'FAILED_PRECONDITION',
          `${apiSocket} already answers: another Firecracker may run VM ${spec.vmId}; delete the VM first`,
          { details: { apiSocket } },
        );
      }
    },
    async prepare() {
      await mkdir(spec.runDir, { recursive: true });
      // Firecracker refuses to bind an existing path; one nothing answers on is left from a crash.
      await rm(apiSocket, { force: true });
      for (const file of ['firecracker.log', 'firecracker.metrics'])
        await writeFile(join(spec.runDir, file), '', { mode: 0o600 });
    },
  };
}
