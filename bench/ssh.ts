// bench:ssh — the provisioner against bare ssh2 on the same local sshd, in one run:
// (a) 200 trivial steps through gRPC Exec vs 200 bare ssh2 exec() on one connection;
// (b) a 500 MiB file through PutFiles (blob from a real fetcher's cache, read directly as on a
// shared host with --fetcher-cache-dir; sha256-checked) vs ssh2 sftp.fastPut.
// The fetcher and the provisioner run as their own processes, as deployed.
// BENCH_SSH_VIA_READBLOB=1 measures PutFiles without --fetcher-cache-dir (every byte via gRPC ReadBlob).
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, type SFTPWrapper } from 'ssh2';
import type { ExecRequest } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { startProvisionerSuite, type ProvisionerSuite } from '../services/provisioner/test/support/provisioner-suite.ts';
import { sshdUnavailableReason } from '../services/provisioner/test/support/test-sshd.ts';

const STEPS = 200;
const WARMUP = 10;
const FILE_MIB = 500;
const ROUNDS = 3;
const run = promisify(execFile);
const viaReadBlob = process.env.BENCH_SSH_VIA_READBLOB === '1';

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function grpcExec(suite: ProvisionerSuite): Promise<void> {
  const request: ExecRequest = {
    target: suite.target,
    command: { $case: 'shell', value: { script: 'true', shell: [] } },
    env: [],
    user: '',
    workingDir: '',
    buildId: 'bench',
    stepIndex: 0, reuseShell: false,
  };
  return new Promise((resolve, reject) => {
    const call = suite.provisioner.exec(request);
    call.on('data', () => {});
    call.on('error', reject);
    call.on('end', resolve);
  });
}

function bareExec(client: Client): Promise<void> {
  return new Promise((resolve, reject) =>
    client.exec('true', (error, channel) => {
      if (error) return reject(error);
      channel.on('data', () => {});
      channel.stderr.on('data', () => {});
      channel.on('close', () => resolve());
    }),
  );
}

/** CPU time (user+system) a process has used so far, in ms. */
async function processCpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * (1000 / 100);
}

async function time(samples: number[], action: () => Promise<void>): Promise<void> {
  const started = performance.now();
  await action();
  samples.push(performance.now() - started);
}

function connect(suite: ProvisionerSuite): Promise<Client> {
  const client = new Client();
  return new Promise((resolve, reject) => {
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({ host: suite.sshd.host, port: suite.sshd.port, username: 'root', privateKey: suite.sshd.clientPrivateKey });
  });
}

async function main(): Promise<void> {
  const skip = await sshdUnavailableReason();
  if (skip) {
    console.log(`bench:ssh skipped: ${skip}`);
    return;
  }
  const suite = await startProvisionerSuite({ separateProcesses: true, localBlobs: !viaReadBlob });
  const bare = await connect(suite);
  const guest = join(suite.sshd.dir, 'guest');
  try {
    // (a) per-step latency
    for (let i = 0; i < WARMUP; i++) {
      await grpcExec(suite);
      await bareExec(bare);
    }
    const viaGrpc: number[] = [];
    const viaSsh2: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      // interleaved, so machine load hits both sides alike
      await time(viaGrpc, () => grpcExec(suite));
      await time(viaSsh2, () => bareExec(bare));
    }

    // (b) bulk copy
    await mkdir(suite.contextDir, { recursive: true });
    await run('sh', ['-c', `printf 'FROM scratch\\n' > Dockerfile && head -c ${FILE_MIB * 1024 * 1024} /dev/urandom > big.bin`], { cwd: suite.contextDir });
    const context = await suite.resolveContext();
    const listing = await suite.listFiles(context.contextId, ['big.bin']);
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) => bare.sftp((error, s) => (error ? reject(error) : resolve(s))));
    const putFilesSeconds: number[] = [];
    const fastPutSeconds: number[] = [];
    const cpu = { fastPut: 0, fetcher: 0, provisioner: 0 };
    const pids = suite.pids as { fetcher: number; provisioner: number };
    const fastPut = (): Promise<void> =>
      time(fastPutSeconds, async () => {
        const before = process.cpuUsage();
        await new Promise<void>((resolve, reject) =>
          sftp.fastPut(join(suite.contextDir, 'big.bin'), join(guest, 'fastput.bin'), (e) => (e ? reject(e) : resolve())),
        );
        const used = process.cpuUsage(before);
        cpu.fastPut += (used.user + used.system) / 1000;
      });
    const putFiles = (): Promise<void> =>
      time(putFilesSeconds, async () => {
        const [fetcherBefore, provisionerBefore] = [await processCpuMs(pids.fetcher), await processCpuMs(pids.provisioner)];
        await suite.putFiles({
          target: suite.target,
          contextId: context.contextId,
          sources: listing.sources.map((s) => ({ pattern: s.pattern, files: s.files })),
          destination: join(guest, 'putfiles.bin'),
          workingDir: '',
          chown: '',
          extractArchives: false,
          preserveOwnership: false,
          buildId: 'bench',
          stepIndex: 0,
        });
        cpu.fetcher += (await processCpuMs(pids.fetcher)) - fetcherBefore;
        cpu.provisioner += (await processCpuMs(pids.provisioner)) - provisionerBefore;
      });
    for (let round = 0; round < ROUNDS; round++) {
      await rm(guest, { recursive: true, force: true });
      await mkdir(guest, { recursive: true });
      // alternate which goes first, so a load spike on this shared machine does not favour one side
      if (round % 2 === 0) {
        await fastPut();
        await putFiles();
      } else {
        await putFiles();
        await fastPut();
      }
    }
    const mibps = (ms: number): number => FILE_MIB / (ms / 1000);
    const putFilesMibps = mibps(Math.min(...putFilesSeconds));
    const fastPutMibps = mibps(Math.min(...fastPutSeconds));

    const grpcP50 = percentile(viaGrpc, 50);
    const sshP50 = percentile(viaSsh2, 50);
    const overhead = grpcP50 - sshP50;
    console.log(`(a) ${STEPS} trivial steps, one connection, same sshd (after ${WARMUP} warm-up each, interleaved)`);
    console.log(`    provisioner gRPC Exec : p50 ${grpcP50.toFixed(1)} ms, p95 ${percentile(viaGrpc, 95).toFixed(1)} ms`);
    console.log(`    bare ssh2 exec        : p50 ${sshP50.toFixed(1)} ms, p95 ${percentile(viaSsh2, 95).toFixed(1)} ms`);
    console.log(`(b) ${FILE_MIB} MiB file, best of ${ROUNDS} each, alternating order`);
    console.log(`    provisioner PutFiles (${viaReadBlob ? 'fetcher ReadBlob' : 'fetcher cache file'} -> SFTP, digest-checked, temp+rename): ${putFilesMibps.toFixed(0)} MiB/s (runs: ${putFilesSeconds.map((ms) => mibps(ms).toFixed(0)).join(', ')})`);
    const perMib = (ms: number): string => (ms / (ROUNDS * FILE_MIB)).toFixed(1);
    console.log(`    CPU per MiB: PutFiles = fetcher ${perMib(cpu.fetcher)} ms + provisioner ${perMib(cpu.provisioner)} ms; fastPut = ${perMib(cpu.fastPut)} ms (load average now ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores)`);
    console.log(`    bare ssh2 sftp.fastPut (local file): ${fastPutMibps.toFixed(0)} MiB/s (runs: ${fastPutSeconds.map((ms) => mibps(ms).toFixed(0)).join(', ')})`);
    console.log(`exec p50: provisioner ${grpcP50.toFixed(1)} ms vs ssh2 ${sshP50.toFixed(1)} ms -> overhead ${overhead >= 0 ? '+' : ''}${overhead.toFixed(1)} ms per step (goal <= +15 ms)`);
    console.log(`copy: PutFiles ${putFilesMibps.toFixed(0)} MiB/s vs fastPut ${fastPutMibps.toFixed(0)} MiB/s -> ratio ${(putFilesMibps / fastPutMibps).toFixed(2)} (goal >= 0.85)`);
  } finally {
    bare.end();
    await suite.stop();
  }
}

await main();
