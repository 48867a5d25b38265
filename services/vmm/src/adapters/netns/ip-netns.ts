import { access } from 'node:fs/promises';
import type { NetnsPort } from '../../ports/netns.ts';
import { runCommand } from '../exec/run-command.ts';

const NETNS_DIR = '/var/run/netns';

/** Named network namespaces through iproute2 (`ip netns add/del`), visible in `ip netns list`. */
export class IpNetns implements NetnsPort {
  async ensure(name: string): Promise<string> {
    const path = `${NETNS_DIR}/${name}`;
    const exists = await access(path).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await runCommand('ip', ['netns', 'add', name]);
      // Loopback up, as a container runtime would leave it; CNI plugins may rely on it.
      await runCommand('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    }
    return path;
  }

  async remove(name: string): Promise<void> {
    const result = await runCommand('ip', ['netns', 'del', name], { allowFailure: true });
    if (result.code !== 0 && !/No such file/.test(result.stderr)) {
      throw new Error(`could not delete network namespace ${name}: ${result.stderr.trim()}`);
    }
  }
}
