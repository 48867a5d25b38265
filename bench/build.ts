/**
 * A reference build (two stages, 5 RUN steps with known sleeps, 2 COPYs, one of a 100 MiB file) built
 * cold, rebuilt unchanged, and rebuilt with its last step changed — each beside its floor measured in
 * the same run on the same services:
 *   floor(cold)    = Σ over the stages: boot→SSH-ready + Σ its RUN commands' wall time + cp --sparse=always of its image
 *   floor(rebuild) = 0 boots (goal: ≤ 1 s)
 *   floor(last)    = boot→SSH-ready + the last RUN's wall time + cp --sparse=always of the image
 * The boot is a CreateVm+WaitReady of the base OS, the RUN commands run through the provisioner's Exec in
 * that VM, the copy is of the committed image's rootfs. Runs in a network namespace of its own.
 * Needs root, qemu, CNI plugins and the cached Debian base OS. Usage: npm run bench:build
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const scenario = fileURLToPath(new URL('./support/build-scenario.ts', import.meta.url));
const netns = `kindling-bench-sbx-${process.pid}`;
const ip = (...args: string[]) => spawnSync('ip', args, { encoding: 'utf8' });
if (process.getuid?.() !== 0) {
  console.error('bench:build needs root (VMs, netns, CNI)');
  process.exit(2);
}
if (ip('netns', 'add', netns).status !== 0) throw new Error(`cannot create netns ${netns}`);
try {
  ip('-n', netns, 'link', 'set', 'lo', 'up');
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '--import', 'tsx', scenario], { stdio: 'inherit' });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  process.exitCode = code ?? 1;
} finally {
  ip('netns', 'del', netns);
}
