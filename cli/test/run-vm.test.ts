/**
 * One real VM under qemu (TCG here, tens of seconds to boot): an image made from the cached Debian
 * base OS with EXPOSE 8080/tcp in its metadata and a CMD that prints a marker on the console and serves
 * HTTP on that port (systemd-socket-activate running sh per connection, as examples/web does: nothing
 * installed), taken through the CLI as an operator would: run -d --network → ps → inspect (the address
 * and the exposed port) → a GET of http://<address>:<port>/ from the bridge's side → logs -f (Ctrl-C
 * stops following) → rm refused while running → stop (a follower ends by itself) → logs → rm, after
 * which the vmm has no VM, no VM directory, netns, lease, veth or qemu process left. The CMD runs as
 * the image's USER in its WORKDIR with its ENV and prints them, and traps the image's STOPSIGNAL
 * (SIGUSR1) so the console shows that `stop` delivered it. The VM's CNI bridge lives in a netns the test owns
 * (the vmm runs its plugins there), so the GET runs in that netns, never on the machine's own network.
 * Then a second boot, attached, with --env and ARGS (a per-run image, removed with the VM) and no
 * network: `kindling run` shows the console and returns when the VM is stopped.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { GetImageResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { unaryCall } from '@kindling/runtime';
import { ensureDebianBase } from '@kindling/vmm/baseos';
import { httpGetInNetns, importImage, jsonOf, kindling, networkUnavailable, spawnKindling, startVmm } from './support/cli-services.ts';

const cacheDir = process.env.KINDLING_CACHE_DIR ?? '/var/cache/kindling';
const MARKER = 'kindling-cli-run-says-hello';
const PORT = 8080;
const STOP_SIGNAL = 'SIGUSR1';
const USER = 'nobody';
const WORKDIR = '/var/tmp';
/**
 * The image's CMD: the HTTP server in the background, then the marker. $1 is one HTTP/1.0 exchange on
 * stdin/stdout (systemd-socket-activate --accept --inetd runs it per connection); --setenv=MODE passes the
 * image's ENV on (the server starts the handler with no other environment), so the body shows it arrived.
 */
const SERVE_AND_SAY = [
  // the image's STOPSIGNAL is what `kindling stop` must deliver: the CMD says it got it
  `trap 'echo ${MARKER} got ${STOP_SIGNAL}; exit 0' ${STOP_SIGNAL.slice(3)};`,
  `/usr/bin/systemd-socket-activate --listen=0.0.0.0:${PORT} --accept --inetd --setenv=MODE /bin/sh -c "$1" &`,
  // USER and WORKDIR as the guest sees them
  `echo ${MARKER} in $MODE mode as $(id -un) in $(pwd);`,
  'sleep infinity & wait $!',
].join(' ');
const HANDLER = [
  'read -r method target version',
  `cr=$(printf '\\r'); while read -r line; do case "$line" in "" | "$cr") break ;; esac; done`,
  'body="kindling-cli-run-serves $method $target in $MODE mode"',
  `printf 'HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n%s\\n' "$((\${#body} + 1))" "$body"`,
].join('; ');
const READY_MS = 10 * 60_000;

function why(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (the vmm runs qemu and writes into images)';
  try {
    execFileSync('sh', ['-c', 'command -v qemu-system-x86_64 && command -v debugfs'], { stdio: 'ignore' });
  } catch {
    return 'needs qemu-system-x86_64 and debugfs';
  }
  return networkUnavailable();
}

const lines = (text: string): string[] => text.split('\n').filter(Boolean);

/** The host-local leases (one file named by its address) under the test network's IPAM dir. */
function leases(dir: string): string[] {
  const ipam = join(dir, 'cni-ipam');
  if (!existsSync(ipam)) return [];
  return readdirSync(ipam).flatMap((network) => readdirSync(join(ipam, network)).filter((name) => /^\d+\.\d+\.\d+\.\d+$/.test(name)));
}

/** Resolves once child's stdout has matched pattern; rejects if the child exits first or READY_MS pass. */
function outputMatching(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no ${pattern} in the output within ${READY_MS} ms:\n${seen.slice(-2000)}`)), READY_MS);
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve(seen);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before printing ${pattern}:\n${seen.slice(-2000)}`));
    });
  });
}

test('kindling run -d, ps, inspect, logs, stop and rm on one real VM', { skip: why(), timeout: 20 * 60_000 }, async (t) => {
  // built here when the cache has none yet (a fresh machine): a skip would leave the test unrun
  const baseOs = await ensureDebianBase({ cacheDir });
  const dir = mkdtempSync(join(tmpdir(), 'kindling-cli-run-'));
  // The vmm's teardown deletes the VMs left (a failed assertion included), so the dir goes after it.
  const vmm = await startVmm(t, dir, cacheDir, { network: true });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const at = ['--vmm', vmm.address];
  const { image: base } = await unaryCall<GetImageResponse>('vmm', (cb) => vmm.client.getImage({ image: 'debian:bookworm' }, cb));
  await importImage(
    vmm,
    baseOs.rootfs,
    'cli-run:1',
    { cmd: ['/bin/sh', '-c', SERVE_AND_SAY, 'serve', HANDLER], env: ['MODE=test'], exposedPorts: [`${PORT}/tcp`], user: USER, workingDir: WORKDIR, stopSignal: STOP_SIGNAL },
    base!.kernelId,
  );
  const vmId = 'cli-run-test';

  const started = await kindling(['run', '-d', ...at, '--name', vmId, '--cpus', '1', '--memory', '768', '--network', vmm.network!.name, 'cli-run:1']);
  assert.deepEqual([started.code, started.stdout], [0, `${vmId}\n`], started.stderr);

  const listed = jsonOf<{ vms: { id: string; image: string; state: string }[] }>(await kindling(['ps', '--json', ...at]));
  assert.deepEqual(listed.vms.map((vm) => [vm.id, vm.image]), [[vmId, 'cli-run:1']]);
  assert.match(listed.vms[0]!.state, /^(starting|running)$/);
  const inspected = jsonOf<{
    vm: { id: string; address: string | null; network: string | null; consoleLogPath: string };
    metadata: { cmd: string[]; env: string[]; exposedPorts: string[] };
  }>(await kindling(['inspect', '--json', ...at, vmId]));
  assert.deepEqual([inspected.vm.id, inspected.metadata.env, inspected.vm.network], [vmId, ['MODE=test'], vmm.network!.name]);
  assert.match(inspected.metadata.cmd.join(' '), new RegExp(MARKER));
  assert.deepEqual(inspected.metadata.exposedPorts, [`${PORT}/tcp`]);
  const address = inspected.vm.address;
  assert.ok(address && address.startsWith('10.233.7.'), `the VM has an address on ${vmm.network!.subnet}: ${address}`);
  const shown = await kindling(['inspect', ...at, vmId]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, new RegExp(`^address: +${address.replaceAll('.', '\\.')}$`, 'm'));
  assert.match(shown.stdout, new RegExp(`^exposedPorts: +\\["${PORT}/tcp"\\]$`, 'm'));

  // The exposed port answers at the VM's address from where its bridge lives (the test's netns).
  const port = Number.parseInt(inspected.metadata.exposedPorts[0]!, 10);
  const answer = await httpGetInNetns(vmm.network!.netns, `http://${address}:${port}/`, READY_MS);
  assert.deepEqual(answer, { status: 200, body: 'kindling-cli-run-serves GET / in test mode\n' });

  // The entrypoint's output reaches the serial console; Ctrl-C stops following and leaves the VM running.
  const follower = spawnKindling(['logs', '-f', ...at, vmId]);
  await outputMatching(follower.child, new RegExp(`${MARKER} in test mode`));
  follower.child.kill('SIGINT');
  const interrupted = await follower.result;
  assert.equal(interrupted.code, 0, interrupted.stderr);

  const refused = await kindling(['rm', ...at, vmId]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`^kindling rm: VM ${vmId} is running: stop it first \\(kindling stop ${vmId}\\) or remove it anyway with rm -f\\n$`));

  // A follower started now ends by itself when the VM stops.
  const untilStopped = spawnKindling(['logs', '-f', ...at, vmId]);
  await outputMatching(untilStopped.child, new RegExp(MARKER));
  const stopped = await kindling(['stop', ...at, vmId]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.match(stopped.stdout, new RegExp(`^${vmId} stopped`));
  const followed = await untilStopped.result;
  assert.equal(followed.code, 0, followed.stderr);

  const log = await kindling(['logs', ...at, vmId]);
  assert.equal(log.code, 0, log.stderr);
  assert.match(log.stdout, new RegExp(`${MARKER} in test mode as ${USER} in ${WORKDIR}`), 'ENV, USER and WORKDIR inside the guest');
  assert.match(log.stdout, new RegExp(`${MARKER} got ${STOP_SIGNAL}`), 'stop delivered the image STOPSIGNAL');
  assert.ok(followed.stdout.length <= log.stdout.length && log.stdout.startsWith(followed.stdout.slice(0, 1000)));

  const removed = await kindling(['rm', ...at, vmId]);
  assert.deepEqual([removed.code, removed.stdout], [0, `${vmId}\n`], removed.stderr);
  assert.deepEqual(jsonOf(await kindling(['ps', '-a', '--json', ...at])), { vms: [] });
  const vmDirs = join(vmm.stateDir, 'vms');
  assert.deepEqual(existsSync(vmDirs) ? readdirSync(vmDirs) : [], []);
  // nothing of the VM is left on the host: its netns, its address lease, its veth, its qemu
  assert.deepEqual(lines(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).filter((ns) => ns.startsWith('kindling-clitest-')), []);
  assert.deepEqual(leases(dir), [], 'no CNI address lease');
  assert.deepEqual(lines(execFileSync('ip', ['-n', vmm.network!.netns, '-o', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' })), [], 'no veth left on the bridge');
  assert.deepEqual(lines(spawnSync('pgrep', ['-a', '-f', `qemu-system.*${dir}`], { encoding: 'utf8' }).stdout), [], 'no qemu process');
  const gone = await kindling(['logs', ...at, vmId]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, new RegExp(`^kindling logs: vmm at ${vmm.address}: [^\\n]*${vmId}[^\\n]*\\n$`));

  // Attached, with --env and ARGS: they reach the guest through the per-run image kindling-run/<id>.
  const attachedId = 'cli-run-attached';
  const attached = spawnKindling(['run', ...at, '--name', attachedId, '--cpus', '1', '--memory', '768', '-e', 'MODE=attached', 'cli-run:1', '--', '/bin/sh', '-c', `echo ${MARKER} with args in $MODE mode; sleep infinity`]);
  await outputMatching(attached.child, new RegExp(`${MARKER} with args in attached mode`));
  const running = jsonOf<{ vms: { id: string; image: string; bootImage: string }[] }>(await kindling(['ps', '--json', ...at]));
  assert.deepEqual(running.vms.map((vm) => [vm.id, vm.image, vm.bootImage]), [[attachedId, 'cli-run:1', `kindling-run/${attachedId}:latest`]]);
  const visible = jsonOf<{ images: { ref: string }[] }>(await kindling(['images', '--json', ...at]));
  assert.ok(!visible.images.some((i) => i.ref.startsWith('kindling-run/')), 'per-run images are internal');
  const stoppedAttached = await kindling(['stop', ...at, attachedId]);
  assert.equal(stoppedAttached.code, 0, stoppedAttached.stderr);
  const ran = await attached.result;
  assert.deepEqual([ran.code, ran.stderr], [0, '']);
  assert.doesNotMatch(ran.stdout, new RegExp(`${MARKER} in test mode`), 'ARGS replaced the image CMD');
  assert.equal((await kindling(['rm', ...at, attachedId])).code, 0);
  assert.deepEqual(jsonOf(await kindling(['ps', '-a', '--json', ...at])), { vms: [] });
  const left = jsonOf<{ images: { ref: string }[] }>(await kindling(['images', '-a', '--json', ...at]));
  assert.deepEqual(left.images.map((i) => i.ref).filter((ref) => !ref.startsWith('debian:')), ['cli-run:1']);
});
