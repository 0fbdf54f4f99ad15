/**
 * A damaged extraction cache entry (manifest.json broken or missing, a file deleted or cut short, data unreadable)
 * blocked every extraction of its key with "FormatError: …/manifest.json: not a readable manifest" or
 * "MissingFileError: …/train_betas.npy: file not found", naming neither the cache nor a way out, and `cache list`
 * left it out without a word (a broken manifest) or showed it "ok" (a file missing), so `cache prune --stale` kept it.
 * Now an extraction takes it for a miss: it extracts afresh, writes the entry again in its place (whole) and says so
 * in one line; `cache list` shows it damaged, with what is wrong, and `cache prune --stale` removes it, unless an
 * extraction has written it again, complete, while the prune was at it.
 */
import { existsSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { inspectEntry, type RemovalStep } from '../../ts/nsd/cache.js';
import { listCacheFolder, pruneCacheFolder } from '../../ts/nsd/cacheFolder.js';
import { extractNsd } from '../../ts/nsd/extract.js';
import type { NsdExtraction } from '../../ts/nsd/output.js';
import { writeNpy } from '../../ts/io/npy.js';
import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';
import { makeMiniNsd } from './mini.js';

let mini: Awaited<ReturnType<typeof makeMiniNsd>>;
beforeAll(async () => {
  mini = await makeMiniNsd();
});
afterAll(() => mini?.cleanup());

let folders = 0;

/** A fresh cache folder with one entry (streams:early, session 1 or `roi`): its path and first extraction. */
async function cacheWithEntry(roi = 'streams:early'): Promise<{ dir: string; entry: string; first: NsdExtraction; extract: () => Promise<NsdExtraction> }> {
  const dir = join(mini.tmp, `cache-${++folders}`);
  const extract = () => extractNsd({ root: mini.root, subject: 1, roi, sessions: '1', cacheDir: dir });
  const first = await extract();
  const entry = join(dir, readdirSync(dir).find((n) => n.endsWith(`_${first.manifest.key}`))!);
  return { dir, entry, first, extract };
}

const editManifest = (entry: string, edit: (m: Record<string, unknown>) => void) => {
  const m = JSON.parse(readFileSync(join(entry, 'manifest.json'), 'utf8'));
  edit(m);
  writeFileSync(join(entry, 'manifest.json'), JSON.stringify(m));
};

/**
 * test_betas.npy with its header length field overwritten (its version byte made 2: a uint32 length) by `len`, and
 * the file grown by `grow` bytes (spaces): a corrupt header whose length a reader believes.
 */
const corruptHeaderLength = (len: number, grow = 0) => (e: string) => {
  const f = join(e, 'test_betas.npy');
  const b = Buffer.concat([readFileSync(f), Buffer.alloc(grow, 0x20)]);
  b[6] = 2;
  b.writeUInt32LE(len, 8);
  writeFileSync(f, b);
};

/** Data byte `at` of .npy file `name` of the entry with its lowest bit flipped: a value one step away, finite. */
const flipDataBit = (name: string, at: number) => (e: string) => {
  const f = join(e, name);
  const b = readFileSync(f);
  b[b.readUInt16LE(8) + 10 + at] ^= 0x01;
  writeFileSync(f, b);
};

/** Each damage, done to an entry, and what the extraction says was wrong. */
const DAMAGES: [string, (entry: string, key: string) => void | Promise<void>, string | RegExp][] = [
  ['a broken manifest.json', (e) => writeFileSync(join(e, 'manifest.json'), '{bad'), /^manifest\.json: not valid JSON \(.+\)$/],
  ['no manifest.json', (e) => rmSync(join(e, 'manifest.json')), 'manifest.json: file not found'],
  ['a manifest of another key', (e) => editManifest(e, (m) => (m.key = '0123456789abcdef0123')), /^manifest\.json: key "0123456789abcdef0123", expected [0-9a-f]{20} \(the entry's name\)$/],
  ['another format', (e) => editManifest(e, (m) => (m.format = 'x')), 'manifest.json: not an extraction manifest (format "x", expected "brainlatent-nsd-extraction")'],
  // (a newer brainlatent's version is no damage: cacheUnreadable.test.ts)
  ['a version that is none', (e) => editManifest(e, (m) => (m.version = 'x')), 'manifest.json: version "x", expected 1'],
  [
    'a file listed without its shape',
    (e) => editManifest(e, (m) => delete ((m.files as Record<string, Record<string, unknown>>)['train_betas.npy'] as Record<string, unknown>).shape),
    'manifest.json: "files" lists train_betas.npy without its dtype and shape (expected { "dtype": "float32", "shape": [rows, …] })',
  ],
  ['a file the manifest does not list', (e) => editManifest(e, (m) => delete (m.files as Record<string, unknown>)['voxels.npy']), 'manifest.json does not list voxels.npy'],
  ['train_betas.npy deleted', (e) => rmSync(join(e, 'train_betas.npy')), 'train_betas.npy: file not found'],
  ['test_betas.npy cut short', (e) => truncateSync(join(e, 'test_betas.npy'), 200), /^test_betas\.npy: truncated \.npy file: shape \(\d+, \d+\) float32 needs \d+ data bytes, the file holds 72$/],
  ['a .npy header length past the end of the file', corruptHeaderLength(0xfffffff0), /^test_betas\.npy: header length 4294967280 runs past the end of the \d+-byte file \(truncated or corrupt\)$/],
  // (inside the file, but over the reader's 1 MiB cap: a LimitError, which left the entry "unreadable" for good)
  ['a .npy header length over the 1 MiB cap, inside the file', corruptHeaderLength(2 << 20, 3 << 20), 'test_betas.npy: .npy header of 2097152 bytes is over the 1048576-byte limit'],
  ['voxels.npy of another shape', (e) => writeNpy(join(e, 'voxels.npy'), new Int32Array(6), [2, 3]), /^voxels\.npy: int32 \[2, 3\], expected int32 \[\d+, 3\] as manifest\.json records$/],
  // (whole and finite, but other numbers: found by the data's checksum at the load; such an entry was loaded as it was)
  ['a bit flipped in the training betas', flipDataBit('train_betas.npy', 5), /^train_betas\.npy: its data fail their checksum \(CRC-32 [0-9a-f]{8}, manifest\.json records [0-9a-f]{8}\): the file changed after the extraction was written \(a damaged disk or copy\); extract it again$/],
  ['a bit flipped in the test image ids', flipDataBit('test_image_ids.npy', 0), /^test_image_ids\.npy: its data fail their checksum/],
  // (whole, and of the shape recorded, but its data cannot be loaded: found by the load, not by the inspection)
  [
    'NaN in the training betas',
    async (e) => {
      const shape = JSON.parse(readFileSync(join(e, 'manifest.json'), 'utf8')).files['train_betas.npy'].shape as number[];
      await writeNpy(join(e, 'train_betas.npy'), new Float32Array(shape[0] * shape[1]).fill(Number.NaN), shape);
    },
    /^betas \(train_betas\.npy\): .*NaN/,
  ],
];

describe('a damaged cache entry is a miss: extracted afresh and written again in its place', () => {
  for (const [what, damage, said] of DAMAGES) {
    it(what, async () => {
      const { dir, entry, first, extract } = await cacheWithEntry();
      await damage(entry, first.manifest.key);
      const again = await extract();
      expect(again.fromCache).toBe(false);
      expect(again.train.data).toEqual(first.train.data);
      expect(again.removedFromCache).toHaveLength(1);
      const removed = again.removedFromCache![0];
      expect(removed.path).toBe(entry);
      expect(removed.bytes).toBeGreaterThan(0);
      const m = /^damaged \((.*)\); extracted again and written in its place$/.exec(removed.why);
      expect(m, removed.why).not.toBeNull();
      if (typeof said === 'string') expect(m![1]).toBe(said);
      else expect(m![1]).toMatch(said);
      // the entry is whole again, and the next extraction loads it; nothing else is left in the folder
      expect(await inspectEntry(entry, first.manifest.key)).toMatchObject({ damage: null });
      const loaded = await extract();
      expect(loaded.fromCache).toBe(true);
      expect(loaded.removedFromCache).toBeUndefined();
      expect(readdirSync(dir)).toEqual([entry.split('/').pop()]);
    });
  }
});

describe("an entry's data checksums", () => {
  it('are recorded for every file; an entry from before them (none in its manifest) loads from the cache, unchecked', async () => {
    const { entry, first, extract } = await cacheWithEntry();
    const files = first.manifest.files;
    expect(Object.keys(files).sort()).toEqual(['test_betas.npy', 'test_image_ids.npy', 'train_betas.npy', 'train_image_ids.npy', 'voxels.npy']);
    for (const f of Object.values(files)) expect(f.crc32).toMatch(/^[0-9a-f]{8}$/);
    editManifest(entry, (m) => {
      for (const f of Object.values(m.files as Record<string, Record<string, unknown>>)) delete f.crc32;
    });
    const loaded = await extract();
    expect(loaded.fromCache).toBe(true);
    expect(loaded.train.data).toEqual(first.train.data);
  });
});

describe('cache list and cache prune --stale see damaged entries', () => {
  it("the reviewer's case: a broken manifest and a deleted file are listed damaged, with why, and pruned", async () => {
    const a = await cacheWithEntry('streams:early');
    const dir = a.dir;
    const b = await extractNsd({ root: mini.root, subject: 1, roi: 'streams:ventral', sessions: '1', cacheDir: dir });
    const ventral = join(dir, readdirSync(dir).find((n) => n.endsWith(`_${b.manifest.key}`))!);
    const good = await extractNsd({ root: mini.root, subject: 1, roi: 'streams:midventral', sessions: '1', cacheDir: dir });
    const goodEntry = join(dir, readdirSync(dir).find((n) => n.endsWith(`_${good.manifest.key}`))!);
    writeFileSync(join(a.entry, 'manifest.json'), '{bad');
    rmSync(join(ventral, 'train_betas.npy'));

    const cli = distModule('cli/main');
    const cache = (...args: string[]) => runCommand(process.execPath, [cli, 'cache', ...args, '--cache', dir], { env: { ...process.env, NO_COLOR: '1' } });
    const list = await cache('list');
    expect(list.status).toBe(0);
    // (before: "1 entry …; 0 stale", the broken one left out and the other one "ok")
    expect(list.stdout).toMatch(
      new RegExp(
        `${a.entry}\\n  \\d+\\.\\d kB, created unknown, last used \\S+\\n  subject 1; region and options unknown \\(its manifest\\.json cannot be read\\)\\n` +
          `  damaged: manifest\\.json: not valid JSON \\(.+\\)\\n`,
      ),
    );
    expect(list.stdout).toMatch(new RegExp(`${ventral}\\n  .*\\n  subject 1, streams:ventral, sessions 1, zscore none, averaged test, divisor 300\\n  damaged: train_betas\\.npy: file not found\\n`));
    expect(list.stdout).toMatch(new RegExp(`${goodEntry}\\n  .*\\n  .*\\n  ok\\n`));
    expect(list.stdout).toMatch(/\n3 entries in .*; 0 stale, 2 damaged\n$/);
    const json = JSON.parse((await cache('list', '--json')).stdout);
    const broken = json.entries.find((e: { path: string }) => e.path === a.entry);
    expect(broken).toMatchObject({ subject: 1, roi: null, createdAt: null, options: null, sessions: [], staleness: { state: 'damaged' } });

    const pruned = await cache('prune', '--stale');
    expect(pruned.status).toBe(0);
    expect(pruned.stdout).toMatch(new RegExp(`removed ${a.entry} \\(\\d+\\.\\d kB\\): damaged: manifest\\.json: not valid JSON`));
    expect(pruned.stdout).toMatch(new RegExp(`removed ${ventral} \\(\\d+\\.\\d kB\\): damaged: train_betas\\.npy: file not found\\n`));
    expect(pruned.stdout).toMatch(/freed \d+(\.\d)? [kMG]B \(2 entries\)/);
    expect(readdirSync(dir)).toEqual([goodEntry.split('/').pop()]);
  });

  it('a .npy header length over the 1 MiB cap (inside the file) is damage: listed damaged and pruned, not kept as unreadable', async () => {
    const { dir, entry } = await cacheWithEntry();
    corruptHeaderLength(2 << 20, 3 << 20)(entry);
    const why = 'test_betas.npy: .npy header of 2097152 bytes is over the 1048576-byte limit';
    expect((await listCacheFolder(dir)).map((e) => [e.path, e.staleness])).toEqual([[entry, { state: 'damaged', why }]]);
    const pruned = await pruneCacheFolder(dir, { stale: true });
    expect(pruned.removed).toEqual([{ path: entry, bytes: expect.any(Number), why: `damaged: ${why}` }]);
    expect(pruned.removed[0].bytes).toBeGreaterThan(3 << 20);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('nsd extract replaces a damaged entry and says so on one line, naming the entry and what was wrong', async () => {
    const { dir, entry } = await cacheWithEntry();
    rmSync(join(entry, 'train_betas.npy'));
    const cli = distModule('cli/main');
    const out = join(mini.tmp, `ex-${folders}`);
    const r = await runCommand(process.execPath, [cli, 'nsd', 'extract', '--root', mini.root, '--subject', '1', '--roi', 'streams:early', '--sessions', '1', '--cache', dir, '--out', out], {
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(r.status).toBe(0);
    // (before: "MissingFileError: <entry>/train_betas.npy: file not found", rc 1)
    expect(r.stderr).toMatch(new RegExp(`\\nremoved extraction cache entry ${entry} \\(\\d+\\.\\d kB\\): damaged \\(train_betas\\.npy: file not found\\); extracted again and written in its place\\n`));
    expect(r.stdout).toMatch(/extracted in .*; wrote /);
    expect((await inspectEntry(entry, entry.slice(-20))).damage).toBeNull();
  });

  it('a file named like an entry is no entry: neither listed nor removed', async () => {
    const { dir, entry } = await cacheWithEntry();
    const file = join(dir, 'subj01_notes_0123456789abcdef0123');
    writeFileSync(file, 'mine');
    expect((await listCacheFolder(dir)).map((e) => e.path)).toEqual([entry]);
    expect((await pruneCacheFolder(dir, { stale: true, olderThanDays: 0, now: Date.now() + 86_400_000 })).removed.map((e) => e.path)).toEqual([entry]);
    expect(readFileSync(file, 'utf8')).toBe('mine');
  });
});

describe('cache prune against an extraction that writes the damaged entry again', () => {
  for (const step of ['marked', 'checked', 'renamed'] as RemovalStep[]) {
    it(`written again, complete, once the prune has ${step === 'renamed' ? 'renamed the entry aside' : step === 'checked' ? 'looked for holds' : 'marked the entry'}: the new entry stays`, async () => {
      const { dir, entry, first, extract } = await cacheWithEntry();
      rmSync(join(entry, 'train_betas.npy'));
      let during: NsdExtraction | null = null;
      const r = await pruneCacheFolder(dir, {
        stale: true,
        between: async (s) => {
          if (s === step) during = await extract();
        },
      });
      expect(during!.fromCache).toBe(false);
      if (step === 'renamed') {
        // (the damaged one was out of the way: the extraction wrote a new entry, which the prune then left alone)
        expect(r.removed.map((e) => e.path)).toEqual([entry]);
        expect(r.replaced).toEqual([]);
      } else {
        // (the prune took the new, complete entry aside, found it complete, and put it back)
        expect(r.removed).toEqual([]);
        expect(r.replaced).toEqual([entry]);
      }
      expect(existsSync(entry)).toBe(true);
      expect((await inspectEntry(entry, first.manifest.key)).damage).toBeNull();
      const loaded = await extract();
      expect(loaded.fromCache).toBe(true);
      expect(loaded.train.data).toEqual(first.train.data);
      expect(readdirSync(dir)).toEqual([entry.split('/').pop()]);
    });
  }
});
