/**
 * A write refused by what is at its path comes back as an InvalidArgumentError naming the path and what is in the way
 * (the CLI's --out words), not as Node's "EISDIR … rename '.m.tmp-…' -> 'm'" or "EEXIST … mkdir": a library caller
 * (RidgeModel.save, writeNpy) has no --out check in front of it. The temporary is still removed.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { InvalidArgumentError } from '../../ts/errors.js';
import { describeWriteError, withAtomicDir, withAtomicPath, writeFileAtomic } from '../../ts/io/atomicWrite.js';

const root = mkdtempSync(join(tmpdir(), 'bl-atomic-err-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => {
  const d = join(root, `case${n++}`);
  mkdirSync(d);
  return d;
};

/** The error `p` rejects with. */
async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the write to fail');
}

describe('a write refused by its path names the path and what is in the way', () => {
  it('a file written where a folder is: "is an existing folder", and no temporary is left', async () => {
    const d = fresh();
    mkdirSync(join(d, 'm.safetensors'));
    const e = await failure(writeFileAtomic(join(d, 'm.safetensors'), 'x'));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.message).toBe(`cannot write ${join(d, 'm.safetensors')}: it is an existing folder; expected a file path`);
    expect((e.cause as NodeJS.ErrnoException).code).toBe('EISDIR');
    expect(readdirSync(d)).toEqual(['m.safetensors']);
  });

  it('a file written below a file, directly or deeper: names the file in the way', async () => {
    const d = fresh();
    writeFileSync(join(d, 'x.npy'), 'data');
    for (const target of [join(d, 'x.npy', 'm.st'), join(d, 'x.npy', 'a', 'b', 'm.st')]) {
      const e = await failure(writeFileAtomic(target, 'x'));
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.message).toBe(`cannot write ${target}: ${join(d, 'x.npy')} is a file, not a folder, so nothing can be written below it; expected a file path`);
    }
    const byName = await failure(withAtomicPath(join(d, 'x.npy', 'f.h5'), () => undefined));
    expect(byName).toBeInstanceOf(InvalidArgumentError);
    expect(readdirSync(d)).toEqual(['x.npy']);
  });

  it('a folder swapped in where a file is: "is an existing file", and the temporary folder is removed', async () => {
    const d = fresh();
    writeFileSync(join(d, 'run'), 'a file');
    const e = await failure(withAtomicDir(join(d, 'run'), async (tmp) => writeFileSync(join(tmp, 'a'), 'a')));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.message).toBe(`cannot write ${join(d, 'run')}: it is an existing file; expected a folder path`);
    expect(readdirSync(d)).toEqual(['run']);
  });

  it("other errors, and a path with nothing in the way, come back as they were", async () => {
    const d = fresh();
    const full = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    expect(await describeWriteError(join(d, 'f'), 'file', full)).toBe(full);
    const race = Object.assign(new Error('EEXIST'), { code: 'EEXIST' });
    expect(await describeWriteError(join(d, 'f'), 'file', race)).toBe(race);
    const writerError = new Error('disk on fire');
    await expect(withAtomicDir(join(d, 'out'), async () => Promise.reject(writerError))).rejects.toBe(writerError);
  });
});
