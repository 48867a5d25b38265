import type { GuestConnection } from '../ports/guest-connector.ts';

/** The guest's /etc/passwd and /etc/group; a missing one has no entries, as Docker reads it (numeric ids still work). */
export async function readGuestAccounts(connection: GuestConnection): Promise<{ passwd: string; group: string }> {
  const read = (path: string): Promise<string> =>
    connection.readFile(path).then(
      (data) => data.toString('utf8'),
      async (error: unknown) => ((await connection.stat(path)) === undefined ? '' : Promise.reject(error)),
    );
  const [passwd, group] = await Promise.all([read('/etc/passwd'), read('/etc/group')]);
  return { passwd, group };
}
