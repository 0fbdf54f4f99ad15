/**
 * What a finished stage's marker records of the files it wrote (StageMarker.outputFiles), so that a resumed run can
 * tell an output that is as the stage left it from one truncated, overwritten or replaced since: its size and
 * modification time, a content hash of the small ones and a content fingerprint of the large ones.
 *
 * A resume compares sizes and times (a stat per file: a run folder of 5,000 PNGs resumes in milliseconds) and reads
 * a file only when its size is the same and its time is not: a copy of the run folder without its times (`cp -r`,
 * `rsync` without -t), a `touch`, or a rewrite of the same length. Then:
 *
 * - a file of up to HASHED_BYTES (images, JSON, CSV, a region's maps) is compared by the sha256 of its content, taken
 *   when the stage finished (the file was just written, so read back from the page cache: a fraction of a second);
 * - a larger one (feature matrices, decoders, ridge weights: GBs) by its fingerprint (fileFingerprint): the sha256 of
 *   its size, its first and last MiB and FINGERPRINT_SAMPLES slices of 64 KiB evenly spaced between them, 3 MiB read
 *   whatever its size (milliseconds from the page cache, a few dozen seeks from a cold disk). Hashing it whole would
 *   cost seconds each when a stage finishes, more than some stages take (a features stage that links shared
 *   entries), and as much again at every resume of a copied folder. What it has to catch is a file of the stage's
 *   size with other content: another run's features or decoders of the same shape, which differ in every slice (a
 *   header of the same shape is the same, the values after it are not), or a file written again in place and left
 *   half done, which the evenly spaced slices see wherever the old and new parts meet in more than 1/17 of it.
 *   Truncation needs no read (the size differs). What it misses is a change that falls between the slices, a few
 *   values edited by hand: the fingerprint is a check against the accidents above, not a proof of integrity.
 *
 * Times that agree to the coarser of the two clocks count as the same, with no read: GNU tar's default format keeps
 * whole seconds, and a copy with its times (`cp -a`, `rsync -a`) onto Lustre (1 s), FAT (2 s) or exFAT (10 ms) keeps
 * the clock of the file system it lands on, so a stage's 12:00:01.734 comes back as 12:00:01 (truncated) or :02
 * (rounded up). A time's clock is read from the time itself (sameTime): the coarsest of 2 s, 1 s, 10 ms and 1 ms it is
 * a whole number of. Only when the two differ, one of them finer than a second, are they compared to within the
 * coarser one: two whole-second times 1 s apart may be two writes on a 1 s clock, so they are compared by content.
 *
 * A large file's record written before fingerprints (no `fingerprint`: markers written between the records and the
 * fingerprints, by development builds) cannot be compared: a new time at its size beyond the clocks' difference still
 * counts as changed, as it did when it was written.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** What a marker records of one output file. */
export interface OutputRecord {
  size: number;
  mtimeMs: number;
  /** Of files up to HASHED_BYTES: the hex sha256 of its content (see the module's comment). */
  sha256?: string;
  /** Of larger files: the hex fileFingerprint of its content (see the module's comment); absent in older records. */
  fingerprint?: string;
}

/** Outputs up to this size are hashed when their stage finishes (see the module's comment). */
export const HASHED_BYTES = 64 * 1024 * 1024;

/** A large file's fingerprint reads its first and last FINGERPRINT_END bytes … */
export const FINGERPRINT_END = 1024 * 1024;
/** … and this many slices of FINGERPRINT_SLICE bytes evenly spaced between them (see the module's comment). */
export const FINGERPRINT_SAMPLES = 16;
export const FINGERPRINT_SLICE = 64 * 1024;

/** The sha256 of a file's content, read in chunks (a file of any size in bounded memory). */
async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The fingerprint of a file of more than HASHED_BYTES: the hex sha256 of its size (decimal, then a newline), its
 * first FINGERPRINT_END bytes, FINGERPRINT_SAMPLES slices of FINGERPRINT_SLICE bytes evenly spaced between the ends
 * and its last FINGERPRINT_END bytes, in that order. Its size is the one it has as it is read.
 */
export async function fileFingerprint(path: string): Promise<string> {
  const f = await open(path, 'r');
  try {
    const size = (await f.stat()).size;
    const hash = createHash('sha256').update(`${size}\n`);
    const buf = Buffer.alloc(FINGERPRINT_END);
    const slice = async (at: number, length: number) => {
      const { bytesRead } = await f.read(buf, 0, Math.max(0, Math.min(length, size - at)), at);
      hash.update(buf.subarray(0, bytesRead));
    };
    const gap = size - 2 * FINGERPRINT_END - FINGERPRINT_SLICE;
    await slice(0, FINGERPRINT_END);
    for (let j = 1; j <= FINGERPRINT_SAMPLES && gap > 0; j++) await slice(FINGERPRINT_END + Math.floor((j * gap) / (FINGERPRINT_SAMPLES + 1)), FINGERPRINT_SLICE);
    await slice(Math.max(0, size - FINGERPRINT_END), FINGERPRINT_END);
    return hash.digest('hex');
  } finally {
    await f.close();
  }
}

/** The coarsest clock a modification time (ms) is a whole number of ticks of: 2 s, 1 s, 10 ms, 1 ms; 0 when finer. */
const clock = (ms: number): number => [2000, 1000, 10, 1].find((t) => ms % t === 0) ?? 0;

/**
 * Whether two modification times are the same file's: equal, or one on a clock finer than a second and the other
 * on a coarser one, within its tick (a copy with its times onto a file system that keeps fewer: see the module's
 * comment).
 */
export function sameTime(a: number, b: number): boolean {
  if (a === b) return true;
  const fine = Math.min(clock(a), clock(b));
  const coarse = Math.max(clock(a), clock(b));
  return fine < coarse && fine < 1000 && Math.abs(a - b) < coarse;
}

/** A record as a marker holds it: anything else (a hand-edited marker) is not one. */
const isRecord = (r: unknown): r is OutputRecord =>
  typeof r === 'object' && r !== null && typeof (r as OutputRecord).size === 'number' && typeof (r as OutputRecord).mtimeMs === 'number';

/**
 * The records of a stage's `outputs` (paths relative to the run folder `out`), as they are now: each regular file's
 * size, time and its hash (up to HASHED_BYTES) or fingerprint (larger). A folder, or a path that is not there, gets
 * none: its existence is checked as before (stageState).
 *
 * `known`: records taken of these files before (the img2img merge's: its shards' markers'). A file whose size and
 * time are still those of its known record (sameTime) keeps its hash or fingerprint, now with its present time; only
 * the others are read. The merge of 1,000 images × 5 seeds so stats its 5,000 PNGs rather than reading 2 GB again.
 */
export async function outputRecords(
  out: string,
  outputs: readonly string[],
  known: Readonly<Record<string, unknown>> = {},
): Promise<Record<string, OutputRecord>> {
  const records: Record<string, OutputRecord> = {};
  for (const rel of new Set(outputs)) {
    const file = join(out, rel);
    const s = await stat(file).catch(() => null);
    if (!s?.isFile()) continue;
    const k = Object.hasOwn(known, rel) ? known[rel] : undefined;
    const content = s.size <= HASHED_BYTES ? 'sha256' : 'fingerprint';
    if (isRecord(k) && k.size === s.size && sameTime(k.mtimeMs, s.mtimeMs) && typeof k[content] === 'string') {
      records[rel] = { size: s.size, mtimeMs: s.mtimeMs, [content]: k[content] };
    } else {
      records[rel] = { size: s.size, mtimeMs: s.mtimeMs, ...(content === 'sha256' ? { sha256: await fileSha256(file) } : { fingerprint: await fileFingerprint(file) }) };
    }
  }
  return records;
}

const bytes = (n: number) => n.toLocaleString('en-US');

/** Who recorded the files, in outputRecordChange's words: a stage's marker by default, or another record of them. */
export interface Recorder {
  /** `the stage recorded` (before a size or time). */
  recorded: string;
  /** `what the stage wrote` (what the content differs from). */
  wrote: string;
}
const STAGE: Recorder = { recorded: 'the stage recorded', wrote: 'what the stage wrote' };

/**
 * The first output of `records` (a marker's) that is not as its stage left it, in words ("decoders/z.safetensors:
 * 1,234 bytes, the stage recorded 56,789"); null when every one is. Sizes first, for all of them (a stat each), so
 * that a damaged file is found without reading any; then, for files of the same size with another time (sameTime),
 * their content: the same hash or fingerprint is the same file (a copy without its times); a large file recorded
 * without a fingerprint counts as changed.
 */
export async function outputRecordChange(out: string, records: Readonly<Record<string, unknown>>, recorder: Recorder = STAGE): Promise<string | null> {
  const moved: [string, OutputRecord, number][] = [];
  for (const [rel, r] of Object.entries(records)) {
    if (!isRecord(r)) continue;
    const s = await stat(join(out, rel)).catch(() => null);
    if (!s) return `${rel} is missing`;
    if (!s.isFile()) return `${rel} is no longer a file`;
    if (s.size !== r.size) return `${rel}: ${bytes(s.size)} bytes, ${recorder.recorded} ${bytes(r.size)}`;
    if (!sameTime(s.mtimeMs, r.mtimeMs)) moved.push([rel, r, s.mtimeMs]);
  }
  for (const [rel, r, mtimeMs] of moved) {
    const when = `modified ${new Date(mtimeMs).toISOString()}, ${recorder.recorded} ${new Date(r.mtimeMs).toISOString()}`;
    const file = join(out, rel);
    if (typeof r.sha256 === 'string') {
      if ((await fileSha256(file).catch(() => null)) !== r.sha256) return `${rel}: its content differs from ${recorder.wrote} (same size; ${when})`;
    } else if (typeof r.fingerprint === 'string') {
      if ((await fileFingerprint(file).catch(() => null)) !== r.fingerprint) return `${rel}: its content differs from ${recorder.wrote} (same size, other sampled content; ${when})`;
    } else return `${rel}: ${when} (same size; recorded without a hash or fingerprint, so taken as changed)`;
  }
  return null;
}
