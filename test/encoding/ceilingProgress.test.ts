/**
 * encode's noise ceiling 'estimate' re-reads every session's single trials, uncached: as long a read as the extract
 * stage's, which reports each session. Before, the ceiling stage reported nothing between its start and its end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { DemoWorld } from '../../ts/demo/world.js';
import { encode, type EncodeProgress } from '../../ts/encoding/encode.js';
import { CancelledError } from '../../ts/errors.js';
import { batchWorld, encodeTemplate } from '../batch/world.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-ceiling-progress-'));
let world: DemoWorld;
beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("encode: the noise ceiling's 'estimate'", () => {
  it('reports each session it re-reads, as the extract stage does', async () => {
    const t = encodeTemplate(world) as { nsd: Record<string, unknown> };
    const ac = new AbortController();
    const events: EncodeProgress[] = [];
    const err = await encode({ ...t, out: join(dir, 'enc'), nsd: { ...t.nsd, root: world.nsdRoot, subject: 1 } } as never, {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.stage === 'ceiling') events.push(p);
        // (the stages after it are not this test's: the run stops once the ceiling is done)
        if (p.stage === 'ceiling' && p.status === 'done') ac.abort(new Error('enough'));
      },
    }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    const sessions = [1, 2, 3, 4]; // (batchWorld's)
    expect(events.map((p) => [p.status, p.fraction, p.detail, p.count])).toEqual([
      ['running', 0, '', undefined],
      ...sessions.map((s, i) => ['running', (i + 1) / sessions.length, `single trials: session ${s}`, { done: i + 1, total: sessions.length, unit: 'sessions' }]),
      ['done', 1, '', undefined],
    ]);
  }, 300_000);
});
