/**
 * The readers' gunzip on ISA-L against Node's zlib (ts/io/gunzip.ts): the same volumes from every way other tools
 * write gzip, and the same errors, word for word, from each kind of damage tried (the known differences are in README
 * "Brain data"). The ISA-L half skips where libisal.so.2
 * is not installed (scripts/setup.sh installs it).
 */
import { createWriteStream, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';

import { EnvironmentError, FileAccessError } from '../../ts/errors.js';
import { ByteStream, streamError } from '../../ts/io/byteStream.js';
import { gunzipChoice, gunzipOf, resetGunzipChoice } from '../../ts/io/gunzip.js';
import { readNifti, writeNifti } from '../../ts/io/nifti.js';
import { nativeSync } from '../../ts/native/call.js';
import { extractionProblems } from '../../ts/nsd/extract.js';
import { synthNsd } from '../../ts/synth/nsd.js';
import { distModule } from '../helpers/dist.js';
import { commandOutput, runModule } from '../helpers/nodeChild.js';
import { tempDir } from '../helpers/tempDir.js';
import { until } from '../helpers/waitFor.js';
import { bgzf, gzipMembers, gzipZeroPadded } from './gzipMembers.js';

const isal = nativeSync((b) => b.gunzipInfo());
const dir = tempDir('bl-gunzip-');
const file = (name: string) => join(dir, name);
const saved = process.env.BRAINLATENT_GUNZIP;
afterEach(() => {
  if (saved === undefined) delete process.env.BRAINLATENT_GUNZIP;
  else process.env.BRAINLATENT_GUNZIP = saved;
  resetGunzipChoice();
});

/** Reads `path` with the inflater `how`: its values' bytes, or the error's class and message. */
async function readWith(how: 'zlib' | 'isa-l', path: string): Promise<{ bytes?: Buffer; error?: string }> {
  process.env.BRAINLATENT_GUNZIP = how;
  resetGunzipChoice();
  expect(gunzipChoice().inflater).toBe(how);
  try {
    const { data } = await readNifti(path);
    return { bytes: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
  } catch (e) {
    return { error: `${(e as Error).name}: ${(e as Error).message}` };
  }
}

/** Writes each file and reads it with both inflaters: both give the volume `want`. */
async function expectBothRead(files: [string, Buffer][], want: Buffer): Promise<void> {
  for (const [name, gz] of files) {
    writeFileSync(file(`${name}.nii.gz`), gz);
    for (const how of ['zlib', 'isa-l'] as const) {
      const got = await readWith(how, file(`${name}.nii.gz`));
      expect(got.error, `${name} ${how}`).toBeUndefined();
      expect(got.bytes?.equals(want), `${name} ${how}`).toBe(true);
    }
  }
}

/** The member `gz` with a file name (FNAME) and, when `hcrc`, a header CRC (FHCRC), as `gzip` without -n writes. */
function withName(gz: Buffer, name: string, hcrc: boolean): Buffer {
  const head = Buffer.concat([gz.subarray(0, 10), Buffer.from(`${name}\0`, 'latin1')]);
  head[3] |= 8 | (hcrc ? 2 : 0);
  const crc = Buffer.alloc(hcrc ? 2 : 0);
  if (hcrc) crc.writeUInt16LE(crc32(head) & 0xffff);
  return Buffer.concat([head, crc, gz.subarray(10)]);
}

describe.skipIf(!isal.available)('gunzip on ISA-L reads what zlib reads, and fails with the same errors', () => {
  it('whole files from other gzip tools, and bytes after the last member', async () => {
    const p = file('vol.nii');
    // (over 4 MiB decompressed: several of ISA-L's steps, and file reads of 1 MiB that cut members and trailers)
    await writeNifti(p, { dims: [64, 64, 40, 14], datatype: 'int16' }, Int16Array.from({ length: 64 * 64 * 40 * 14 }, (_, i) => ((i * 7919) % 2001) * (i % 5 === 0 ? 0 : 1)));
    const raw = readFileSync(p);
    const want = Buffer.from((await readNifti(p)).data.buffer);
    const variants: [string, Buffer][] = [
      ['one', gzipSync(raw)],
      ['level0', gzipSync(raw, { level: 0 })],
      ['members', gzipMembers(raw, [1000, 1_048_570, 2_000_000])],
      ['bgzf', bgzf(raw)],
      ['padded', gzipZeroPadded(raw, 4096)],
      ['named', withName(gzipSync(raw), 'x'.repeat(1_100_000), false)],
      ['named-hcrc', Buffer.concat([gzipSync(raw.subarray(0, 3000)), withName(gzipSync(raw.subarray(3000)), 'betas.nii', true)])],
      ['garbage', Buffer.concat([gzipSync(raw), Buffer.from('GARBAGE!')])],
      ['magic', Buffer.concat([gzipSync(raw), Buffer.from('\x1f\x8bxx', 'latin1')])],
    ];
    await expectBothRead(variants, want);
  });

  it('damage: the same error class and message from both', async () => {
    const p = file('small.nii');
    await writeNifti(p, { dims: [30, 30, 20, 6], datatype: 'int16' }, Int16Array.from({ length: 30 * 30 * 20 * 6 }, (_, i) => (i * 31) % 977));
    const raw = readFileSync(p);
    const one = gzipSync(raw);
    const edit = (b: Buffer, at: number, f: (v: number) => number) => {
      const c = Buffer.from(b);
      c[at] = f(c[at]);
      return c;
    };
    const badBlock = gzipSync(Buffer.from('abc'));
    badBlock[10] = 0x07; // BFINAL 1, BTYPE 3 (reserved)
    const damaged: [string, Buffer][] = [
      ['crc', edit(one, one.length - 8, (v) => v ^ 1)],
      ['length', edit(one, one.length - 3, (v) => v ^ 1)],
      ['cut-data', one.subarray(0, one.length >> 1)],
      ['cut-trailer', one.subarray(0, one.length - 3)],
      ['cut-header', Buffer.concat([gzipMembers(raw, [5000]), one.subarray(0, 6)])],
      ['bad-block', Buffer.concat([gzipMembers(raw, [1000]), badBlock])],
      ['flipped', edit(one, 2000, (v) => v ^ 0x55)],
      // (ISA-L calls this one an invalid block; zlib's walk of the file names it, as zlib's gunzip does)
      ['stored-lengths', edit(gzipSync(raw, { level: 0 }), 13, (v) => v ^ 0xff)],
      // the same after a name longer than the walk reads a header in (64 KiB): ISA-L's own words, the nearest (review s42)
      ['named-stored-lengths', withName(edit(gzipSync(raw, { level: 0 }), 13, (v) => v ^ 0xff), 'n'.repeat(70_000), false)],
      // cut inside the length field, after a wrong CRC: zlib checks the CRC first (review s42)
      ['crc-then-cut', edit(one, one.length - 8, (v) => v ^ 1).subarray(0, one.length - 3)],
    ];
    for (const [name, gz] of damaged) {
      writeFileSync(file(`${name}.nii.gz`), gz);
      const [z, i] = [await readWith('zlib', file(`${name}.nii.gz`)), await readWith('isa-l', file(`${name}.nii.gz`))];
      expect(z.error, name).toMatch(/^FormatError: /);
      if (name === 'named-stored-lengths') expect(i.error, name).toBe(z.error?.replace('invalid stored block lengths', 'invalid block type'));
      else expect(i.error, name).toBe(z.error);
    }
  });

  it('a stream closed half-way stops reading the file, and ISA-L is what it reports', async () => {
    const p = file('close.nii.gz');
    writeFileSync(p, gzipSync(Buffer.alloc(40 << 20, 7)));
    process.env.BRAINLATENT_GUNZIP = 'isa-l';
    resetGunzipChoice();
    expect(gunzipChoice().detail).toMatch(/^ISA-L 2\.\d+ \(.*libisal/);
    const before = openFds();
    let got = 0;
    for await (const chunk of gunzipOf(p)) {
      got += chunk.length;
      if (got >= 8 << 20) break; // (the loop's break ends the stream, which closes the file)
    }
    expect(got).toBeGreaterThanOrEqual(8 << 20);
    expect(got).toBeLessThan(40 << 20);
    await until('the file of a stream left half-way closed', async () => openFds() === before);
  });
});

/** One gzip member of `data` with the header fields given (RFC 1952 2.3); `badCrc` spoils its header CRC. */
function member(data: Buffer, h: { extra?: Buffer; name?: string; comment?: string; hcrc?: boolean; badCrc?: boolean; flags?: number } = {}): Buffer {
  const fixed = Buffer.from([0x1f, 0x8b, 8, h.flags ?? 0, 0, 0, 0, 0, 0, 3]);
  const parts: Buffer[] = [];
  if (h.extra) {
    fixed[3] |= 4;
    const len = Buffer.alloc(2);
    len.writeUInt16LE(h.extra.length);
    parts.push(len, h.extra);
  }
  if (h.name !== undefined) (fixed[3] |= 8), parts.push(Buffer.from(`${h.name}\0`, 'latin1'));
  if (h.comment !== undefined) (fixed[3] |= 16), parts.push(Buffer.from(`${h.comment}\0`, 'latin1'));
  if (h.hcrc) fixed[3] |= 2;
  const head = Buffer.concat([fixed, ...parts]);
  const crc = Buffer.alloc(h.hcrc ? 2 : 0);
  if (h.hcrc) crc.writeUInt16LE((crc32(head) & 0xffff) ^ (h.badCrc ? 1 : 0));
  const whole = gzipSync(data);
  return Buffer.concat([head, crc, whole.subarray(10)]);
}

/** The longest prefix of `raw` whose stored gzip member (level 0) is exactly `size` bytes: what follows starts there. */
function storedPrefix(raw: Buffer, size: number): { n: number; gz: Buffer } {
  let n = size - 18;
  for (let k = 0; k < 20; k++) {
    const gz = gzipSync(raw.subarray(0, n), { level: 0 });
    if (gz.length === size) return { n, gz };
    n += size - gz.length;
  }
  throw new Error(`no stored member of ${size} bytes`);
}

const openFds = () => readdirSync('/proc/self/fd').length;

describe.skipIf(!isal.available)('gzip headers, which the engine parses itself (review s42)', () => {
  it('header fields across a 1 MiB file read, long fields, and the headers zlib refuses', async () => {
    const p = file('h.nii');
    await writeNifti(p, { dims: [64, 64, 40, 10], datatype: 'int16' }, Int16Array.from({ length: 64 * 64 * 40 * 10 }, (_, i) => (i * 13) % 1009));
    const raw = readFileSync(p);
    const want = Buffer.from((await readNifti(p)).data.buffer);
    // a first member ending 30 bytes before 1 MiB, then one whose header runs across it (ISA-L 2.30 misread those)
    const { n, gz: first } = storedPrefix(raw, (1 << 20) - 30);
    const rest = raw.subarray(n);
    const ok: [string, Buffer][] = [
      ['extra-name', Buffer.concat([first, member(rest, { extra: Buffer.alloc(100, 69), name: 'file.nii' })])],
      ['name-comment', Buffer.concat([first, member(rest, { name: 'N'.repeat(100), comment: 'C'.repeat(5) })])],
      ['name-hcrc', Buffer.concat([first, member(rest, { name: 'x.nii', hcrc: true })])],
      ['long-fields', member(raw, { extra: Buffer.alloc(65_000, 1), name: 'n'.repeat(70_000), comment: 'c', hcrc: true })],
    ];
    await expectBothRead(ok, want);
    const method = gzipSync(raw);
    method[2] = 7;
    const refused: [string, Buffer, string][] = [
      ['bad-hcrc', member(raw, { name: 'x.nii', hcrc: true, badCrc: true }), 'header crc mismatch'],
      ['reserved-flag', member(raw, { flags: 0x20 }), 'unknown header flags set'],
      ['method', method, 'unknown compression method'],
    ];
    for (const [name, gz, why] of refused) {
      writeFileSync(file(`${name}.nii.gz`), gz);
      const [z, i] = [await readWith('zlib', file(`${name}.nii.gz`)), await readWith('isa-l', file(`${name}.nii.gz`))];
      expect(z.error, name).toContain(`(${why})`);
      expect(i.error, name).toBe(z.error);
    }
  });

  it('a stream closed before or after its first read closes its file, on either inflater', async () => {
    const p = file('fds.nii.gz');
    writeFileSync(p, gzipSync(Buffer.alloc(20 << 20, 3)));
    for (const how of ['zlib', 'isa-l'] as const) {
      process.env.BRAINLATENT_GUNZIP = how;
      resetGunzipChoice();
      const before = openFds();
      for (let k = 0; k < 10; k++) {
        const s = await ByteStream.open(p);
        if (k % 2) await s.read(1000);
        s.close();
        await new Promise((r) => setImmediate(r));
      }
      await until(`${how}: the files of 10 closed streams closed`, async () => openFds() === before);
    }
  });
});

describe.skipIf(!isal.available)('the engine reads the file, and its chunks are lent', () => {
  it('a chunk holds its bytes while the reader holds it, with the next step in flight', async () => {
    process.env.BRAINLATENT_GUNZIP = 'isa-l';
    resetGunzipChoice();
    const raw = Buffer.from(Int32Array.from({ length: 5 << 20 }, (_, i) => Math.imul(i, 2654435761) >>> 7).buffer);
    const p = file('lent.gz');
    writeFileSync(p, gzipSync(raw, { level: 1 }));
    let at = 0, chunks = 0;
    for await (const chunk of gunzipOf(p)) {
      const copy = Buffer.from(chunk);
      // (the engine fills the other buffer meanwhile: this one must not change under the reader)
      await new Promise((r) => setTimeout(r, 15));
      expect(chunk.equals(copy), `chunk ${chunks}`).toBe(true);
      expect(copy.equals(raw.subarray(at, at + copy.length)), `chunk ${chunks}`).toBe(true);
      at += copy.length;
      chunks++;
    }
    expect(at).toBe(raw.length);
    expect(chunks).toBeGreaterThan(4);
  });

  it("a read that fails is Node's fs error (a FIFO: ESPIPE), and the file is closed", async () => {
    process.env.BRAINLATENT_GUNZIP = 'isa-l';
    resetGunzipChoice();
    const p = file('fifo.gz');
    await commandOutput('mkfifo', [p]);
    const before = openFds();
    const writer = createWriteStream(p);
    writer.end(gzipSync(Buffer.alloc(1000, 1)));
    let error: (Error & { code?: string; syscall?: string }) | undefined;
    try {
      for await (const chunk of gunzipOf(p)) void chunk;
    } catch (e) {
      error = e as Error;
    }
    expect(error?.code).toBe('ESPIPE');
    expect(error?.syscall).toBe('read');
    expect(error?.message).toMatch(/^ESPIPE: illegal seek, read$/);
    await until('the FIFO closed', async () => openFds() === before);
  });
});

describe('choosing the inflater', () => {
  it('BRAINLATENT_GUNZIP is checked and named', () => {
    process.env.BRAINLATENT_GUNZIP = 'pigz';
    resetGunzipChoice();
    expect(() => gunzipChoice()).toThrow(EnvironmentError);
    expect(() => gunzipChoice()).toThrow("BRAINLATENT_GUNZIP must be 'auto', 'isa-l', 'zlib', got 'pigz'");
  });

  it("nsd extract's checks raise it as it is, not under the flag whose file they were reading (s42: '--roi: BRAINLATENT_GUNZIP …')", async () => {
    const root = join(dir, 'nsd');
    await synthNsd({ out: root, subjects: [1], sessions: 3, trialsPerSession: 30, designSessions: 3, grid: [10, 12, 8] });
    process.env.BRAINLATENT_GUNZIP = 'pigz';
    resetGunzipChoice();
    await expect(extractionProblems({ root, subject: 1, roi: 'nsdgeneral', format: 'nifti' })).rejects.toThrow(EnvironmentError);
    delete process.env.BRAINLATENT_GUNZIP;
    resetGunzipChoice();
    expect(await extractionProblems({ root, subject: 1, roi: 'nsdgeneral', format: 'nifti' })).toEqual([]);
  });

  it('without ISA-L: zlib by default, saying why; an error naming the file when ISA-L is required', async () => {
    const script = `
      const { gunzipChoice } = await import(${JSON.stringify(distModule('io/gunzip'))});
      try { console.log(JSON.stringify(gunzipChoice())); } catch (e) { console.log(JSON.stringify({ error: e.name + ': ' + e.message })); }`;
    const env = (choice: string) => ({ ...process.env, BRAINLATENT_ISAL_LIB: '/nonexistent/libisal.so.2', BRAINLATENT_GUNZIP: choice });
    const auto = JSON.parse((await runModule(script, 60_000, env('auto'))).stdout.trim());
    expect(auto.inflater).toBe('zlib');
    expect(auto.detail).toMatch(/^Node's zlib \(ISA-L: cannot load \/nonexistent\/libisal\.so\.2: .*apt-get install libisal2/);
    const required = JSON.parse((await runModule(script, 60_000, env('isa-l'))).stdout.trim());
    expect(required.error).toMatch(/^EnvironmentError: BRAINLATENT_GUNZIP=isa-l, but ISA-L cannot be used: cannot load \/nonexistent\/libisal\.so\.2/);
  });
});

describe('a read the system failed', () => {
  it('is a FileAccessError keeping its errno, not corrupt gzip data, from either stream', async () => {
    const eio = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5, syscall: 'read' });
    for (const compressed of [true, false]) {
      const e = await streamError('/data/betas.nii.gz', compressed, eio);
      expect(e).toBeInstanceOf(FileAccessError);
      expect(e.message).toBe('/data/betas.nii.gz: cannot read the file (EIO: i/o error, read)');
      expect((e as FileAccessError).errno).toBe('EIO');
    }
  });
});
