// Buffers read from disk for serving carry a few spare bytes in front of them, so the
// gRPC encoder can write the message header in place instead of copying the data
// into a new buffer. Only buffers registered here were allocated that way.

export const HEADROOM = 32;

const withHeadroom = new WeakSet<Buffer>();

/** A buffer of `size` bytes with HEADROOM writable bytes before it in the same allocation. */
export function allocWithHeadroom(size: number): Buffer {
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
