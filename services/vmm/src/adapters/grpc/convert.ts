import { createHash } from 'node:crypto';
import { VmState as ProtoVmState, type VmEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { Duration } from '@kindling/proto/gen/google/protobuf/duration.ts';
import type { ImageMetadata as ProtoImageMetadata } from '@kindling/proto/gen/kindling/image/v1/image.ts';
import type { Image, Kernel, Vm, VmSpec as ProtoVmSpec } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import {
  emptyImageMetadata,
  type ImageMetadata,
  type ImageRecord,
  type KernelRecord,
} from '../../domain/image.ts';
import type { VmRecord, VmSpec, VmState } from '../../domain/vm.ts';
import { TRANSFER_DEVICE } from '../../domain/vm-transfer.ts';
import type { VmStateEvent } from '../../ports/vm-events.ts';

const STATES: Record<VmState, ProtoVmState> = {
  CREATED: ProtoVmState.VM_STATE_CREATED,
  STARTING: ProtoVmState.VM_STATE_STARTING,
  RUNNING: ProtoVmState.VM_STATE_RUNNING,
  STOPPING: ProtoVmState.VM_STATE_STOPPING,
  STOPPED: ProtoVmState.VM_STATE_STOPPED,
  FAILED: ProtoVmState.VM_STATE_FAILED,
  DELETED: ProtoVmState.VM_STATE_DELETED,
};

export const toProtoState = (state: VmState): ProtoVmState => STATES[state];
export const fromProtoState = (state: ProtoVmState): VmState | undefined =>
  (Object.entries(STATES).find(([, value]) => value === state)?.[0] as VmState | undefined) ?? undefined;

const durationMs = (d: Duration | undefined): number | undefined =>
  d ? Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6) : undefined;
const toDuration = (ms: number | undefined): Duration | undefined =>
  ms === undefined ? undefined : { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };

export function fromProtoMetadata(m: ProtoImageMetadata | undefined): ImageMetadata {
  if (!m) return emptyImageMetadata();
  const hc = m.healthcheck;
  const ms = (d: Duration | undefined) => durationMs(d);
  return {
    entrypoint: m.entrypoint,
    cmd: m.cmd,
    env: m.env,
    user: m.user,
    workingDir: m.workingDir,
    exposedPorts: m.exposedPorts,
    labels: m.labels,
    volumes: m.volumes,
    stopSignal: m.stopSignal,
    onbuild: m.onbuild,
    shell: m.shell,
    ...(hc
      ? {
          healthcheck: {
            test: hc.test,
            retries: hc.retries,
            ...(ms(hc.interval) !== undefined ? { intervalMs: ms(hc.interval)! } : {}),
            ...(ms(hc.timeout) !== undefined ? { timeoutMs: ms(hc.timeout)! } : {}),
            ...(ms(hc.startPeriod) !== undefined ? { startPeriodMs: ms(hc.startPeriod)! } : {}),
            ...(ms(hc.startInterval) !== undefined ? { startIntervalMs: ms(hc.startInterval)! } : {}),
          },
        }
      : {}),
  };
}

export function toProtoMetadata(m: ImageMetadata): ProtoImageMetadata {
  const hc = m.healthcheck;
  return {
    entrypoint: m.entrypoint,
    cmd: m.cmd,
    env: m.env,
    user: m.user,
    workingDir: m.workingDir,
    exposedPorts: m.exposedPorts,
    labels: m.labels,
    volumes: m.volumes,
    stopSignal: m.stopSignal,
    onbuild: m.onbuild,
    shell: m.shell,
    healthcheck: hc
      ? {
          test: hc.test,
          retries: hc.retries,
          interval: toDuration(hc.intervalMs),
          timeout: toDuration(hc.timeoutMs),
          startPeriod: toDuration(hc.startPeriodMs),
          startInterval: toDuration(hc.startIntervalMs),
        }
      : undefined,
  };
}

export function toProtoImage(image: ImageRecord, allocatedBytes: number): Image {
  return {
    name: image.name,
    tag: image.tag,
    digest: image.digest,
    sizeBytes: String(image.sizeBytes),
    allocatedBytes: String(allocatedBytes),
    created: new Date(image.created),
    parent: image.parent,
    metadata: toProtoMetadata(image.metadata),
    kernelId: image.defaultKernelId ?? '',
    aliases: image.aliases ?? [],
  };
}

export function toProtoKernel(kernel: KernelRecord): Kernel {
  return {
    id: kernel.id,
    version: kernel.version,
    hasBzImage: kernel.bzImagePath !== undefined,
    hasVmlinux: kernel.vmlinuxPath !== undefined,
    hasInitrd: kernel.initrdPath !== undefined,
    configPath: kernel.configPath ?? '',
    created: new Date(kernel.created),
  };
}

export function fromProtoSpec(spec: ProtoVmSpec | undefined, vmId: string): VmSpec {
  return {
    vmId,
    image: spec?.image ?? '',
    kernelId: spec?.kernelId ?? '',
    vcpus: spec?.vcpus ?? 0,
    memoryMib: spec?.memoryMib ?? 0,
    diskSizeBytes: Number(spec?.diskSizeBytes ?? 0),
    network: spec?.network ?? '',
    authorizedKeys: spec?.authorizedKeys ?? [],
    hostname: spec?.hostname ?? '',
    extraKernelArgs: spec?.extraKernelArgs ?? '',
    buildId: spec?.buildId ?? '',
    labels: spec?.labels ?? {},
    transferDiskBytes: Number(spec?.transferDiskBytes ?? 0),
  };
}

/** "SHA256:<base64>" as ssh-keygen -l prints it. */
export function sshFingerprint(publicKey: string): string {
  const blob = publicKey.split(/\s+/)[1];
  if (!blob) return '';
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

export function toProtoVm(vm: VmRecord): Vm {
  const s = vm.spec;
  const net = vm.network;
  return {
    id: vm.id,
    host: vm.host,
    spec: {
      image: s.image,
      kernelId: vm.kernelId,
      vcpus: s.vcpus,
      memoryMib: s.memoryMib,
      diskSizeBytes: String(s.diskSizeBytes),
      network: s.network,
      authorizedKeys: s.authorizedKeys,
      hostname: s.hostname,
      extraKernelArgs: s.extraKernelArgs,
      labels: s.labels,
      buildId: s.buildId,
      transferDiskBytes: String(s.transferDiskBytes ?? 0),
    },
    state: toProtoState(vm.state),
    stateReason: vm.reason,
    driver: vm.driver,
    network: net
      ? {
          network: net.networkName,
          guestCidr: net.guestCidr,
          guestIp: net.guestIp,
          gateway: net.gateway ?? '',
          macAddress: net.guestMac,
          netnsPath: net.netnsPath,
          tapDevice: net.tapName,
          mtu: net.mtu ?? 0,
        }
      : undefined,
    sshHostPublicKey: vm.hostKeyPublic,
    sshHostKeyFingerprint: sshFingerprint(vm.hostKeyPublic),
    created: new Date(vm.createdAt),
    started: vm.startedAt ? new Date(vm.startedAt) : undefined,
    stopped: vm.stoppedAt ? new Date(vm.stoppedAt) : undefined,
    pid: vm.process?.pid ?? 0,
    consoleLogPath: vm.consoleLogPath,
    diskSizeBytes: String(vm.diskSizeBytes),
    transferDiskDevice: vm.transferDiskPath ? TRANSFER_DEVICE : '',
  };
}

export function toProtoEvent(event: VmStateEvent): VmEvent {
  return {
    host: event.host,
    vmId: event.vmId,
    sequence: String(event.sequence),
    time: event.time,
    state: toProtoState(event.state),
    previousState: event.previousState
      ? toProtoState(event.previousState)
      : ProtoVmState.VM_STATE_UNSPECIFIED,
    reason: event.reason,
    buildId: event.buildId,
  };
}
