/**
 * A large buffer the machine cannot provide is an OutOfMemoryError of reason 'allocation' (transient: a batch retries
 * it), naming what was allocated; V8's own error was a bare "RangeError: Array buffer allocation failed". The
 * failure is real: a node process whose address space is capped at ~4 GB asks for 8 GiB.
 */
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { describe, expect, it } from 'vitest';

import { allocFloat32 } from '../ts/allocate.js';
import { commandOutput } from './helpers/nodeChild.js';

const dist = pathToFileURL(join(fileURLToPath(new URL('..', import.meta.url)), 'dist', 'allocate.js')).href;

describe('allocFloat32', () => {
  it("an allocation the machine refuses is OutOfMemoryError 'allocation' naming what and how much", async () => {
    const script = `
      const { allocFloat32 } = await import(${JSON.stringify(dist)});
      try { allocFloat32(2 ** 31, 'the test betas'); console.log(JSON.stringify({ ok: true })); }
      catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, reason: e.reason, message: e.message })); }`;
    const out = await commandOutput('bash', ['-c', 'ulimit -v 4000000 && exec "$0" --input-type=module -e "$1"', process.execPath, script]);
    const got = JSON.parse(out.trim()) as Record<string, string>;
    expect(got).toMatchObject({ name: 'OutOfMemoryError', code: 'OutOfMemory', reason: 'allocation' });
    expect(got.message).toMatch(/^the test betas: the machine could not provide 8\.00 GiB for 2,147,483,648 float32 values \(Array buffer allocation failed\)/);
  });

  it('gives a zeroed array otherwise; a length past the maximum stays a RangeError', () => {
    const a = allocFloat32(5, 'x');
    expect(a).toEqual(new Float32Array(5));
    expect(() => allocFloat32(2 ** 53, 'x')).toThrow(RangeError);
  });
});
