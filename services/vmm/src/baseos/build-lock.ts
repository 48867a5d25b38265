import { open, readFile, rm } from 'node:fs/promises';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Runs work while holding lockFile (O_EXCL, holding our pid). A lock whose pid is gone is stale and taken
 * over; a live one is waited for, so two builds of the same recipe never run at once.
 */
export async function withBuildLock<T>(
  lockFile: string,
  log: (line: string) => void,
  work: () => Promise<T>,
): Promise<T> {
  let announced = false;
  for (;;) {
    try {
      const fh = await open(lockFile, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (!pid || !alive(pid)) {
        await rm(lockFile, { force: true });
        continue;
      }
      if (!announced) log(`I: waiting for build process ${pid} holding ${lockFile}`);
      announced = true;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await work();
  } finally {
    await rm(lockFile, { force: true });
  }
}
