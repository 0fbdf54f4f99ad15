/**
 * The binding registers its process 'exit' hook once per process and addon file, however often its module is
 * evaluated: vitest's vm pools and cache-busting imports evaluate it again, and each copy added a listener (the
 * reviewer's v1.mjs: 12 copies, 13 listeners and a MaxListenersExceededWarning).
 */
import { pathToFileURL } from 'node:url';

import { describe, expect, it } from 'vitest';

import { distModule } from '../helpers/dist.js';
import { runModule } from '../helpers/nodeChild.js';

describe("the binding's exit hook", () => {
  it('is registered once however many copies of the binding module load the engine', async () => {
    const url = pathToFileURL(distModule('native/binding')).href;
    const r = await runModule(`
      const before = process.listenerCount('exit');
      for (let i = 0; i < 12; i++) (await import(${JSON.stringify(url)} + '?copy=' + i)).binding();
      console.log(process.listenerCount('exit') - before);
    `);
    expect({ hung: r.hung, status: r.status, stderr: r.stderr }).toEqual({ hung: false, status: 0, stderr: '' });
    expect(r.stdout.trim()).toBe('1');
  });
});
