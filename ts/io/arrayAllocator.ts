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

/**
 * Maps a byte range of an open file (its descriptor) as an ArrayBuffer (copy-on-write: writes to it never reach the
 * file), or throws. The engine installs one (`useEngineFileMapping` in ts/native/call.ts) for the commands that read
 * large .npy inputs.
 */
export type FileMapper = (fd: number, offset: number, bytes: number) => ArrayBuffer;

let mapper: FileMapper | undefined;

/** Installs (or with undefined, removes) the mapper of large file ranges. */
export function setLargeFileMapper(m: FileMapper | undefined): void {
  mapper = m;
}

/**
 * The `bytes` at `offset` of the open file `fd` (the one whose header the reader read), mapped instead of read (no copy, no fresh pages: the page cache's
 * own), when a mapper is installed and the range is large; undefined where the caller should read it instead (no
 * mapper, a small range, or a file the mapper could not map: the read then reports what is wrong with it). The file
 * must not shrink while the array is in use (a read past its new end is SIGBUS, as with numpy's mmap_mode).
 */
export function mapFileRange(fd: number, offset: number, bytes: number): ArrayBuffer | undefined {
  if (!mapper || bytes < LARGE_BYTES) return undefined;
  try {
    return mapper(fd, offset, bytes);
  } catch {
    return undefined;
  }
}
