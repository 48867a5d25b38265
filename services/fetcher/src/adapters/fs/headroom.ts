// Buffers read from disk for serving carry a few spare bytes in front of them, so the
// gRPC encoder can write the message header in place instead of copying the data
// into a new buffer. Only buffers registered here were allocated that way.
//
// Buffers of the serving size (1 MiB) are reused once their one reader hands them back
// (recycle): a fresh 1 MiB allocation per message costs page faults and, when the
// reader lags, promotion to V8's old space and the major GCs that follow.

export const HEADROOM = 32;
export const POOLED_SIZE = 1024 * 1024;
const POOL_LIMIT = 8;

const withHeadroom = new WeakSet<Buffer>();
const pool: Buffer[] = [];
const pooled = new WeakSet<ArrayBufferLike>();

/** A buffer of `size` bytes with HEADROOM writable bytes before it in the same allocation. */
export function allocWithHeadroom(size: number): Buffer {
  if (size === POOLED_SIZE) {
    const reused = pool.pop();
    if (reused) {
      pooled.delete(reused.buffer);
      return reused;
    }
  }
  const whole = Buffer.allocUnsafeSlow(HEADROOM + size);
  const data = whole.subarray(HEADROOM);
  withHeadroom.add(data);
  return data;
}

/** Marks a view of a buffer from allocWithHeadroom that starts where that buffer started. */
export function keepsHeadroom(original: Buffer, view: Buffer): Buffer {
  if (withHeadroom.has(original) && view.byteOffset === original.byteOffset) withHeadroom.add(view);
  return view;
}

export function hasHeadroom(buffer: Buffer): boolean {
  return withHeadroom.has(buffer);
}

/**
 * Hands back a buffer its reader is done with, for allocWithHeadroom to return again. Only a
 * view of a whole pooled-size buffer from allocWithHeadroom is kept: a part of one (a message
 * that took half of it) may share its bytes with another part still in use, so it is left to GC.
 * The caller must hold the only reference that will ever be read again.
 */
export function recycle(buffer: Buffer): void {
  if (!withHeadroom.has(buffer) || buffer.length !== POOLED_SIZE || buffer.byteOffset !== HEADROOM) return;
  if (buffer.buffer.byteLength !== HEADROOM + POOLED_SIZE || pooled.has(buffer.buffer) || pool.length >= POOL_LIMIT) return;
  pooled.add(buffer.buffer);
  pool.push(buffer);
}
