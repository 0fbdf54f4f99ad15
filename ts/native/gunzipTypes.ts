/** Typings of the engine's streaming gunzip on ISA-L (native/addon/addon_gunzip.cpp). */

/** Opaque handle of one gzip file's gunzip stream (createGunzipFileReader). */
export type GunzipFileReader = { readonly __brand: 'GunzipFileReader' };

/** Whether ISA-L's inflate could be loaded (libisal.so.2, or BRAINLATENT_ISAL_LIB), from where, or why not. */
export interface NativeGunzipInfo {
  available: boolean;
  /** The library's real path, when available. */
  library: string;
  /** From the library's file name ('2.30'), or '' when it does not say. */
  version: string;
  /** Why not, when unavailable. */
  reason: string;
}

export interface GunzipStepResult {
  /** Bytes written to the start of the output: all of it unless the stream ended. */
  produced: number;
  /** The last gzip member has ended: what follows in the file is not gzip data and is left unread. */
  ended: boolean;
}

export interface GunzipBinding {
  gunzipInfo(): NativeGunzipInfo;
  /**
   * A gunzip stream over the file open as `fd` (the caller's: open until the reader's last step has settled), from
   * its start to `end` bytes (Infinity: its end), which the engine reads `readBytes` at a time.
   */
  createGunzipFileReader(fd: number, end: number, readBytes: number): GunzipFileReader;
  /**
   * Reads and inflates into `output` on libuv's pool, until it is full or the stream ends. Rejects with an Error
   * whose `code` is zlib's: Z_DATA_ERROR (corrupt data, a CRC or length mismatch) or Z_BUF_ERROR (the file ends
   * inside a member); or, where a read failed, with `errno` (negative, as Node's) and `syscall` 'read'. Either has
   * `produced`, the bytes written to the output before the failure.
   */
  gunzipFileStep(reader: GunzipFileReader, output: Uint8Array): Promise<GunzipStepResult>;
}
