/** Typings of the engine's streaming gunzip on ISA-L (native/addon/addon_gunzip.cpp). */

/** Opaque handle of one gunzip stream's state (createGunzipInflater). */
export type GunzipInflater = { readonly __brand: 'GunzipInflater' };

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
  /** Input bytes used; the rest is to be passed again, followed by more input. */
  consumed: number;
  /** Bytes written to the start of the output. */
  produced: number;
  /** The last gzip member has ended: what follows in the file is not gzip data and is left unread. */
  ended: boolean;
}

export interface GunzipBinding {
  gunzipInfo(): NativeGunzipInfo;
  createGunzipInflater(): GunzipInflater;
  /**
   * Inflates `input` into `output` on libuv's pool. Rejects with an Error whose `code` is zlib's: Z_DATA_ERROR
   * (corrupt data, a CRC or length mismatch) or Z_BUF_ERROR (the input ended inside a member, `inputEnds` true).
   */
  gunzipStep(inflater: GunzipInflater, input: Uint8Array, inputEnds: boolean, output: Uint8Array): Promise<GunzipStepResult>;
}
