/**
 * Whether a reconstruction's images fit where it writes them, checked before any long work: a seed count typed
 * with a few zeros too many (`--seeds 50000`) otherwise ran for days and then filled the disk. The images are
 * most of what a run writes and the only part that grows with the seeds: per test image its original and its
 * z-only image, and one sample per seed.
 */
import { readdir, stat, statfs } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

import type { FieldNames } from '../config/fieldNames.js';
import { bytesText } from '../ridge/memoryPlan.js';

/** The PNG files of a run's images, and their size at the least (deflate's best ratio) and as photographs go. */
export interface ImageOutputs {
  files: number;
  /** Bytes even if every image compressed as well as deflate can (1,032:1), header and row filters included. */
  leastBytes: number;
  /** Bytes at half of the pixels' raw RGB bytes: SD's samples and NSD's photographs compress to about that. */
  typicalBytes: number;
}

const PNG_OVERHEAD = 57; // signature, IHDR, one IDAT's framing, IEND
const DEFLATE_BEST_RATIO = 1032;
const TYPICAL_PNG_RATIO = 0.5;

function pngs(count: number, side: number): ImageOutputs {
  const raw = 3 * side * side + side; // RGB rows, each with its filter byte
  return {
    files: count,
    leastBytes: count * (PNG_OVERHEAD + Math.ceil(raw / DEFLATE_BEST_RATIO)),
    typicalBytes: count * (PNG_OVERHEAD + raw * TYPICAL_PNG_RATIO),
  };
}

/**
 * The images a reconstruction writes for `testImages` test images: the original and each seed's sample at the
 * img2img size (`size`), the z-only image at the decoded latent's (`zSize`).
 */
export function runImageOutputs(testImages: number, seeds: number, size: number, zSize: number): ImageOutputs {
  const parts = [pngs(testImages * (1 + seeds), size), pngs(testImages, zSize)];
  return {
    files: parts[0].files + parts[1].files,
    leastBytes: parts[0].leastBytes + parts[1].leastBytes,
    typicalBytes: parts[0].typicalBytes + parts[1].typicalBytes,
  };
}

/**
 * Free bytes and files (inodes; null where the file system does not count them), the folder they are of, and its
 * device (the file system's id: runs on one device share its free space).
 */
export interface FreeSpace {
  bytes: number;
  files: number | null;
  at: string;
  device: number;
}

/** The free space where `path` is, or would be made (its nearest existing folder's file system). */
export async function freeSpace(path: string): Promise<FreeSpace> {
  let at = resolve(path);
  for (;;) {
    try {
      const s = await statfs(at);
      const device = (await stat(at)).dev;
      // (btrfs and some network file systems report no inode count: files and ffree 0)
      return { bytes: Number(s.bavail) * Number(s.bsize), files: Number(s.files) > 0 ? Number(s.ffree) : null, at, device };
    } catch (e) {
      const parent = dirname(at);
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || parent === at) throw e;
      at = parent;
    }
  }
}

/** PNG files already in the run folder's images/ (a resumed run keeps its finished samples). */
async function imagesPresent(out: string): Promise<number> {
  try {
    return (await readdir(join(out, 'images'))).filter((f) => f.endsWith('.png')).length;
  } catch {
    return 0;
  }
}

const count = (n: number): string => n.toLocaleString('en-US');

/** What is left of `images` to write in `out`: the images already in its images/ count as written (a resumed run keeps them). */
export async function imagesToWrite(out: string, images: ImageOutputs): Promise<ImageOutputs & { present: number }> {
  const present = await imagesPresent(out);
  const files = Math.max(0, images.files - present);
  const share = images.files > 0 ? files / images.files : 0;
  return { files, leastBytes: images.leastBytes * share, typicalBytes: images.typicalBytes * share, present };
}

/** How `images` stand against `free`: 'files' or 'bytes' where they cannot fit, 'typical' where they fit only if better compressed than photographs. */
function shortfall(images: ImageOutputs, free: FreeSpace): 'files' | 'bytes' | 'typical' | null {
  if (free.files !== null && images.files > free.files) return 'files';
  if (images.leastBytes > free.bytes) return 'bytes';
  return images.typicalBytes > free.bytes ? 'typical' : null;
}

/** The file system a run writes on, said as imageSpaceCheck says it. */
const fileSystemOf = (out: string, free: FreeSpace) => `the file system of ${free.at === resolve(out) ? out : `${out} (not made yet: that of ${free.at})`}`;

/**
 * What the free space where `out` is says of the run's images: a problem where they cannot fit (more files than
 * the file system can still hold, or more bytes even at deflate's best ratio), a warning where they fit only if
 * they compress better than photographs do; null where they fit. Images already in `out`/images count as written.
 * `free_`: where the free space comes from (the tests' way to a small disk).
 */
export async function imageSpaceCheck(
  out: string,
  images: ImageOutputs,
  what: { testImages: number; seeds: number; size: number },
  names: FieldNames,
  free_: (path: string) => Promise<FreeSpace> = freeSpace,
): Promise<{ problem?: string; warning?: string } | null> {
  const left = await imagesToWrite(out, images);
  const { files, present } = left;
  if (files === 0) return null;
  const free = await free_(out);
  const where = fileSystemOf(out, free);
  const writes =
    `${names.valued('img2img.seeds', what.seeds)} for ${count(what.testImages)} test image(s) at ${what.size} px: the run writes ` +
    `${count(files)} image file(s)${present ? ` beyond the ${count(present)} already there` : ''} (each test image's original, its z-only image and one per seed)`;
  const fewer = `use fewer seeds (${names.nameAndFlag('img2img.seeds')}) or test images (${names.nameAndFlag('nsd.testImages')}), or another run folder (${names.name('out')})`;
  switch (shortfall(left, free)) {
    case 'files':
      return { problem: `${writes}, more files than the ${count(free.files!)} ${where} can still hold; ${fewer}` };
    case 'bytes':
      return { problem: `${writes}, at least ${bytesText(left.leastBytes)} even at deflate's best compression, more than the ${bytesText(free.bytes)} free on ${where}; ${fewer}` };
    case 'typical':
      return {
        warning: `${writes}, about ${bytesText(left.typicalBytes)} as PNGs of photographs, more than the ${bytesText(free.bytes)} free on ${where}: the run may fill it; ${fewer}`,
      };
  }
  return null;
}

/** A run's images (runImageOutputs) and the folder it writes them in: a batch sums those of its runs on one file system. */
export interface PlannedImages {
  out: string;
  images: ImageOutputs;
}

/** The worse of two shortfalls (files and bytes alike: either one means the images cannot fit). */
const severity = (s: ReturnType<typeof shortfall>): number => (s === null ? 0 : s === 'typical' ? 1 : 2);

/**
 * What the free space says of several runs' images together (a batch's subjects under one root), per file system
 * that two or more of them write on: each run may fit alone and all of them not. One result per file system they
 * overfill together (`runs`: indices into `runs`): a problem where they cannot fit, a warning where they fit only if
 * better compressed than photographs; none where one of them alone already overfills it as much (its own check says
 * so). Images already in a run's images/ count as written. `free_` as imageSpaceCheck's.
 */
export async function sharedSpaceCheck(
  runs: readonly PlannedImages[],
  free_: (path: string) => Promise<FreeSpace> = freeSpace,
): Promise<{ runs: number[]; problem?: string; warning?: string }[]> {
  const groups = new Map<number, { free: FreeSpace; runs: number[]; left: ImageOutputs[] }>();
  for (const [i, r] of runs.entries()) {
    const left = await imagesToWrite(r.out, r.images);
    if (left.files === 0) continue;
    const free = await free_(r.out);
    const g = groups.get(free.device) ?? { free, runs: [], left: [] };
    g.runs.push(i);
    g.left.push(left);
    groups.set(free.device, g);
  }
  const found: { runs: number[]; problem?: string; warning?: string }[] = [];
  for (const { free, runs: idx, left } of groups.values()) {
    if (idx.length < 2) continue;
    const sum: ImageOutputs = {
      files: left.reduce((n, l) => n + l.files, 0),
      leastBytes: left.reduce((n, l) => n + l.leastBytes, 0),
      typicalBytes: left.reduce((n, l) => n + l.typicalBytes, 0),
    };
    const together = shortfall(sum, free);
    if (together === null || Math.max(...left.map((l) => severity(shortfall(l, free)))) >= severity(together)) continue;
    const writes = `the ${idx.length} runs on the file system of ${free.at} write ${count(sum.files)} image file(s) together`;
    const fewer = 'use fewer seeds (img2img.seeds) or test images (nsd.testImages), or put some of the runs on another file system';
    if (together === 'files') found.push({ runs: idx, problem: `${writes}, more files than the ${count(free.files!)} it can still hold (each run alone fits); ${fewer}` });
    else if (together === 'bytes') {
      found.push({
        runs: idx,
        problem: `${writes}, at least ${bytesText(sum.leastBytes)} even at deflate's best compression, more than the ${bytesText(free.bytes)} free there (each run alone fits); ${fewer}`,
      });
    } else {
      found.push({
        runs: idx,
        warning: `${writes}, about ${bytesText(sum.typicalBytes)} as PNGs of photographs, more than the ${bytesText(free.bytes)} free there: together they may fill it; ${fewer}`,
      });
    }
  }
  return found;
}
