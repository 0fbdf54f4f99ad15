/**
 * What a finished stage's marker records of the files it wrote (StageMarker.outputFiles), so that a resumed run can
 * tell an output that is as the stage left it from one truncated, overwritten or replaced since: its size and
 * modification time, and a content hash of the small ones.
 *
 * Why a hash only of small files: a resume compares sizes and times (a stat per file: a run folder of 5,000 PNGs
 * resumes in milliseconds) and reads a file only when its size is the same and its time is not — a copy of the run
 * folder without its times (`cp -r`, `rsync` without -t), a `touch`, or a rewrite of the same length. For a file of
 * up to HASHED_BYTES (images, JSON, CSV, a region's maps) the hash decides then, and costs a fraction of a second
 * when the stage finishes (the file was just written, so it is read back from the page cache). Larger files (feature
 * matrices, decoders, ridge weights: GBs) are not hashed: reading them back would cost seconds each when a stage
 * finishes, more than some stages take (a features stage that links shared entries), and as much again at every
 * resume of a copied folder. For them a new time at the same size counts as changed, as it does for the files a
 * stage reads (fileIdentity.ts), so a run folder copied without its times redoes the stages that wrote them.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';

/** What a marker records of one output file. */
export interface OutputRecord {
  size: number;
  mtimeMs: number;
  /** Of files up to HASHED_BYTES: the hex sha256 of its content (see the module's comment). */
  sha256?: string;
}

/** Outputs up to this size are hashed when their stage finishes (see the module's comment). */
export const HASHED_BYTES = 64 * 1024 * 1024;

/** The sha256 of a file's content, read in chunks (a file of any size in bounded memory). */
async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The records of a stage's `outputs` (paths relative to the run folder `out`), as they are now: each regular file's
 * size, time and (up to HASHED_BYTES) hash. A folder, or a path that is not there, gets none: its existence is
 * checked as before (stageState).
 */
export async function outputRecords(out: string, outputs: readonly string[]): Promise<Record<string, OutputRecord>> {
  const records: Record<string, OutputRecord> = {};
  for (const rel of new Set(outputs)) {
    const file = join(out, rel);
    const s = await stat(file).catch(() => null);
    if (!s?.isFile()) continue;
    records[rel] = { size: s.size, mtimeMs: s.mtimeMs, ...(s.size <= HASHED_BYTES ? { sha256: await fileSha256(file) } : {}) };
  }
  return records;
}

const bytes = (n: number) => n.toLocaleString('en-US');

/** A record as a marker holds it: anything else (a hand-edited marker) is not one. */
const isRecord = (r: unknown): r is OutputRecord =>
  typeof r === 'object' && r !== null && typeof (r as OutputRecord).size === 'number' && typeof (r as OutputRecord).mtimeMs === 'number';

/**
 * The first output of `records` (a marker's) that is not as its stage left it, in words ("decoders/z.safetensors:
 * 1,234 bytes, the stage recorded 56,789"); null when every one is. Sizes first, for all of them (a stat each), so
 * that a damaged file is found without reading any; then, for files of the same size with another time, their
 * content: the same hash is the same file (a copy without its times), and an unhashed (large) file counts as changed.
 */
export async function outputRecordChange(out: string, records: Readonly<Record<string, unknown>>): Promise<string | null> {
  const moved: [string, OutputRecord, number][] = [];
  for (const [rel, r] of Object.entries(records)) {
    if (!isRecord(r)) continue;
    const s = await stat(join(out, rel)).catch(() => null);
    if (!s) return `${rel} is missing`;
    if (!s.isFile()) return `${rel} is no longer a file`;
    if (s.size !== r.size) return `${rel}: ${bytes(s.size)} bytes, the stage recorded ${bytes(r.size)}`;
    if (s.mtimeMs !== r.mtimeMs) moved.push([rel, r, s.mtimeMs]);
  }
  for (const [rel, r, mtimeMs] of moved) {
    const when = `modified ${new Date(mtimeMs).toISOString()}, the stage recorded ${new Date(r.mtimeMs).toISOString()}`;
    if (typeof r.sha256 !== 'string') return `${rel}: ${when} (same size; too large to have been hashed, so taken as changed)`;
    if ((await fileSha256(join(out, rel)).catch(() => null)) !== r.sha256) return `${rel}: its content differs from what the stage wrote (same size; ${when})`;
  }
  return null;
}
