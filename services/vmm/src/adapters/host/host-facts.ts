import { statfs } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import type { HostFacts } from '../grpc/vmm-grpc.ts';
import { runCommand } from '../exec/run-command.ts';

/**
 * GetHostInfo's facts from the OS; the hypervisor's version is asked once. capacityVcpus and
 * capacityMemoryBytes, when above 0, replace the machine's CPUs and memory (an operator keeping room).
 */
export function localHostFacts(options: {
  stateDir: string;
  capacityVcpus?: number;
  capacityMemoryBytes?: number;
  hypervisorVersionCommand: string[];
  accel: () => Promise<string>;
  version: string;
}): HostFacts {
  let hypervisorVersion: Promise<string> | undefined;
  return {
    cpus: options.capacityVcpus || availableParallelism(),
    memoryBytes: options.capacityMemoryBytes || totalmem(),
    version: options.version,
    async diskFreeBytes() {
      const fs = await statfs(options.stateDir);
      return fs.bavail * fs.bsize;
    },
    hypervisorVersion() {
      const [file, ...args] = options.hypervisorVersionCommand;
      hypervisorVersion ??= runCommand(file!, args, { allowFailure: true }).then(
        (r) => r.stdout.toString().split('\n')[0]?.trim() || r.stderr.trim() || 'unknown',
        () => 'unknown',
      );
      return hypervisorVersion;
    },
    accel: options.accel,
  };
}
