/** How values read in a terminal: short digests, sizes, ages, tables, and JSON documents. */

/** "blake3-blocks-4m:79ab…" as its algorithm and 12 hex digits, as docker shows image ids. */
export const shortDigest = (digest: string): string => digest.slice(0, digest.indexOf(':') + 13);

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 → "1.5 KiB"; whole bytes below 1 KiB. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** How long ago a moment was, as docker ps says it: "12 seconds ago", "3 hours ago"; "-" for none. */
export function formatAge(when: Date | undefined, now: number = Date.now()): string {
  if (!when || when.getTime() <= 0) return '-';
  const seconds = Math.max(0, Math.round((now - when.getTime()) / 1000));
  const steps: [number, string][] = [
    [86_400, 'day'],
    [3_600, 'hour'],
    [60, 'minute'],
  ];
  for (const [size, name] of steps) {
    const count = Math.floor(seconds / size);
    if (count >= 1) return `${count} ${name}${count === 1 ? '' : 's'} ago`;
  }
  return `${seconds} second${seconds === 1 ? '' : 's'} ago`;
}

/** Rows under upper-case headers, each column as wide as its widest cell, two spaces apart. */
export function printTable(out: NodeJS.WritableStream, headers: string[], rows: string[][]): void {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  out.write([line(headers), ...rows.map(line)].join('\n') + '\n');
}

/** One JSON document, indented, ending in a newline. */
export function printJson(out: NodeJS.WritableStream, document: unknown): void {
  out.write(`${JSON.stringify(document, null, 2)}\n`);
}

/** A timestamp as JSON carries it: ISO 8601, or null when unset. */
export const isoOrNull = (when: Date | undefined): string | null => (when && when.getTime() > 0 ? when.toISOString() : null);
