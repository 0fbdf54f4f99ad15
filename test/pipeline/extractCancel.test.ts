/**
 * Ctrl-C during the extract stage of reconstruct and encode stops the session being read: the stages pass their
 * signal to extractNsd. Before, the extraction ran every remaining session to the end and stored itself in the cache
 * before the stage noticed the abort.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { DemoWorld } from '../../ts/demo/world.js';
import { encode } from '../../ts/encoding/encode.js';
import { CancelledError } from '../../ts/errors.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { batchWorld, encodeTemplate, singleConfig } from '../batch/world.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-extract-cancel-'));
let world: DemoWorld;
beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cacheEntries = (out: string) => (existsSync(join(out, 'cache')) ? readdirSync(join(out, 'cache')) : []);

describe('Ctrl-C in the extract stage', () => {
  it('reconstruct: stops after the session that was read, names the stage, and caches nothing', async () => {
    const out = join(dir, 'recon');
    const ac = new AbortController();
    const extractMessages: string[] = [];
    const err = await reconstruct(singleConfig(world, 1, out), {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.stage !== 'extract' || p.fraction === 0 || p.status === 'skipped') return;
        extractMessages.push(p.message ?? '');
        // the first of the z region's 4 sessions is read
        if (!ac.signal.aborted) ac.abort(new Error('Ctrl-C'));
      },
    }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as Error).message).toMatch(/^reconstruct: cancelled in stage extract\b/);
    expect((err as Error).cause).toBe(ac.signal.reason);
    // no session after the abort was read, nothing was stored
    expect(extractMessages.filter((m) => m.startsWith('z: session'))).toEqual(['z: session 1']);
    expect(cacheEntries(out)).toEqual([]);
    expect(existsSync(join(out, 'ids.json'))).toBe(false);
  }, 300_000);

  it('encode: the same', async () => {
    const out = join(dir, 'enc');
    const t = encodeTemplate(world) as { nsd: Record<string, unknown> };
    const ac = new AbortController();
    const sessions: string[] = [];
    const err = await encode({ ...t, out, nsd: { ...t.nsd, root: world.nsdRoot, subject: 1 } } as never, {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.stage !== 'extract' || !p.message?.startsWith('session')) return;
        sessions.push(p.message);
        if (!ac.signal.aborted) ac.abort(new Error('Ctrl-C'));
      },
    }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as Error).message).toMatch(/^encode: cancelled in stage extract\b/);
    expect(sessions).toEqual(['session 1']);
    expect(cacheEntries(out)).toEqual([]);
  }, 300_000);
});
