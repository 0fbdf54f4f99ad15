/**
 * Where the readers put large arrays. A fresh ArrayBuffer is filled one 4 KiB page fault at a time, and on some virtual
 * machines those faults cost more than reading the file (~4 ms per MiB on one bench machine, ten times the read
 * itself); the native engine, when it is loaded, installs an allocator in huge pages where 4 KiB faults are that
 * expensive (host_memory.h) and not zero-filled (`useEngineArrayAllocator` in ts/native/call.ts). Without it, plain
 * ArrayBuffers: the readers work the same.
 */
/** Allocates an ArrayBuffer that its caller fills entirely: its contents may be anything until then. */
export type ArrayAllocator = (bytes: number) => ArrayBuffer;

/** Arrays below this size gain nothing from huge pages (2 MiB each). */
const LARGE_BYTES = 2 << 20;

let large: ArrayAllocator | undefined;

/** Installs (or with undefined, removes) the allocator of large arrays. */
export function setLargeArrayAllocator(allocator: ArrayAllocator | undefined): void {
  large = allocator;
}

/**
 * An ArrayBuffer of `bytes` for a reader that overwrites every byte (or throws and drops it): from the large-array
 * allocator when one is installed and it pays (contents unspecified, so that the read is the pages' first touch),
 * else a plain zeroed ArrayBuffer.
 */
export function allocateArrayBuffer(bytes: number): ArrayBuffer {
  return large && bytes >= LARGE_BYTES ? large(bytes) : new ArrayBuffer(bytes);
}
