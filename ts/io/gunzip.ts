/**
 * The readers' gunzip: a file's gzip members, decompressed in turn, as a byte stream. On Intel's ISA-L (the engine
 * loads libisal.so.2 when it is there: 1.3–1.8× the rate of Node's zlib in `bench data`), else on Node's zlib. Both
 * check every member's header, CRC-32 and length. After the last member, ISA-L's stream ends; zlib's fails on bytes
 * that are not zeros, and ByteStream (its one reader) then reads to the end of the gzip data again, so that a reader
 * sees the same bytes, and a damaged file the same zlib message, either way (two exceptions, README "Brain data":
 * an incomplete Huffman code, which only zlib refuses, and corrupt deflate data after a header over 64 KiB).
 * BRAINLATENT_GUNZIP picks: 'auto' (the default: ISA-L when it loads), 'isa-l' (required: an error says why it
 * cannot load) or 'zlib'.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { EnvironmentError } from '../errors.js';
import { nativeSync } from '../native/call.js';

/** File reads. */
const CHUNK = 1 << 20;
/** ISA-L's output per step: a step is a pool thread's round trip, and 4 MiB ones ran ~10% faster than 1 MiB ones. */
const STEP_OUT = 4 << 20;
const CHOICES = ['auto', 'isa-l', 'zlib'] as const;

export interface GunzipChoice {
  /** The inflater the readers use. */
  inflater: 'isa-l' | 'zlib';
  /** ISA-L's library and version, or why zlib is used. */
  detail: string;
}

let chosen: GunzipChoice | undefined;

/** Reads BRAINLATENT_GUNZIP again at the next gunzip (a process that changed it; the tests, which try both). */
export function resetGunzipChoice(): void {
  chosen = undefined;
}

/** The inflater BRAINLATENT_GUNZIP and this machine give (decided at the first gunzip, then kept). */
export function gunzipChoice(): GunzipChoice {
  if (chosen) return chosen;
  const raw = process.env.BRAINLATENT_GUNZIP ?? '';
  const want = raw === '' ? 'auto' : raw;
  if (!(CHOICES as readonly string[]).includes(want)) {
    throw new EnvironmentError('BRAINLATENT_GUNZIP', `BRAINLATENT_GUNZIP must be ${CHOICES.map((c) => `'${c}'`).join(', ')}, got '${raw}'`);
  }
  if (want === 'zlib') return (chosen = { inflater: 'zlib', detail: "Node's zlib (BRAINLATENT_GUNZIP=zlib)" });
  const info = nativeSync((b) => b.gunzipInfo());
  if (info.available) return (chosen = { inflater: 'isa-l', detail: `ISA-L ${info.version || '(version unknown)'} (${info.library})` });
  if (want === 'isa-l') throw new EnvironmentError('BRAINLATENT_GUNZIP', `BRAINLATENT_GUNZIP=isa-l, but ISA-L cannot be used: ${info.reason}`);
  return (chosen = { inflater: 'zlib', detail: `Node's zlib (ISA-L: ${info.reason})` });
}

/**
 * The file's bytes before `end` (all when absent), gunzipped. Its errors carry zlib's codes either way: Z_DATA_ERROR
 * (corrupt data, a bad CRC or length) or Z_BUF_ERROR (the file ends inside a member); an ISA-L one has `coarse`
 * true where its words name one of ISA-L's three coarse kinds of corrupt deflate data.
 */
export function gunzipOf(path: string, end?: number): Readable {
  const inflater = gunzipChoice().inflater;
  const file = createReadStream(path, { highWaterMark: CHUNK, ...(end !== undefined ? { end: end - 1 } : {}) });
  let out: Readable;
  if (inflater === 'zlib') {
    const gunzip = createGunzip({ chunkSize: CHUNK });
    file.on('error', (e) => gunzip.destroy(e));
    out = file.pipe(gunzip);
  } else {
    out = Readable.from(isalChunks(file), { objectMode: false, highWaterMark: STEP_OUT });
  }
  // (a stream closed early, as a header reader closes it, closes the file too: pipe() leaves its source open, and a
  // generator destroyed before it started never runs its `finally`)
  out.once('close', () => file.destroy());
  return out;
}

/** ISA-L's output, a step at a time: each step fills at most STEP_OUT bytes, and input it left is given again with more. */
async function* isalChunks(file: Readable): AsyncGenerator<Buffer> {
  const inflater = nativeSync((b) => b.createGunzipInflater());
  const input = file[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let pending: Buffer = Buffer.alloc(0);
  let fileEnded = false;
  const more = async (): Promise<void> => {
    const next = await input.next();
    if (next.done) fileEnded = true;
    else pending = pending.length > 0 ? Buffer.concat([pending, next.value]) : next.value;
  };
  try {
    await more();
    for (;;) {
      const out = Buffer.allocUnsafe(STEP_OUT);
      const r = await nativeSync((b) => b.gunzipStep(inflater, pending, fileEnded, out));
      pending = pending.subarray(r.consumed);
      if (r.produced > 0) yield out.subarray(0, r.produced);
      if (r.ended) return;
      if (r.produced < STEP_OUT) {
        // (the input is used up, or a member boundary needs more bytes; with none left the engine has failed or ended)
        if (fileEnded) throw new Error('gunzip: the engine neither ended nor failed at the end of the file (a bug to report)');
        await more();
      }
    }
  } finally {
    file.destroy();
  }
}

