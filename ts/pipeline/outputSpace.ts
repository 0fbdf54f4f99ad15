/**
 * Whether a reconstruction's images fit where it writes them, checked before any long work: a seed count typed
 * with a few zeros too many (`--seeds 50000`) otherwise ran for days and then filled the disk. The images are
 * most of what a run writes and the only part that grows with the seeds: per test image its original and its
 * z-only image, and one sample per seed.
 */
import { readdir, statfs } from 'node:fs/promises';
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

/** Free bytes and files (inodes; null where the file system does not count them), and the folder they are of. */
export interface FreeSpace {
  bytes: number;
  files: number | null;
  at: string;
}

/** The free space where `path` is, or would be made (its nearest existing folder's file system). */
export async function freeSpace(path: string): Promise<FreeSpace> {
  let at = resolve(path);
  for (;;) {
    try {
      const s = await statfs(at);
      // (btrfs and some network file systems report no inode count: files and ffree 0)
      return { bytes: Number(s.bavail) * Number(s.bsize), files: Number(s.files) > 0 ? Number(s.ffree) : null, at };
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
  const present = await imagesPresent(out);
  const files = Math.max(0, images.files - present);
  if (files === 0) return null;
  const share = files / images.files;
  const least = images.leastBytes * share, typical = images.typicalBytes * share;
  const free = await free_(out);
  const where = `the file system of ${free.at === resolve(out) ? out : `${out} (not made yet: that of ${free.at})`}`;
  const writes =
    `${names.valued('img2img.seeds', what.seeds)} for ${count(what.testImages)} test image(s) at ${what.size} px: the run writes ` +
    `${count(files)} image file(s)${present ? ` beyond the ${count(present)} already there` : ''} (each test image's original, its z-only image and one per seed)`;
  const fewer = `use fewer seeds (${names.nameAndFlag('img2img.seeds')}) or test images (${names.nameAndFlag('nsd.testImages')}), or another run folder (${names.name('out')})`;
  if (free.files !== null && files > free.files) return { problem: `${writes}, more files than the ${count(free.files)} ${where} can still hold; ${fewer}` };
  if (least > free.bytes) {
    return { problem: `${writes}, at least ${bytesText(least)} even at deflate's best compression, more than the ${bytesText(free.bytes)} free on ${where}; ${fewer}` };
  }
  if (typical > free.bytes) {
    return {
      warning: `${writes}, about ${bytesText(typical)} as PNGs of photographs, more than the ${bytesText(free.bytes)} free on ${where}: the run may fill it; ${fewer}`,
    };
  }
  return null;
}
