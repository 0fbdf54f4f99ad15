/**
 * Ridge-fit and demo jobs are checked at submission as `ridge fit` and `demo` check their flags (one implementation:
 * ts/ridge/fitPreflight.ts and checkOutputPath): an `out` that is an existing file, a missing X or Y, X and Y whose
 * rows differ, a non-float or 1-D X, more folds than the rows allow, groups of the wrong length or too few — each a
 * 400 naming its field and what was expected, with nothing queued or written. Before, each was a 202 whose job failed
 * once it ran: `out` a file after the whole fit, at 'save', with "EEXIST: mkdir 'm.safetensors'" naming no field.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeNpy } from '../../ts/io/npy.js';
import { readEvents, startTestServer, type TestServer } from './helpers.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ jobs: { concurrency: 1 } });
  const wave = (n: number) => new Float32Array(n).map((_, i) => Math.sin(i * 0.37) + Math.cos(i * 0.11));
  await writeNpy(join(s.root, 'X.npy'), wave(60 * 4), [60, 4]);
  await writeNpy(join(s.root, 'Y.npy'), wave(60 * 3), [60, 3]);
  await writeNpy(join(s.root, 'Y50.npy'), wave(50 * 3), [50, 3]);
  await writeNpy(join(s.root, 'X1d.npy'), wave(60), [60]);
  await writeNpy(join(s.root, 'Xint.npy'), new Int32Array(60 * 4), [60, 4]);
  await writeNpy(join(s.root, 'g10.npy'), new Int32Array(10).map((_, i) => i), [10]);
  await writeNpy(join(s.root, 'g2.npy'), new Int32Array(60).map((_, i) => (i < 30 ? 1 : 2)), [60]);
  writeFileSync(join(s.root, 'm.safetensors'), 'a file of mine\n');
  mkdirSync(join(s.root, 'fits'));
});
afterAll(async () => s?.stop());

const fit = (config: Record<string, unknown>) => ({ kind: 'ridge-fit', config: { out: 'fits/new', x: 'X.npy', y: 'Y.npy', alphas: '1,10,100', folds: 3, ...config } });

const jobCount = async () => (await s.call('GET', '/v1/jobs')).json.jobs.length as number;

/** The 400's problems; nothing queued, nothing written (fits/new not made, m.safetensors still the file it was). */
async function refused(body: unknown): Promise<string[]> {
  const before = await jobCount();
  const r = await s.call('POST', '/v1/jobs', body);
  expect(r.status, r.text).toBe(400);
  expect(r.json.code).toBe('InvalidRequest');
  expect(r.text).not.toContain(s.root);
  expect(await jobCount()).toBe(before);
  expect(existsSync(join(s.root, 'fits', 'new'))).toBe(false);
  expect(readFileSync(join(s.root, 'm.safetensors'), 'utf8')).toBe('a file of mine\n');
  return r.json.problems;
}

describe('a ridge-fit job is checked at submission, each problem naming its field', () => {
  it.each([
    ['out an existing file', { out: 'm.safetensors' }, ['body.config.out m.safetensors: is an existing file; expected a folder for the fit (model.safetensors and fit.json)']],
    ['out below a file', { out: 'm.safetensors/run' }, ['body.config.out m.safetensors/run: m.safetensors is a file, not a folder, so nothing can be written below it; expected a folder for the fit (model.safetensors and fit.json)']],
    ['a missing Y', { y: 'missing-y.npy' }, ['body.config.y: missing-y.npy: file not found']],
    ['a missing X and Y', { x: 'missing-x.npy', y: 'missing-y.npy' }, ['body.config.x: missing-x.npy: file not found', 'body.config.y: missing-y.npy: file not found']],
    ['Y of other rows than X', { y: 'Y50.npy' }, ['body.config.y Y50.npy has 50 rows but body.config.x X.npy has 60; one row per sample in both']],
    ['more folds than the rows allow', { folds: 100 }, ['body.config.folds 100 needs 200 rows (samples) at least, 2 per validation fold, but body.config.x X.npy has 60; use at most 30 folds']],
    ['a 1-D X', { x: 'X1d.npy' }, ['body.config.x: X (X1d.npy): expected a 2-D array (samples × columns), got shape (60)']],
    ['an int32 X', { x: 'Xint.npy' }, ['body.config.x: X (Xint.npy): expected float32 or float64 data, got int32']],
    ['groups of other length', { groups: 'g10.npy' }, ['body.config.groups g10.npy has 10 entries but body.config.x X.npy has 60 rows; one group label (e.g. the image id) per row']],
    ['fewer groups than folds', { groups: 'g2.npy' }, ['body.config.groups g2.npy has 2 distinct groups but body.config.folds is 3; expected at least one group per fold (a group never straddles folds)']],
  ])('%s: 400, nothing queued or written', async (_what, config, problems) => {
    expect(await refused(fit(config))).toEqual(problems);
  });

  it('every problem at once: out, Y and folds in one 400', async () => {
    const problems = await refused(fit({ out: 'm.safetensors', y: 'Y50.npy', folds: 40 }));
    expect(problems).toEqual([
      'body.config.out m.safetensors: is an existing file; expected a folder for the fit (model.safetensors and fit.json)',
      'body.config.y Y50.npy has 50 rows but body.config.x X.npy has 60; one row per sample in both',
      'body.config.folds 40 needs 80 rows (samples) at least, 2 per validation fold, but body.config.x X.npy has 60; use at most 30 folds',
    ]);
  });

  // as `ridge fit --folds 1 --x missing.npy` lists both (review s43: the schema's problem came alone, the file's on the next try)
  it("every problem at once: the schema's and the files'", async () => {
    expect(await refused(fit({ folds: 1, x: 'missing-x.npy', out: 'm.safetensors', groups: 7 }))).toEqual([
      'body.config.groups: expected a path or null, got number 7',
      'body.config.folds: expected an integer from 2 to 1048576, got number 1',
      'body.config.out m.safetensors: is an existing file; expected a folder for the fit (model.safetensors and fit.json)',
      'body.config.x: missing-x.npy: file not found',
    ]);
    // a path outside the root is named as such, and not looked at
    const outside = await refused(fit({ folds: 1, x: '../missing-x.npy' }));
    expect(outside).toEqual(['body.config.folds: expected an integer from 2 to 1048576, got number 1', "body.config.x: '..' is not allowed in paths (paths are relative to the service's root)"]);
  });

  it('a sound one is still accepted (202) and fits', async () => {
    const r = await s.call('POST', '/v1/jobs', fit({ out: 'fits/good', groups: 'g2.npy', folds: 2 }));
    expect(r.status, r.text).toBe(202);
    const events = await readEvents(`${s.url}/v1/jobs/${r.json.id}/events`);
    expect(events[events.length - 1].event, JSON.stringify(events[events.length - 1].data)).toBe('result');
    expect(existsSync(join(s.root, 'fits', 'good', 'model.safetensors'))).toBe(true);
  });
});

describe('a demo job is checked at submission', () => {
  it('out an existing file: 400 naming body.out, nothing queued', async () => {
    const problems = await refused({ kind: 'demo', out: 'm.safetensors', sessions: 4, testImages: 4, seeds: 1, steps: 3 });
    expect(problems).toEqual(['body.out m.safetensors: is an existing file; expected a folder for the world and the run']);
  });
});
