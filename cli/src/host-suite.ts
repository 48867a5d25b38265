/**
 * The four services run on this host as an operator runs them, for `kindling up` / `kindling down`:
 * detached children (their own session, so they outlive the CLI) with their state under one state dir,
 * logs in <state-dir>/logs/<service>.log, an optional nats-server with JetStream, and <state-dir>/up.json
 * recording what was started. Unlike the quickstart's suite (local-suite.ts), nothing here is tied to
 * the lifetime of the CLI process; the service command lines and arguments are the same ones.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Metadata } from '@grpc/grpc-js';
import { HealthClient, HealthCheckResponse_ServingStatus as Serving, type HealthCheckResponse } from '@kindling/proto/gen/grpc/health/v1/health.ts';
import { VmState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { VmmServiceClient, type ListVmsResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createServiceClient, unaryCall } from '@kindling/runtime';
import { fetcherArgs, plannerArgs, provisionerArgs, serviceCommandLine, serviceMain, vmmArgs, type ServiceName } from './local-suite.ts';

export const DEFAULT_STATE_DIR = '/var/lib/kindling';
/** planner, fetcher, vmm, provisioner: the ports the services (and the CLI's address flags) default to. */
export const DEFAULT_BASE_PORT = 50051;
export const DEFAULT_NATS_PORT = 4222;
export const DEFAULT_NETWORK = 'machine-builds';
const HOST = '127.0.0.1';

/** The order of the ports from the base port, which is the services' own default order. */
const PORT_ORDER: readonly ServiceName[] = ['planner', 'fetcher', 'vmm', 'provisioner'];
/**
 * The order `down` stops them in: the planner first (its builds are aborted and their VMs removed
 * through the vmm, which must still answer), the vmm last (after the VMs it runs were stopped).
 */
export const STOP_ORDER: readonly ServiceName[] = ['planner', 'provisioner', 'fetcher', 'vmm'];

/** The variables the other commands read their addresses from (docs/cli.md, service-call.ts). */
export const ADDRESS_VARIABLES: Partial<Record<ServiceName, string>> = {
  planner: 'KINDLING_PLANNER_ADDR',
  fetcher: 'KINDLING_FETCHER_ADDR',
  vmm: 'KINDLING_VMM_ADDR',
};

export interface UpService {
  readonly pid: number;
  readonly address: string;
  readonly log: string;
}

export interface UpNats {
  readonly pid: number;
  readonly url: string;
  readonly storeDir: string;
  readonly log: string;
}

/** <state-dir>/up.json. While `up` is starting the suite, state is "starting" and lists what runs so far. */
export interface UpRecord {
  readonly version: 1;
  readonly state: 'starting' | 'up';
  readonly stateDir: string;
  readonly startedAt: string;
  readonly services: Partial<Record<ServiceName, UpService>>;
  readonly nats: UpNats | null;
  /** What the other commands need set when the addresses are not their defaults. */
  readonly env: Record<string, string>;
}

export interface UpOptions {
  readonly stateDir: string;
  /** The kindling cache: the vmm registers the base-OS builds under <cacheDir>/baseos. */
  readonly cacheDir: string;
  /** planner, fetcher, vmm, provisioner listen on this port and the next three; 0 picks free ports. */
  readonly basePort: number;
  /** nats-server's port; 0 picks a free one. */
  readonly natsPort: number;
  /** The nats-server binary, or undefined for the in-process event bus. */
  readonly natsServer: string | undefined;
  readonly network: string;
  /** The vmm's CNI config dir; undefined leaves the vmm's own setting (KINDLING_VMM_CNI_CONF_DIR or /etc/cni/conf.d). */
  readonly cniConfDir: string | undefined;
  readonly log: (line: string) => void;
}

export const upJsonPath = (stateDir: string): string => join(stateDir, 'up.json');
export const logDir = (stateDir: string): string => join(stateDir, 'logs');

export async function readUpRecord(stateDir: string): Promise<UpRecord | undefined> {
  const text = await readFile(upJsonPath(stateDir), 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as UpRecord;
  } catch (error) {
    throw new Error(`${upJsonPath(stateDir)} is not JSON (${(error as Error).message}): remove it once no kindling service of that state dir runs`);
  }
}

async function writeUpRecord(record: UpRecord): Promise<void> {
  const path = upJsonPath(record.stateDir);
  await writeFile(`${path}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}

export const removeUpRecord = (stateDir: string): Promise<void> => rm(upJsonPath(stateDir), { force: true });

/** The nats-server on PATH or in /usr/sbin (Debian's package), or undefined. */
export function findNatsServer(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

/**
 * Whether pid is a live process whose command line has marker among its arguments (a service's main.ts,
 * nats-server's store dir): a pid reused by another program since up.json was written does not count.
 * A zombie is not live.
 */
export function processAlive(pid: number, marker: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(marker);
  } catch {
    return false;
  }
}

export const serviceAlive = (name: ServiceName, service: UpService): boolean => processAlive(service.pid, serviceMain(name));
export const natsAlive = (nats: UpNats): boolean => processAlive(nats.pid, nats.storeDir);

/** The processes of a record that are still running, by name ("planner", ..., "nats-server"). */
export function liveProcesses(record: UpRecord): { name: string; pid: number }[] {
  const live: { name: string; pid: number }[] = [];
  for (const name of PORT_ORDER) {
    const service = record.services[name];
    if (service && serviceAlive(name, service)) live.push({ name, pid: service.pid });
  }
  if (record.nats && natsAlive(record.nats)) live.push({ name: 'nats-server', pid: record.nats.pid });
  return live;
}

/** One grpc.health.v1 Check of the whole server; undefined when nothing answers within timeoutMs. */
export async function healthOf(address: string, timeoutMs = 2000): Promise<Serving | undefined> {
  const client = createServiceClient(HealthClient, address);
  try {
    const response = await unaryCall<HealthCheckResponse>('health', (cb) =>
      client.check({ service: '' }, new Metadata(), { deadline: new Date(Date.now() + timeoutMs) }, cb),
    );
    return response.status;
  } catch {
    return undefined;
  } finally {
    client.close();
  }
}

/** True when every service of the record runs and answers SERVING. */
export async function suiteHealthy(record: UpRecord): Promise<boolean> {
  if (record.state !== 'up') return false;
  if (liveProcesses(record).length !== PORT_ORDER.length + (record.nats ? 1 : 0)) return false;
  const statuses = await Promise.all(PORT_ORDER.map((name) => healthOf(record.services[name]!.address)));
  return statuses.every((status) => status === Serving.SERVING);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}

async function ports(basePort: number): Promise<Record<ServiceName, number>> {
  const picked = new Set<number>();
  const result = {} as Record<ServiceName, number>;
  for (const [index, name] of PORT_ORDER.entries()) {
    let port = basePort === 0 ? await freePort() : basePort + index;
    while (basePort === 0 && picked.has(port)) port = await freePort();
    picked.add(port);
    result[name] = port;
  }
  return result;
}

/** The end of a log file, for an error message. */
function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Starts file args detached (own session), its stdout and stderr appended to logFile. */
function spawnDetached(file: string, args: string[], options: { cwd?: string; logFile: string; env?: NodeJS.ProcessEnv }): ChildProcess {
  const fd = openSync(options.logFile, 'a');
  try {
    const child = spawn(file, args, {
      cwd: options.cwd,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...options.env },
    });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

/** Tracks a child's exit (or failure to start), so that waits for it end as soon as it is gone. */
function exitWatch(child: ChildProcess): () => string | undefined {
  let ended: string | undefined;
  child.once('error', (error) => (ended ??= `could not start: ${error.message}`));
  child.once('exit', (code, signal) => (ended ??= signal ? `was killed by ${signal}` : `exited with code ${code}`));
  return () => ended;
}

async function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => (socket.destroy(), resolve(false)));
  });
}

async function waitUntil(what: string, ended: () => string | undefined, logFile: string, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready()) return;
    const gone = ended();
    if (gone !== undefined) throw new Error(`${what} ${gone} before it was ready; the end of ${logFile}:\n${tail(logFile)}`);
    if (Date.now() > deadline) throw new Error(`${what} was not ready within ${timeoutMs / 1000} s; the end of ${logFile}:\n${tail(logFile)}`);
    await sleep(200);
  }
}

/** Starts the suite (nothing of the state dir may be running) and writes up.json; stops what it started if a part fails. */
export async function startHostSuite(options: UpOptions): Promise<UpRecord> {
  const { stateDir, log } = options;
  const logs = logDir(stateDir);
  await mkdir(logs, { recursive: true });
  const port = await ports(options.basePort);
  const address = (name: ServiceName): string => `${HOST}:${port[name]}`;
  let record: UpRecord = {
    version: 1,
    state: 'starting',
    stateDir,
    startedAt: new Date().toISOString(),
    services: {},
    nats: null,
    env: Object.fromEntries(Object.entries(ADDRESS_VARIABLES).map(([name, variable]) => [variable, address(name as ServiceName)])),
  };
  // Services start in parallel: their writes of up.json go one after the other, each of the latest record.
  let writes = Promise.resolve();
  const save = (change: Partial<UpRecord>): Promise<void> => {
    record = { ...record, ...change };
    writes = writes.catch(() => {}).then(() => writeUpRecord(record));
    return writes;
  };
  await save({});
  try {
    let natsUrl: string | undefined;
    if (options.natsServer !== undefined) {
      const natsPort = options.natsPort === 0 ? await freePort() : options.natsPort;
      const storeDir = join(stateDir, 'nats');
      await mkdir(storeDir, { recursive: true });
      const logFile = join(logs, 'nats-server.log');
      const child = spawnDetached(options.natsServer, ['-js', '-sd', storeDir, '-a', HOST, '-p', String(natsPort)], { logFile });
      const ended = exitWatch(child);
      natsUrl = `nats://${HOST}:${natsPort}`;
      await save({ nats: { pid: child.pid ?? -1, url: natsUrl, storeDir, log: logFile } });
      await waitUntil('nats-server', ended, logFile, 15_000, () => acceptsConnections(natsPort));
      log(`nats-server  ${natsUrl} (JetStream in ${storeDir})`);
    }
    const start = async (name: ServiceName, args: string[]): Promise<void> => {
      const logFile = join(logs, `${name}.log`);
      const command = serviceCommandLine(name, ['--host', HOST, '--port', String(port[name]), ...(natsUrl ? ['--nats-url', natsUrl] : []), ...args]);
      const child = spawnDetached(command.file, command.args, {
        cwd: command.cwd,
        logFile,
        env: { KINDLING_LOG_LEVEL: process.env.KINDLING_LOG_LEVEL ?? 'info' },
      });
      const ended = exitWatch(child);
      await save({ services: { ...record.services, [name]: { pid: child.pid ?? -1, address: address(name), log: logFile } } });
      await waitUntil(name, ended, logFile, 120_000, async () => (await healthOf(address(name), 1000)) === Serving.SERVING);
      log(`${name.padEnd(12)} ${address(name)} (pid ${child.pid}, log ${logFile})`);
    };
    const fetcherCache = join(stateDir, 'fetcher');
    // The planner reconciles its builds with the vmm as it starts: it comes up after the other three.
    await Promise.all([
      start('vmm', vmmArgs({ stateDir: join(stateDir, 'vmm'), cacheDir: options.cacheDir, network: options.network, fetcherCacheDir: fetcherCache, ...(options.cniConfDir !== undefined ? { cniConfDir: options.cniConfDir } : {}) })),
      start('fetcher', fetcherArgs(fetcherCache)),
      start('provisioner', provisionerArgs(address('fetcher'), fetcherCache)),
    ]);
    await start('planner', plannerArgs(join(stateDir, 'planner'), { fetcher: address('fetcher'), vmm: address('vmm'), provisioner: address('provisioner') }));
    await save({ state: 'up' });
    return record;
  } catch (error) {
    await stopHostSuite(record, { timeoutMs: 10_000, stopVms: false, log: () => {} }).catch(() => {});
    throw error;
  }
}

export interface DownOptions {
  /** How long each process gets after SIGTERM before SIGKILL. */
  readonly timeoutMs: number;
  /** Stop the VMs the vmm runs (gracefully) before stopping the vmm; otherwise they keep running and the next vmm adopts them. */
  readonly stopVms: boolean;
  readonly log: (line: string) => void;
}

/** SIGTERM, wait up to timeoutMs, SIGKILL; resolves with what happened once the process is gone. */
async function terminate(pid: number, alive: () => boolean, timeoutMs: number): Promise<'not running' | 'stopped' | 'killed' | 'still running'> {
  if (!alive()) return 'not running';
  const gone = async (ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (alive()) {
      if (Date.now() > deadline) return false;
      await sleep(100);
    }
    return true;
  };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {}
  if (await gone(timeoutMs)) return 'stopped';
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
  return (await gone(5000)) ? 'killed' : 'still running';
}

const ACTIVE_VM_STATES = new Set([VmState.VM_STATE_CREATED, VmState.VM_STATE_STARTING, VmState.VM_STATE_RUNNING, VmState.VM_STATE_STOPPING]);

/** Asks the vmm to power off every VM it runs (ACPI, killed after its stop timeout); failures are reported, not fatal. */
async function stopVms(address: string, log: (line: string) => void): Promise<void> {
  const client = createServiceClient(VmmServiceClient, address);
  const deadline = (seconds: number) => ({ deadline: new Date(Date.now() + seconds * 1000) });
  try {
    const { vms } = await unaryCall<ListVmsResponse>('vmm', (cb) => client.listVms({ state: 0, buildId: '' }, new Metadata(), deadline(10), cb));
    const running = vms.filter((vm) => vm.state === VmState.VM_STATE_STARTING || vm.state === VmState.VM_STATE_RUNNING || vm.state === VmState.VM_STATE_STOPPING);
    await Promise.all(
      running.map(async (vm) => {
        try {
          await unaryCall<unknown>('vmm', (cb) => client.stopVm({ vmId: vm.id, timeout: { seconds: '30', nanos: 0 }, force: false }, new Metadata(), deadline(60), cb));
          log(`VM ${vm.id} stopped`);
        } catch (error) {
          log(`VM ${vm.id}: could not stop it: ${(error as Error).message}`);
        }
      }),
    );
    const left = vms.filter((vm) => ACTIVE_VM_STATES.has(vm.state) && !running.includes(vm)).length;
    if (left > 0) log(`${left} VM(s) created but not started stay in the vmm's records`);
  } catch (error) {
    log(`could not list the vmm's VMs (${(error as Error).message}); VMs it runs keep running`);
  } finally {
    client.close();
  }
}

/** Stops every process of the record, in STOP_ORDER, then nats-server; true when none is left running. */
export async function stopHostSuite(record: UpRecord, options: DownOptions): Promise<boolean> {
  const { log } = options;
  let clean = true;
  for (const name of STOP_ORDER) {
    const service = record.services[name];
    if (!service) continue;
    if (name === 'vmm' && options.stopVms && serviceAlive(name, service)) await stopVms(service.address, log);
    const outcome = await terminate(service.pid, () => serviceAlive(name, service), options.timeoutMs);
    log(`${name.padEnd(12)} ${outcome} (pid ${service.pid})`);
    if (outcome === 'still running') clean = false;
  }
  if (record.nats) {
    const nats = record.nats;
    const outcome = await terminate(nats.pid, () => natsAlive(nats), options.timeoutMs);
    log(`${'nats-server'.padEnd(12)} ${outcome} (pid ${nats.pid})`);
    if (outcome === 'still running') clean = false;
  }
  return clean;
}

/** What `up` checks on the host before starting: a base OS the vmm can register, the CNI network. */
export function hostWarnings(options: { cacheDir: string; network: string; cniConfDir: string }): string[] {
  const warnings: string[] = [];
  const baseos = join(options.cacheDir, 'baseos');
  const builds = existsSync(baseos) ? readdirSync(baseos).filter((entry) => !entry.startsWith('.') && existsSync(join(baseos, entry, 'image.json'))) : [];
  if (builds.length === 0) warnings.push(`no base OS in ${baseos}: builds have nothing to boot (bash deploy/local/setup.sh, or kindling baseos build debian/bookworm)`);
  const conflist = join(options.cniConfDir, `${options.network}.conflist`);
  if (!existsSync(conflist)) warnings.push(`no CNI network ${options.network} (${conflist}): VMs cannot get a network (bash deploy/local/setup.sh, or kindling cni install)`);
  return warnings;
}
