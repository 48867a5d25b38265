/** Command-line quantities: durations ("90m", "7d", "1h30m") and byte counts ("512M", "10G"). */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds of a duration such as 90s, 30m, 24h, 7d or 1h30m; an Error naming flag otherwise. */
export function parseDuration(text: string, flag: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new Error(`${flag} "${text}": expected a duration such as 90s, 30m, 24h, 7d or 1h30m`);
  }
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * DURATION_UNITS[unit!]!, 0);
}

const BYTE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Bytes of N, NK, NM, NG or NT (binary units; a trailing "i" or "iB"/"B" is allowed); an Error naming flag otherwise. */
export function parseBytes(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!match) throw new Error(`${flag} "${text}": expected a size in bytes such as 1073741824, 512M or 10G`);
  return Math.floor(Number(match[1]) * BYTE_UNITS[match[2]!.toLowerCase()]!);
}
