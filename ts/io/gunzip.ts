/**
 * The readers' gunzip: a file's gzip members, decompressed in turn, as a byte stream. On Intel's ISA-L (the engine
 * loads libisal.so.2 when it is there: 1.3–1.8× the rate of Node's zlib in `bench data`), else on Node's zlib. Both
 * check every member's header, CRC-32 and length. After the last member, ISA-L's stream ends; zlib's fails on bytes
 * that are not zeros, and ByteStream (its one reader) then reads to the end of the gzip data again, so that a reader
 * sees the same bytes, and a damaged file the same zlib message, either way (two exceptions, README "Brain data":
 * an incomplete Huffman code, which only zlib refuses, and corrupt deflate data after a header over 64 KiB).
 * BRAINLATENT_GUNZIP picks: 'auto' (the default: ISA-L when it loads), 'isa-l' (required: an error says why it
 * cannot load) or 'zlib'.
 *
 * On ISA-L the engine reads the file itself and fills two output buffers in turn, one while the reader reads the
 * other: no input and no fresh output memory passes through JavaScript (a plain gunzip of a 1 GB session ran ~0.3 s
 * faster than with 1 MiB reads in JavaScript and a new 4 MiB buffer a step). Its chunks are therefore lent.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { getSystemErrorName } from 'node:util';
import { createGunzip } from 'node:zlib';

import { EnvironmentError } from '../errors.js';
import { nativeSync } from '../native/call.js';
import type { GunzipStepResult } from '../native/gunzipTypes.js';

/** File reads (zlib: Node's reads; ISA-L: the engine's). */
const CHUNK = 1 << 20;
/** ISA-L's output per step: a step is a pool thread's round trip, and 4 MiB ones ran ~10% faster than 1 MiB ones. */
const STEP_OUT = 4 << 20;
/** ISA-L's first step, smaller: a header reader wants a few hundred bytes and closes the stream. */
const FIRST_STEP_OUT = 256 << 10;
const CHOICES = ['auto', 'isa-l', 'zlib'] as const;

/**
 * A file's bytes a chunk at a time. A chunk is lent: it holds its bytes until the iterator's next `next()`, which may
 * reuse its memory (copy what is kept). `close()` stops early and closes the file.
 */
export interface ChunkSource extends AsyncIterable<Buffer> {
  close(): void;
}

/** A Readable as a ChunkSource (its chunks are its own: lent or not, they stay). */
export function readableSource(r: Readable): ChunkSource {
  return { [Symbol.asyncIterator]: () => r[Symbol.asyncIterator]() as AsyncIterator<Buffer>, close: () => r.destroy() };
}

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
 * The file's bytes before `end` (all when absent), gunzipped, as lent chunks (ChunkSource). Its errors carry zlib's
 * codes either way: Z_DATA_ERROR (corrupt data, a bad CRC or length) or Z_BUF_ERROR (the file ends inside a member);
 * an ISA-L one has `coarse` true where its words name one of ISA-L's three coarse kinds of corrupt deflate data. A
 * failed read is Node's fs error (code 'EIO' and the like, syscall 'read') either way.
 */
export function gunzipOf(path: string, end?: number): ChunkSource {
  if (gunzipChoice().inflater === 'isa-l') {
    const chunks = isalChunks(path, end);
    // (a generator closed before its first `next()` never runs, so it opens nothing; closed at a `yield`, its `finally`
    // waits for the step in flight and closes the file)
    return { [Symbol.asyncIterator]: () => chunks, close: () => void chunks.return(undefined).catch(() => undefined) };
  }
  const file = createReadStream(path, { highWaterMark: CHUNK, ...(end !== undefined ? { end: end - 1 } : {}) });
  const gunzip = createGunzip({ chunkSize: CHUNK });
  file.on('error', (e) => gunzip.destroy(e));
  const out = file.pipe(gunzip);
  // (a stream closed early, as a header reader closes it, closes the file too: pipe() leaves its source open)
  out.once('close', () => file.destroy());
  return readableSource(out);
}

type Settled = { value: GunzipStepResult } | { error: unknown };

/**
 * ISA-L's output: the engine reads the file (its descriptor, open here) and fills one buffer while the reader reads
 * the other, from the second chunk on (the first, small, may be all a header reader wants).
 */
async function* isalChunks(path: string, end: number | undefined): AsyncGenerator<Buffer, void, undefined> {
  const fh = await open(path, 'r');
  let step: Promise<Settled> | undefined;
  try {
    const reader = nativeSync((b) => b.createGunzipFileReader(fh.fd, end ?? Infinity, CHUNK));
    const buffers = [Buffer.allocUnsafeSlow(STEP_OUT), Buffer.allocUnsafeSlow(STEP_OUT)];
    // (settled into a value at once: a step that fails while the generator waits at a `yield` is no unhandled rejection)
    const start = (out: Buffer): Promise<Settled> =>
      nativeSync((b) => b.gunzipFileStep(reader, out)).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
    let which = 0, readAhead = false;
    step = start(buffers[0].subarray(0, FIRST_STEP_OUT));
    for (;;) {
      const s = await step;
      step = undefined;
      if ('error' in s) {
        // Where zlib's stream would have given what the step made before it failed, it comes first: before a file
        // that ends inside a member (zlib finds it at the end of its input, after its output went out: a reader that
        // has all it asks for then finds bytes past them) and before a failed read. Before corrupt data, not: zlib
        // drops the output of the call that found them.
        const e = s.error as { produced?: unknown; code?: unknown; syscall?: unknown } | undefined;
        const made = e?.code === 'Z_BUF_ERROR' || e?.syscall === 'read' ? e.produced : 0;
        if (typeof made === 'number' && made > 0) yield buffers[which].subarray(0, made);
        throw readError(s.error, path);
      }
      const { produced, ended } = s.value;
      const out = buffers[which];
      which ^= 1;
      if (!ended && readAhead) step = start(buffers[which]);
      if (produced > 0) yield out.subarray(0, produced);
      if (ended) return;
      step ??= start(buffers[which]);
      readAhead = true;
    }
  } finally {
    // (the engine reads the descriptor until its step settles)
    if (step) await step;
    await fh.close();
  }
}

/** A failed read in the engine as Node's fs errors are ('EIO: input/output error, read'); other errors as they are. */
function readError(e: unknown, path: string): unknown {
  const x = e as { errno?: unknown; syscall?: unknown; message?: string };
  if (x?.syscall !== 'read' || typeof x.errno !== 'number') return e;
  const code = getSystemErrorName(x.errno);
  return Object.assign(new Error(`${code}: ${String(x.message).toLowerCase()}, read`), { code, errno: x.errno, syscall: 'read', path });
}
