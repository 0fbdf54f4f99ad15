/**
 * Every callback option of the public API (onStep is in test/sd/diffusion.test.ts) is checked before anything runs:
 * a value that is not a function is an InvalidArgumentError naming the call and the option, not a TypeError from
 * the first progress report (mid-run, with a run folder locked and half written) or from the engine.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { InvalidArgumentError } from '../ts/errors.js';
import {
  buildDemoWorld,
  computeFeatures,
  createWorker,
  encode,
  extractNsd,
  reconstruct,
  runBatch,
  runDemo,
  synthNsd,
  waitForBatch,
  watchBatch,
} from '../ts/index.js';
import { LocalJobRunner } from '../ts/server/index.js';

const bad = 5 as never;
// (nothing is written there: the callbacks are checked before the options that name it are used)
const NEVER_WRITTEN = join(tmpdir(), 'brainlatent-callback-options-never-written');
// (the inputs are never read: the control is checked first)
const cases: [string, () => Promise<unknown>, RegExp][] = [
  ['reconstruct onProgress', () => reconstruct({} as never, { onProgress: bad }), /^reconstruct onProgress: expected a function, got 5$/],
  ['reconstruct onWarning', () => reconstruct({} as never, { onWarning: 'warn' as never }), /^reconstruct onWarning: expected a function, got string "warn"$/],
  ['reconstruct signal', () => reconstruct({} as never, { signal: {} as never }), /^reconstruct signal: expected an AbortSignal, got an object$/],
  ['encode onProgress', () => encode({} as never, { onProgress: bad }), /^encode onProgress: expected a function, got 5$/],
  ['encode onWarning', () => encode({} as never, { onWarning: bad }), /^encode onWarning: expected a function, got 5$/],
  ['computeFeatures onProgress', () => computeFeatures([], new Int32Array(0), {} as never, { onProgress: bad }), /^computeFeatures onProgress: expected a function, got 5$/],
  ['buildDemoWorld onProgress', () => buildDemoWorld({ out: NEVER_WRITTEN } as never, { onProgress: bad }), /^buildDemoWorld onProgress: expected a function, got 5$/],
  ['runDemo onWorldProgress', () => runDemo({ out: NEVER_WRITTEN } as never, { onWorldProgress: bad }), /^runDemo onWorldProgress: expected a function, got 5$/],
  ['runDemo onProgress', () => runDemo({ out: NEVER_WRITTEN } as never, { onProgress: bad }), /^runDemo onProgress: expected a function, got 5$/],
  ['synthNsd onProgress', () => synthNsd({ out: NEVER_WRITTEN, onProgress: bad }), /^synthNsd onProgress: expected a function, got 5$/],
  ['extractNsd onProgress', () => extractNsd({ root: '/nonexistent', subject: 1, roi: 'x', onProgress: bad } as never), /^extractNsd onProgress: expected a function, got 5$/],
  ['createWorker onLog', () => createWorker({ redis: 'redis://127.0.0.1:1', onLog: bad }), /^createWorker onLog: expected a function, got 5$/],
  ['createWorker onEvent', () => createWorker({ redis: 'redis://127.0.0.1:1', onEvent: bad }), /^createWorker onEvent: expected a function, got 5$/],
  ['runBatch onEvent', () => runBatch({} as never, { onEvent: bad }), /^runBatch onEvent: expected a function, got 5$/],
  ['runBatch worker.onLog', () => runBatch({} as never, { worker: { onLog: bad } }), /^runBatch worker onLog: expected a function, got 5$/],
  ['waitForBatch onEvent', () => waitForBatch('b', { redis: 'redis://127.0.0.1:1', onEvent: bad }), /^waitForBatch onEvent: expected a function, got 5$/],
  ['LocalJobRunner execute', async () => new LocalJobRunner({ execute: bad }), /^LocalJobRunner execute: expected a function, got 5$/],
  ['LocalJobRunner onUnet', async () => new LocalJobRunner({ execute: async () => ({}), onUnet: 'log' as never }), /^LocalJobRunner onUnet: expected a function, got string "log"$/],
  ['watchBatch signal', () => watchBatch('b', { redis: 'redis://127.0.0.1:1', signal: 'stop' as never }).next(), /^watchBatch signal: expected an AbortSignal, got string "stop"$/],
];

describe('callback options', () => {
  it.each(cases)('a bad %s is an InvalidArgumentError naming it', async (_name, call, message) => {
    const err = await call().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).code).toBe('InvalidArgument');
    expect((err as Error).message).toMatch(message);
    expect(existsSync(NEVER_WRITTEN)).toBe(false);
  });
});
