/**
 * A CancelledError made by the library's own signal checks carries the signal's reason as its `cause`, as the
 * engine's do (ts/native/call.ts): a caller tells its own abort (abort(reason)) from a timeout the same way whichever
 * check saw it first. Before, these checks made a CancelledError with no cause.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { buildDemoWorld } from '../ts/demo/world.js';
import type { Diffusion } from '../ts/sd/Diffusion.js';
import { embedImages } from '../ts/encoding/features.js';
import { CancelledError } from '../ts/errors.js';

const aborted = (reason: unknown) => {
  const ac = new AbortController();
  ac.abort(reason);
  return ac.signal;
};

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: Error) => e,
  );
}

describe("the library's own signal checks: cause = the signal's reason", () => {
  it('feature extraction (embedImages)', async () => {
    const reason = new Error('user stopped it');
    const e = await rejection(embedImages({} as Diffusion, Int32Array.of(1), { image: () => { throw new Error('not read'); } } as never, { signal: aborted(reason) }));
    expect(e).toBeInstanceOf(CancelledError);
    expect(e.message).toBe('feature extraction aborted');
    expect(e.cause).toBe(reason);
  });

  it('the demo world build', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bl-cancel-cause-'));
    try {
      const signal = AbortSignal.abort(new DOMException('timed out', 'TimeoutError'));
      const e = await rejection(buildDemoWorld({ out: join(dir, 'world') }, { signal }));
      expect(e).toBeInstanceOf(CancelledError);
      expect(e.cause).toBe(signal.reason);
      expect((e.cause as DOMException).name).toBe('TimeoutError');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
