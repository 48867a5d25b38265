/**
 * Writes every byte of a key outside [A-Za-z0-9_-] as <marker><two hex digits>, so any key becomes a
 * file name or a JetStream KV key (each allows a different few characters; these are in both).
 */
export function escapeKey(key: string, marker: '%' | '='): string {
  return key.replace(/[^A-Za-z0-9_-]/g, (c) => [...Buffer.from(c)].map((b) => `${marker}${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}
