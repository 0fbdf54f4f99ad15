import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CancelledError } from '../../ts/errors.js';
import { nativeJob } from '../../ts/native/call.js';
import { runStages, type StageDef } from '../../ts/pipeline/stageRunner.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-stage-cancel-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('runStages: Ctrl-C during a stage', () => {
  it('names the run and the stage, keeps the finished stages, and says the next run resumes there', async () => {
    const ac = new AbortController();
    const stages: StageDef[] = [
      { id: 'embed', deps: [], describe: 'first', run: async () => ({ outputs: [] }) },
      {
        id: 'features.zc', deps: ['embed'], describe: 'second',
        run: async () => {
          ac.abort();
          throw new CancelledError('img2img cancelled before step 4 of 10');
        },
      },
    ];
    const out = join(tmp, 'run');
    const plan = new Map([['embed', { skip: false }], ['features.zc', { skip: false }]]);
    const err = await runStages({ out }, stages, plan, { signal: ac.signal, what: 'encode' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as Error).message).toBe(
      'encode: cancelled in stage features.zc (img2img cancelled before step 4 of 10); the stages finished before it are kept, and the next run resumes at features.zc',
    );
    expect(existsSync(join(out, 'stages', 'embed.json'))).toBe(true);
    expect(existsSync(join(out, 'stages', 'features.zc.json'))).toBe(false);
  });

  // a Ctrl-C while a sample's PNGs were written stops the next engine job before it starts: its words are not where the stage was
  it("leaves out a detail that says only that it was cancelled (an engine job's 'aborted before it started', a stage's own check)", async () => {
    for (const stop of [
      (signal: AbortSignal) => nativeJob('img2img', async () => 1, signal),
      async () => Promise.reject(new CancelledError('reconstruct: cancelled')),
    ]) {
      const ac = new AbortController();
      const stages: StageDef[] = [
        {
          id: 'img2img', deps: [], describe: 'x',
          run: async (ctx) => {
            ac.abort();
            await stop(ctx.signal!);
            return { outputs: [] };
          },
        },
      ];
      const err = await runStages({ out: join(tmp, 'run3') }, stages, new Map([['img2img', { skip: false }]]), { signal: ac.signal, what: 'reconstruct' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CancelledError);
      expect((err as Error).message).toBe('reconstruct: cancelled in stage img2img; the stages finished before it are kept, and the next run resumes at img2img');
    }
  });

  it('passes other errors through unchanged', async () => {
    const boom = new Error('disk full');
    const stages: StageDef[] = [{ id: 'maps', deps: [], describe: 'x', run: async () => Promise.reject(boom) }];
    await expect(runStages({ out: join(tmp, 'run2') }, stages, new Map([['maps', { skip: false }]]), { what: 'encode' })).rejects.toBe(boom);
  });

  // img2img's record of its finished units went before its marker: a kill between the two lost every unit
  it("runs a stage's afterMarker once its marker is written, not before", async () => {
    const out = join(tmp, 'run-after');
    let markerThen: boolean | undefined;
    const stages: StageDef[] = [
      {
        id: 'img2img', deps: [], describe: 'x',
        run: async () => ({ outputs: [], afterMarker: async () => void (markerThen = existsSync(join(out, 'stages', 'img2img.json'))) }),
      },
    ];
    await runStages({ out }, stages, new Map([['img2img', { skip: false }]]), { what: 'reconstruct' });
    expect(markerThen).toBe(true);
  });
});
